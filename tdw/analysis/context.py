"""What analyzers are handed: one checkpoint's weights, model, data and (lazily) its activations."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor
from transformer_lens.ActivationCache import ActivationCache

from tdw.config import VariantConfig
from tdw.families.base import Family, TaskData
from tdw.run_dir import RunDir


@dataclass
class CheckpointContext:
    run: RunDir
    config: VariantConfig
    family: Family
    data: TaskData
    epoch: int
    weights: dict[str, Tensor]
    model: torch.nn.Module
    logits: Tensor | None = None  # [pair, pos, d_vocab_out] over the full grid, when activations were asked
    cache: ActivationCache | None = None

    @property
    def p(self) -> int:
        return self.config.p

    @cached_property
    def final_weights(self) -> dict[str, Tensor]:
        """Weights of the run's last checkpoint (progress measures take key frequencies from it)."""
        return self.run.load_weights(self.run.checkpoint_epochs()[-1])


@dataclass
class RunContext:
    run: RunDir
    config: VariantConfig
    family: Family
    epochs: list[int]

    def weights(self, epoch: int) -> dict[str, Tensor]:
        return self.run.load_weights(epoch)
