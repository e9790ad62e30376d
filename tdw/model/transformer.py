"""The hooked 1-layer transformer: the reference model every fast path is tested against.

A TransformerLens `HookedRootModule`, so `run_with_cache` / `run_with_hooks` work with the
standard hook names, and its state dict loads a HookedTransformer checkpoint as is.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint
from transformer_lens.HookedRootModule import HookedRootModule

from tdw.model.components import MLP, Attention, Embed, PosEmbed, Unembed
from tdw.model.shape import TransformerShape


class TransformerBlock(nn.Module):
    def __init__(self, shape: TransformerShape) -> None:
        super().__init__()
        self.attn = Attention(shape.d_model, shape.n_heads, shape.d_head, shape.n_ctx)
        self.mlp = MLP(shape.d_model, shape.d_mlp)
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, resid: Float[Tensor, "batch pos d_model"],
                final_position_only: bool = False) -> Float[Tensor, "batch pos d_model"]:
        resid = self.hook_resid_pre(resid)
        attn_out = self.hook_attn_out(self.attn(resid, final_position_only))
        resid = self.hook_resid_mid(resid[:, -attn_out.shape[1]:] + attn_out)
        return self.hook_resid_post(resid + self.hook_mlp_out(self.mlp(resid)))


class HookedGrokkingTransformer(HookedRootModule):
    """Attention + ReLU MLP, no LayerNorm: Nanda et al.'s grokking architecture."""

    def __init__(self, shape: TransformerShape) -> None:
        super().__init__()
        self.shape = shape
        self.embed = Embed(shape.d_vocab, shape.d_model)
        self.pos_embed = PosEmbed(shape.n_ctx, shape.d_model)
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        self.blocks = nn.ModuleList([TransformerBlock(shape)])
        self.unembed = Unembed(shape.d_model, shape.d_vocab_out)
        self.setup()

    def forward(self, tokens: Int[Tensor, "batch pos"],
                final_position_only: bool = False) -> Float[Tensor, "batch pos d_vocab_out"]:
        """Logits at every position, or (`final_position_only`) at the last alone, the answer's:
        with one layer, no other position's MLP or unembedding reaches it, so the analysis skips
        two thirds of the MLP's work. Hooks after the attention then have a position axis of
        length 1; `hook_embed`, `hook_resid_pre`, keys and values keep every position."""
        resid = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens))
        for block in self.blocks:
            resid = block(resid, final_position_only)
        return self.unembed(resid)

    def init_weights(self, seed: int) -> None:
        """GPT-2 style init as TransformerLens does it: N(0, 0.8/sqrt(d_model)) weights, zero biases."""
        generator = torch.Generator().manual_seed(seed)
        std = 0.8 / self.shape.d_model**0.5
        with torch.no_grad():
            for name, param in self.named_parameters():
                if name.split(".")[-1].startswith("W_"):
                    param.copy_(torch.randn(param.shape, generator=generator) * std)
                else:
                    param.zero_()
