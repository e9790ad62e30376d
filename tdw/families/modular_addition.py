"""Family `modular_addition`: Nanda et al.'s 1-layer transformer on a + b mod p.

Tokens are (a, b, "=") with "=" the token p; the answer is read at the "=" position.
"""

from __future__ import annotations

from functools import lru_cache
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
    runs_eager_on_cpu,
    split_pairs,
    train_loss_and_accuracy,
)
from tdw.model import (
    PairBag,
    PairBlocks,
    TransformerShape,
    equals_residual_grid,
    equals_residual_pairs,
    folded_readout_logits,
    pair_bag,
    pair_blocks,
    readout_logits,
    token_tables,
    without_zero_biases,
)

if TYPE_CHECKING:
    from torch import Tensor

    from tdw.model.transformer import HookedGrokkingTransformer


# What depends only on a split, made once per split tensor: torch hashes a tensor by its
# identity, and the trainer passes the same splits every epoch, flatness the same one 65 times
# (0.3 ms each per step otherwise).
@lru_cache(maxsize=4)
def blocks_of(pairs: Tensor, n_tokens: int) -> PairBlocks:
    return pair_blocks(pairs, n_tokens)


@lru_cache(maxsize=4)
def bag_of(pairs: Tensor, n_tokens: int, n_heads: int) -> PairBag:
    return pair_bag(pairs, n_tokens, n_heads)


class ModularAddition(FamilyBase):
    name = "modular_addition"
    uses = frozenset({"d_model", "n_heads", "d_head", "d_mlp"})
    defaults: ClassVar[dict[str, Any]] = {}  # VariantConfig's defaults are this family's published run
    hooks: ClassVar[dict[str, str | tuple[str, ...]]] = {
        "neurons": "blocks.0.mlp.hook_post",
        "attention": "blocks.0.attn.hook_pattern",
        "residual": ("blocks.0.hook_resid_pre", "blocks.0.hook_resid_mid", "blocks.0.hook_resid_post"),
        "heads": "blocks.0.attn.hook_z",
    }
    # the logit lens's layers: the residual stream after the embedding, the attention, the MLP
    residual_layers: ClassVar[tuple[str, ...]] = ("embed", "attention", "mlp")
    specialized_share = 0.85  # the research notes' threshold for ReLU neurons (REQ_006)
    # the answer is read at "=": the MLP and unembedding of the a and b positions never reach it
    readout_forward: ClassVar[dict[str, Any]] = {"final_position_only": True}

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
        # imported here: it brings TransformerLens (1.6 s), which indexing (reading runs alone) never needs
        from tdw.model.transformer import HookedGrokkingTransformer

        model = HookedGrokkingTransformer(self.shape(config))
        model.init_weights(config.seed)
        return model

    def task_data(self, config: VariantConfig) -> TaskData:
        p = config.p
        a, b = grid_pairs(p)
        inputs = torch.stack((a, b, torch.full_like(a, p)), dim=1)
        return TaskData(inputs, (a + b) % p, *split_pairs(config))

    def loss_terms(self, params: dict[str, Tensor], labels: Tensor, train_idx: Tensor, test_idx: Tensor,
                   with_test: bool, arithmetic: int = LATEST_ARITHMETIC) -> tuple[Tensor, ...]:
        n = params["unembed.W_U"].shape[-1]
        tables = token_tables(params, n)
        # On a CPU outside vmap, the train rows' residuals are computed in blocks of the train
        # pairs only (arithmetic 2: 1.04x a p=113 step, the grid's bits at its shapes) and the test
        # split's logits through the tables with W_in and W_U folded in (1.9 ms less; only read,
        # in every arithmetic); the stacked trainer's vmap and CUDA's captured graph keep the grid.
        eager_cpu = runs_eager_on_cpu(tables.base)
        if eager_cpu and arithmetic >= 2:
            train_resid = equals_residual_pairs(tables, blocks_of(train_idx, n))
        else:
            grid = equals_residual_grid(tables)
            # index_select, not grid[train_idx]: the same rows, but its backward is a dense index_add
            # where advanced indexing's is an accumulating index_put (1.66 -> 0.20 ms at p=113, equal
            # gradients: the indices are unique)
            train_resid = grid.index_select(0, train_idx)
        train_logits = readout_logits(params, train_resid)
        train_labels = labels.index_select(0, train_idx)
        terms = train_loss_and_accuracy(train_logits, train_labels, arithmetic)
        if not with_test:
            return terms
        with torch.no_grad():  # the test loss is only read: no autograd graph recorded for it
            if eager_cpu:
                bag = bag_of(test_idx, n, tables.score_a.shape[1])
                test_idx = bag.pairs  # the same pairs, in grid order
                test_logits = folded_readout_logits(params, tables, bag)
            else:
                test_logits = readout_logits(params, grid.index_select(0, test_idx))
        test_labels = labels.index_select(0, test_idx)
        return terms + read_out_loss_and_accuracy(test_logits, test_labels)

    def read_only_train_loss(self, params: dict[str, Tensor], data: TaskData) -> float:
        """Only the train rows, through the tables with W_in and W_U folded in
        (`folded_readout_logits`, not the whole grid), and the read-out's one-pass loss (no
        float64 log-softmax, no argmax for an unused accuracy). At p=113 on one core, a flatness
        forward took 7.4 ms with the rows' residuals and their products, 6.3 this way."""
        with torch.no_grad():
            params = without_zero_biases(params)  # nothing is trained here: every zero bias can go
            n = params["unembed.W_U"].shape[-1]
            tables = token_tables(params, n)
            bag = bag_of(data.train_idx, n, tables.score_a.shape[1])
            logits = folded_readout_logits(params, tables, bag)
            return float(read_out_loss_and_accuracy(logits, data.labels.index_select(0, bag.pairs))[0])

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

    def with_embedding(self, weights: dict[str, Tensor], embedding: Tensor) -> dict[str, Tensor]:
        w_e = weights["embed.W_E"].clone()
        w_e[: embedding.shape[0]] = embedding
        return {**weights, "embed.W_E": w_e}

    def residual_stream(self, cache) -> dict[str, Tensor]:
        return {layer: cache[hook][:, -1, :] for layer, hook in zip(self.residual_layers, self.hooks["residual"], strict=True)}

    def decode_residual(self, weights: dict[str, Tensor], residual: Tensor) -> Tensor:
        return residual @ weights["unembed.W_U"] + weights["unembed.b_U"]


register_family(ModularAddition())
