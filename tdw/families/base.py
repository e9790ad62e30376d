"""The interface a model family implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor
from transformer_lens.HookedRootModule import HookedRootModule

if TYPE_CHECKING:
    from tdw.config import VariantConfig


@dataclass
class TaskData:
    """The whole data set (the full input grid), its labels and the train/test split."""

    inputs: Tensor  # [example, n_ctx] tokens
    labels: Tensor  # [example]
    train_idx: Tensor
    test_idx: Tensor

    def to(self, device: torch.device) -> TaskData:
        return TaskData(*(t.to(device) for t in (self.inputs, self.labels, self.train_idx, self.test_idx)))


@dataclass
class LossResult:
    train_loss: Tensor  # scalar with grad
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None


class Family(Protocol):
    name: str

    def build_model(self, config: VariantConfig) -> HookedRootModule:
        """The hooked reference model, initialized from `config.seed`."""

    def task_data(self, config: VariantConfig) -> TaskData:
        """Every input the task has, its labels and the split drawn from `config.data_seed`."""

    def loss_terms(self, params: dict[str, Tensor], labels: Tensor, train_idx: Tensor, test_idx: Tensor,
                   with_test: bool) -> tuple[Tensor, ...]:
        """(train loss with grad, train accuracy[, test loss, test accuracy]) as 0-d tensors.
        A pure tensor function, so the stacked trainer can `torch.func.vmap` it over S runs."""

    def losses(self, params: dict[str, Tensor], data: TaskData, with_test: bool) -> LossResult:
        """Train loss (with grad) and metrics through the family's fast forward."""

    def parameter_group(self, name: str) -> str:
        """Which group (embedding, attention, mlp, unembedding) a state-dict key belongs to."""

    def config_from_state_dict(self, state: dict[str, Tensor]) -> dict[str, int]:
        """Model dimensions read off a state dict (for importing foreign checkpoints)."""
