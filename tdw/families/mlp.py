"""Family `mlp`: a two-layer MLP on a + b mod p (Gromov 2023, "Grokking modular arithmetic").

a and b are one-hot; the first layer is two [p, d_mlp] matrices W_a and W_b (the concatenated
one-hot times one [2p, d_mlp] matrix, which the spectra call W_in), the hidden units square their
input, and W_U [d_mlp, p] reads out the logits. No attention and no biases.

Why this model: it groks like the transformer (memorizes, then generalizes through Fourier
features) with nothing but the neurons, and its Fourier solution is known in closed form. With
the quadratic activation, a neuron with input weights cos(w a + phi) and cos(w b + psi) holds
2 cos(w a + phi) cos(w b + psi) = cos(w(a + b) + phi + psi) + cos(w(a - b) + phi - psi), and
readout weights cos(w c + phi + psi) turn the first term into cos(w(a + b - c)), which peaks at
c = a + b; over phases spread evenly the other terms cancel (`analytic_solution`).

The default (p = 59, 128 neurons, 35% of the pairs for training, lr 2e-3, weight decay 1)
memorizes by epoch ~200 and groks by ~1,500 of its 4,000 epochs: about 15 s on one CPU core.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from tdw.config import VariantConfig
from tdw.deferred_imports import torch
from tdw.families import register_family
from tdw.families.base import (
    ALL_HEADS,
    LATEST_ARITHMETIC,
    FamilyBase,
    TaskData,
    grid_pairs,
    read_out_loss_and_accuracy,
    split_pairs,
    train_loss_and_accuracy,
)

if TYPE_CHECKING:
    from torch import Tensor

    from tdw.model.mlp import HookedModularMLP


def hidden_logits(params: dict[str, Tensor], a: Tensor, b: Tensor) -> Tensor:
    """The forward as a pure function of the weights (vmap-able over stacked runs)."""
    pre = params["W_a"][a] + params["W_b"][b]
    return (pre * pre) @ params["W_U"]


def analytic_solution(p: int, frequencies: list[int], phases: int = 3) -> dict[str, Tensor]:
    """Weights that add mod p exactly: per frequency k, `phases`^2 neurons with input weights
    cos(w a + phi), cos(w b + psi) and readout cos(w c + phi + psi), phi and psi on `phases` even
    steps of the circle (w = 2 pi k / p). With three or more phases every term but
    cos(w(a + b - c)) sums to zero, so the logits are (phases^2 / 2) sum_k cos(w_k(a + b - c))."""
    x = torch.arange(p, dtype=torch.float64)
    steps = [2 * math.pi * i / phases for i in range(phases)]
    columns_a, columns_b, rows_u = [], [], []
    for k in frequencies:
        w = 2 * math.pi * k / p
        for phi in steps:
            for psi in steps:
                columns_a.append(torch.cos(w * x + phi))
                columns_b.append(torch.cos(w * x + psi))
                rows_u.append(torch.cos(w * x + phi + psi))
    return {"W_a": torch.stack(columns_a, 1).float(), "W_b": torch.stack(columns_b, 1).float(),
            "W_U": torch.stack(rows_u).float()}


class ModularMLP(FamilyBase):
    name = "mlp"
    uses = frozenset({"d_mlp"})
    defaults: ClassVar[dict[str, Any]] = {"p": 59, "d_mlp": 128, "train_frac": 0.35, "lr": 2e-3, "num_epochs": 4000}
    hooks: ClassVar[dict[str, str | tuple[str, ...]]] = {"neurons": "hook_hidden"}
    # A perfect single-frequency neuron here is (x + y)^2 with x, y of frequency k: the cross term
    # 2xy carries 80% of its variance and the squares x^2, y^2 (frequency 2k) the other 20%, so the
    # transformer's 85% would call no neuron specialized; 85% of that ceiling is the same bar.
    specialized_share = 0.85 * 0.8

    def build_model(self, config: VariantConfig) -> HookedModularMLP:
        # imported here: it brings TransformerLens, which indexing (reading runs alone) never needs
        from tdw.model.mlp import HookedModularMLP

        model = HookedModularMLP(config.p, config.d_mlp)
        model.init_weights(config.seed)
        return model

    def task_data(self, config: VariantConfig) -> TaskData:
        a, b = grid_pairs(config.p)
        return TaskData(torch.stack((a, b), dim=1), (a + b) % config.p, *split_pairs(config))

    def loss_terms(self, params: dict[str, Tensor], labels: Tensor, train_idx: Tensor, test_idx: Tensor,
                   with_test: bool, arithmetic: int = LATEST_ARITHMETIC) -> tuple[Tensor, ...]:
        """Arithmetics 1 and 2 are the same here (2 changed the transformer's step); 3 is the
        one-pass cross entropy (`train_loss_and_accuracy`) and fused AdamW."""
        p = params["W_U"].shape[-1]
        train_logits = hidden_logits(params, train_idx // p, train_idx % p)
        train_labels = labels[train_idx]
        terms = train_loss_and_accuracy(train_logits, train_labels, arithmetic)
        if not with_test:
            return terms
        frozen = {name: value.detach() for name, value in params.items()}
        test_logits = hidden_logits(frozen, test_idx // p, test_idx % p)
        test_labels = labels[test_idx]
        return terms + read_out_loss_and_accuracy(test_logits, test_labels)

    def read_only_train_loss(self, params: dict[str, Tensor], data: TaskData) -> float:
        """The read-out's one-pass loss: no float64 log-softmax, no argmax for an unused accuracy."""
        with torch.no_grad():
            p = params["W_U"].shape[-1]
            logits = hidden_logits(params, data.train_idx // p, data.train_idx % p)
            return float(read_out_loss_and_accuracy(logits, data.labels[data.train_idx])[0])

    def parameter_group(self, name: str) -> str:
        groups = {"W_a": "embedding", "W_b": "embedding", "W_U": "unembedding"}
        if name not in groups:
            raise KeyError(name)
        return groups[name]

    def config_from_state_dict(self, state: dict[str, Tensor]) -> dict[str, int]:
        d_mlp, p = state["W_U"].shape
        return {"p": int(p), "d_mlp": int(d_mlp)}

    # --- how the analysis reads the model ------------------------------------------------------
    def answer_logits(self, logits: Tensor) -> Tensor:
        return logits

    def neuron_activations(self, cache) -> Tensor:
        return cache[self.hooks["neurons"]]

    def embedding(self, weights: dict[str, Tensor], p: int) -> Tensor:
        return torch.cat((weights["W_a"], weights["W_b"]), dim=1)  # token t as a and as b

    def unembedding(self, weights: dict[str, Tensor]) -> Tensor:
        return weights["W_U"]

    def neuron_logits(self, weights: dict[str, Tensor]) -> Tensor:
        return weights["W_U"]

    def weight_matrices(self, weights: dict[str, Tensor]) -> list[tuple[str, int, Tensor]]:
        """W_in (W_a over W_b: the layer on the concatenated one-hots), W_a, W_b, W_U."""
        return [("W_in", ALL_HEADS, torch.cat((weights["W_a"], weights["W_b"]), dim=0)),
                ("W_a", ALL_HEADS, weights["W_a"]), ("W_b", ALL_HEADS, weights["W_b"]),
                ("W_U", ALL_HEADS, weights["W_U"])]

    def with_embedding(self, weights: dict[str, Tensor], embedding: Tensor) -> dict[str, Tensor]:
        d_mlp = weights["W_a"].shape[1]
        return {**weights, "W_a": embedding[:, :d_mlp].contiguous(), "W_b": embedding[:, d_mlp:].contiguous()}


register_family(ModularMLP())
