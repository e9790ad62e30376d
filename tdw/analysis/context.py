"""What analyzers are handed: one checkpoint's weights, model, data and (lazily) its activations,
plus the facts about the whole run that some analyzers depend on (its final checkpoint, its key
frequencies), computed once per pipeline run."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from tdw.analysis.key_frequencies import (
    EMBEDDING_GAP,
    NEURON_CLUSTERS,
    key_frequencies,
    neuron_key_frequencies,
)
from tdw.config import VariantConfig
from tdw.families.base import Family, TaskData, hook_names, neuron_maps
from tdw.probes import Probe, trace_probe
from tdw.run_dir import RunDir

if TYPE_CHECKING:
    from transformer_lens.ActivationCache import ActivationCache


@dataclass
class RunFacts:
    """Facts about the run as it is now, shared by every context of one pipeline run."""

    run: RunDir
    config: VariantConfig
    epochs: list[int]  # every checkpoint epoch, ascending
    family: Family
    _digests: dict[int, str] = field(default_factory=dict)
    _probe_rows: dict[str, Tensor] = field(default_factory=dict)
    _inputs_to_trace: dict[str | None, Tensor] = field(default_factory=dict)
    _settings: dict[str, dict] = field(default_factory=dict)

    @property
    def final_epoch(self) -> int:
        return self.epochs[-1]

    def digest(self, epoch: int) -> str:
        if epoch not in self._digests:
            self._digests[epoch] = self.run.checkpoint_digest(epoch)
        return self._digests[epoch]

    def settings(self, analyzer: str) -> dict:
        """What `analyzer` was told for this run (`RunDir.analysis_settings`), read once."""
        if analyzer not in self._settings:
            self._settings[analyzer] = self.run.analysis_settings(analyzer)
        return self._settings[analyzer]

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
    def train_mask(self) -> np.ndarray:
        """Which inputs of the grid are in the train split (a sample probe follows the split)."""
        return self.family.task_data(self.config).train_mask

    @property
    def traced_rows(self) -> Tensor:
        """The traced pairs' rows of the grid (a-major), ascending."""
        return self.probe_rows(self.trace.spec)

    def probe_rows(self, spec: str) -> Tensor:
        """A probe's rows of this run's grid (a-major), ascending: the traced probe's, or the one an
        earlier artifact covers (what of it is still traced is kept, `AnalysisPipeline`)."""
        if spec not in self._probe_rows:
            selected = trace_probe(spec, self.config.p).select(self.config.p, self.train_mask)
            self._probe_rows[spec] = torch.from_numpy(np.flatnonzero(selected))
        return self._probe_rows[spec]

    def inputs_to_trace(self, covered: str | None) -> Tensor:
        """The traced inputs an artifact computes (grid rows, ascending): all of them, or, for one
        being extended that covers the probe `covered`, those it lacks. Made once per probe: every
        checkpoint's artifacts usually cover the same one."""
        if covered not in self._inputs_to_trace:
            traced = self.traced_rows
            self._inputs_to_trace[covered] = traced if covered is None else traced[~torch.isin(traced, self.probe_rows(covered))]
        return self._inputs_to_trace[covered]

    @cached_property
    def found_key_frequencies(self) -> tuple[list[int], str | None]:
        """The final checkpoint's key frequencies (tdw.analysis.key_frequencies) and the rule that
        found them: the embedding's frequencies above its largest norm gap (`EMBEDDING_GAP`), or,
        where it has none, its specialized neurons' (`NEURON_CLUSTERS`); ([], None) for none."""
        keys = key_frequencies(self.embedding(self.final_weights))
        if keys:
            return keys, EMBEDDING_GAP
        if "neurons" in self.family.hooks:
            keys = neuron_key_frequencies(self.final_neuron_maps(), self.family.specialized_share)
            if keys:
                return keys, NEURON_CLUSTERS
        return [], None

    @property
    def key_frequencies(self) -> list[int]:
        return self.found_key_frequencies[0]

    def final_neuron_maps(self) -> Tensor:
        """The final checkpoint's neurons' activations over the whole grid [neuron, a, b]: one
        forward pass, made only for a run whose embedding shows no key frequencies."""
        model = self.family.build_model(self.config)
        model.load_state_dict(self.final_weights)
        inputs = self.family.task_data(self.config).inputs
        wanted = hook_names(self.family, ("neurons",))
        with torch.no_grad():
            _, cache = model.run_with_cache(inputs, names_filter=lambda name: name in wanted, **self.family.readout_forward)
        return neuron_maps(self.family, cache, self.config.p)


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

    @property
    def found_key_frequencies(self) -> tuple[list[int], str | None]:
        return self.facts.found_key_frequencies


@dataclass
class CheckpointContext(SeesTheRun):
    facts: RunFacts
    family: Family
    data: TaskData
    epoch: int
    weights: dict[str, Tensor]
    model: torch.nn.Module
    logits: Tensor | None = None  # [pair, pos, d_vocab_out] (pos: the readout's, Family.readout_forward)
    cache: ActivationCache | None = None
    # the grid rows (a-major, ascending) the forward pass ran on; None: the whole grid. Only traced
    # analyzers run on a part of it (`at_traced` reads their inputs' rows out of either)
    forward_rows: Tensor | None = None
    # the traced inputs to compute now (grid rows, ascending); None: the run's traced probe. An
    # artifact being extended computes only the inputs new to it
    trace_rows: Tensor | None = None
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
        """The rows (a-major pair indices) of the traced inputs to compute, on the data's device."""
        rows = self.facts.traced_rows if self.trace_rows is None else self.trace_rows
        return rows.to(self.data.labels.device)

    def at_traced(self, values: Tensor) -> Tensor:
        """`values` of the forward pass (one row per input it ran on: the grid, or `forward_rows`)
        at the traced inputs to compute, in `traced_rows` order."""
        rows = self.traced_rows()
        if self.forward_rows is None:
            return values[rows]
        return values[torch.searchsorted(self.forward_rows.to(rows.device), rows)]

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
                native = neuron_maps(self.family, self.cache, self.p)
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
