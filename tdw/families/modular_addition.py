"""Family `modular_addition`: Nanda et al.'s 1-layer transformer on a + b mod p.

Tokens are (a, b, "=") with "=" the token p; the answer is read at the "=" position.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from tdw.config import VariantConfig
from tdw.families import register_family
from tdw.families.base import ALL_HEADS, LossResult, TaskData
from tdw.model import (
    HookedGrokkingTransformer,
    TransformerShape,
    equals_residual_grid,
    readout_logits,
)


def grid_pairs(p: int) -> tuple[Tensor, Tensor]:
    """All pairs (a, b), a-major (row index a * p + b), as the TransformerLens Grokking demo orders them."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return a, b


def cross_entropy_float64(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross entropy in float64, as Nanda's loss: late-training losses reach 1e-7 and float32 rounds them."""
    return F.cross_entropy(logits.to(torch.float64), labels)


class ModularAddition:
    name = "modular_addition"
    uses = frozenset({"d_model", "n_heads", "d_head", "d_mlp"})
    defaults: ClassVar[dict[str, Any]] = {}  # VariantConfig's defaults are this family's published run
    hooks: ClassVar[dict[str, str]] = {"neurons": "blocks.0.mlp.hook_post", "attention": "blocks.0.attn.hook_pattern"}

    def shape(self, config: VariantConfig) -> TransformerShape:
        return TransformerShape(
            d_vocab=config.p + 1,
            d_vocab_out=config.p,
            n_ctx=3,
            d_model=config.d_model,
            n_heads=config.n_heads,
            d_head=config.d_head,
            d_mlp=config.d_mlp,
        )

    def build_model(self, config: VariantConfig) -> HookedGrokkingTransformer:
        model = HookedGrokkingTransformer(self.shape(config))
        model.init_weights(config.seed)
        return model

    def task_data(self, config: VariantConfig) -> TaskData:
        p = config.p
        a, b = grid_pairs(p)
        inputs = torch.stack((a, b, torch.full_like(a, p)), dim=1)
        labels = (a + b) % p
        generator = torch.Generator().manual_seed(config.data_seed)
        perm = torch.randperm(p * p, generator=generator)
        n_train = int(config.train_frac * p * p)
        return TaskData(inputs, labels, perm[:n_train], perm[n_train:])

    def loss_terms(self, params: dict[str, Tensor], labels: Tensor, train_idx: Tensor, test_idx: Tensor,
                   with_test: bool) -> tuple[Tensor, ...]:
        grid = equals_residual_grid(params, params["unembed.W_U"].shape[-1])
        train_logits = readout_logits(params, grid[train_idx])
        train_labels = labels[train_idx]
        terms = (cross_entropy_float64(train_logits, train_labels),
                 (train_logits.argmax(-1) == train_labels).to(torch.float64).mean())
        if not with_test:
            return terms
        test_logits = readout_logits(params, grid.detach()[test_idx]).detach()
        test_labels = labels[test_idx]
        return terms + (cross_entropy_float64(test_logits, test_labels),
                        (test_logits.argmax(-1) == test_labels).to(torch.float64).mean())

    def losses(self, params: dict[str, Tensor], data: TaskData, with_test: bool) -> LossResult:
        with_test = with_test and len(data.test_idx) > 0
        terms = self.loss_terms(params, data.labels, data.train_idx, data.test_idx, with_test)
        test_loss = test_acc = None
        if with_test:
            test_loss, test_acc = terms[2].item(), terms[3].item()
        return LossResult(terms[0], terms[1].item(), test_loss, test_acc)

    def parameter_group(self, name: str) -> str:
        if name.startswith(("embed.", "pos_embed.")):
            return "embedding"
        if ".attn." in name:
            return "attention"
        if ".mlp." in name:
            return "mlp"
        if name.startswith("unembed."):
            return "unembedding"
        raise KeyError(name)

    def config_from_state_dict(self, state: dict[str, Tensor]) -> dict[str, int]:
        n_heads, d_model, d_head = state["blocks.0.attn.W_Q"].shape
        return {
            "p": int(state["unembed.W_U"].shape[1]),
            "d_model": int(d_model),
            "n_heads": int(n_heads),
            "d_head": int(d_head),
            "d_mlp": int(state["blocks.0.mlp.W_in"].shape[1]),
        }

    # --- how the analysis reads the model ------------------------------------------------------
    def answer_logits(self, logits: Tensor) -> Tensor:
        return logits[:, -1]  # at "="

    def neuron_activations(self, cache) -> Tensor:
        return cache[self.hooks["neurons"]][:, -1, :]  # post-ReLU at "="

    def embedding(self, weights: dict[str, Tensor], p: int) -> Tensor:
        return weights["embed.W_E"][:p]  # without the "=" token

    def unembedding(self, weights: dict[str, Tensor]) -> Tensor:
        return weights["unembed.W_U"]

    def neuron_logits(self, weights: dict[str, Tensor]) -> Tensor:
        return weights["blocks.0.mlp.W_out"] @ weights["unembed.W_U"]

    def weight_matrices(self, weights: dict[str, Tensor]) -> list[tuple[str, int, Tensor]]:
        """W_E, W_pos, W_Q, W_K, W_V, W_O (stacked over heads and per head), W_in, W_out, W_U."""
        attn = "blocks.0.attn."
        out = [("W_E", ALL_HEADS, weights["embed.W_E"]), ("W_pos", ALL_HEADS, weights["pos_embed.W_pos"])]
        for name in ("W_Q", "W_K", "W_V"):
            w = weights[attn + name]  # [head, d_model, d_head]
            out.append((name, ALL_HEADS, w.permute(1, 0, 2).reshape(w.shape[1], -1)))
            out.extend((name, h, w[h]) for h in range(w.shape[0]))
        w_o = weights[attn + "W_O"]  # [head, d_head, d_model]
        out.append(("W_O", ALL_HEADS, w_o.reshape(-1, w_o.shape[-1])))
        out.extend(("W_O", h, w_o[h]) for h in range(w_o.shape[0]))
        return out + [
            ("W_in", ALL_HEADS, weights["blocks.0.mlp.W_in"]),
            ("W_out", ALL_HEADS, weights["blocks.0.mlp.W_out"]),
            ("W_U", ALL_HEADS, weights["unembed.W_U"]),
        ]


register_family(ModularAddition())
