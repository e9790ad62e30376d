"""Our TransformerLens-named weights in the layout of TransformerLens 4's native bridge model.

Used to check equality with `TransformerBridge.boot_native` and to benchmark against it.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from tdw.model.shape import TransformerShape


def bridge_config(shape: TransformerShape, seed: int = 0) -> dict[str, Any]:
    return {
        "n_layers": 1,
        "n_heads": shape.n_heads,
        "d_model": shape.d_model,
        "d_head": shape.d_head,
        "d_mlp": shape.d_mlp,
        "act_fn": "relu",
        "normalization_type": None,
        "d_vocab": shape.d_vocab,
        "d_vocab_out": shape.d_vocab_out,
        "n_ctx": shape.n_ctx,
        "seed": seed,
    }


def bridge_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """TL names ([head, d_model, d_head] etc.) -> the bridge's Linear layout ([out, in])."""
    attn = "blocks.0.attn."
    n_heads, d_model, d_head = state[attn + "W_Q"].shape

    def qkv(w: Tensor) -> Tensor:  # [head, d_model, d_head] -> [head * d_head, d_model]
        return w.permute(0, 2, 1).reshape(n_heads * d_head, d_model).contiguous()

    out = {
        "embed.weight": state["embed.W_E"],
        "pos_embed.weight": state["pos_embed.W_pos"],
        "blocks.0.attn.o.weight": state[attn + "W_O"].reshape(n_heads * d_head, d_model).T.contiguous(),
        "blocks.0.attn.o.bias": state[attn + "b_O"],
        "blocks.0.mlp.in.weight": state["blocks.0.mlp.W_in"].T.contiguous(),
        "blocks.0.mlp.in.bias": state["blocks.0.mlp.b_in"],
        "blocks.0.mlp.out.weight": state["blocks.0.mlp.W_out"].T.contiguous(),
        "blocks.0.mlp.out.bias": state["blocks.0.mlp.b_out"],
        "unembed.weight": state["unembed.W_U"].T.contiguous(),
        "unembed.bias": state["unembed.b_U"],
    }
    for x in "qkv":
        out[f"{attn}{x}.weight"] = qkv(state[f"{attn}W_{x.upper()}"])
        out[f"{attn}{x}.bias"] = state[f"{attn}b_{x.upper()}"].reshape(-1)
    return out
