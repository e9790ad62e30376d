"""What analyzers are handed: one checkpoint's weights, model, data and (lazily) its activations,
plus the facts about the whole run that some analyzers depend on (its final checkpoint, its key
frequencies), computed once per pipeline run."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from torch import Tensor
from transformer_lens.ActivationCache import ActivationCache

from tdw.analysis.key_frequencies import key_frequencies
from tdw.config import VariantConfig
from tdw.families.base import Family, TaskData
from tdw.probes import Probe, trace_probe
from tdw.run_dir import RunDir


@dataclass
class RunFacts:
    """Facts about the run as it is now, shared by every context of one pipeline run."""

    run: RunDir
    config: VariantConfig
    epochs: list[int]  # every checkpoint epoch, ascending
    family: Family
    _digests: dict[int, str] = field(default_factory=dict)

    @property
    def final_epoch(self) -> int:
        return self.epochs[-1]

    def digest(self, epoch: int) -> str:
        if epoch not in self._digests:
            self._digests[epoch] = self.run.checkpoint_digest(epoch)
        return self._digests[epoch]

    def embedding(self, weights: dict[str, Tensor]) -> Tensor:
        """How the p input tokens enter the model [p, d] (the family says which weights)."""
        return self.family.embedding(weights, self.config.p)

    @cached_property
    def final_weights(self) -> dict[str, Tensor]:
        return self.run.load_weights(self.final_epoch)

    def weights(self, epoch: int) -> dict[str, Tensor]:
        """A checkpoint's weights (on the CPU); the final one is loaded once and kept."""
        return self.final_weights if epoch == self.final_epoch else self.run.load_weights(epoch)

    @cached_property
    def trace(self) -> Probe:
        """The probe the per-input trace analyzers compute on (`tdw analyze --trace`, default auto)."""
        return trace_probe(self.run.trace_spec(), self.config.p)

    @cached_property
    def traced_rows(self) -> Tensor:
        """The traced pairs' rows of the grid (a-major), ascending."""
        train = self.family.task_data(self.config).train_mask
        return torch.from_numpy(np.flatnonzero(self.trace.select(self.config.p, train)))

    @cached_property
    def key_frequencies(self) -> list[int]:
        """The final checkpoint's key frequencies (tdw.analysis.key_frequencies)."""
        return key_frequencies(self.embedding(self.final_weights))


class SeesTheRun:
    """What both contexts say about the run, through their `facts`."""

    facts: RunFacts

    @property
    def run(self) -> RunDir:
        return self.facts.run

    @property
    def config(self) -> VariantConfig:
        return self.facts.config

    @property
    def key_frequencies(self) -> list[int]:
        return self.facts.key_frequencies


@dataclass
class CheckpointContext(SeesTheRun):
    facts: RunFacts
    family: Family
    data: TaskData
    epoch: int
    weights: dict[str, Tensor]
    model: torch.nn.Module
    logits: Tensor | None = None  # [pair, pos, d_vocab_out] over the full grid (pos: the readout's, Family.readout_forward)
    cache: ActivationCache | None = None
    _neuron_maps: dict[torch.dtype | None, Tensor] = field(default_factory=dict, repr=False)  # None: the cache's dtype

    @property
    def p(self) -> int:
        return self.config.p

    def has(self, role: str) -> bool:
        """Whether the family has activations under `role` (Family.hooks)."""
        return role in self.family.hooks

    def answer_logits(self) -> Tensor:
        """[pair, p] over the grid, a-major."""
        return self.family.answer_logits(self.logits)

    def traced_rows(self) -> Tensor:
        """The rows (a-major pair indices) of the run's traced probe, on the data's device."""
        return self.facts.traced_rows.to(self.data.labels.device)

    def neuron_maps(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """Each neuron's activation over the grid as a map [neuron, a, b], in `dtype`: made once per
        checkpoint and dtype, since three analyzers read them (callers must not write into it).

        Contiguous, map by map: the hook's [pair, neuron] transposed is a strided view, and every
        reader walks maps. At p=113 (512 neurons) one copy costs 18 ms and saves coarseness 83
        (138 -> 55 ms), the Fourier fractions 21 (55 -> 34) and the quantizing 8 (21 -> 13)."""
        maps = self._neuron_maps.get(dtype)
        if maps is None:
            native = self._neuron_maps.get(None)
            if native is None:
                native = self.family.neuron_activations(self.cache).T.contiguous().reshape(-1, self.p, self.p)
                self._neuron_maps[None] = native
            maps = native.to(dtype)
            self._neuron_maps[dtype] = maps
        return maps


@dataclass
class RunContext(SeesTheRun):
    facts: RunFacts
    family: Family

    @property
    def epochs(self) -> list[int]:
        return self.facts.epochs

    def weights(self, epoch: int) -> dict[str, Tensor]:
        return self.facts.weights(epoch)

    def embedding(self, epoch: int) -> Tensor:
        return self.facts.embedding(self.weights(epoch))
