"""Causal multi-head attention with TransformerLens's per-head weight layout and hooks."""

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_head: int, n_ctx: int) -> None:
        super().__init__()
        self.W_Q = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_K = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_V = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_O = nn.Parameter(torch.empty(n_heads, d_head, d_model))
        self.b_Q = nn.Parameter(torch.zeros(n_heads, d_head))
        self.b_K = nn.Parameter(torch.zeros(n_heads, d_head))
        self.b_V = nn.Parameter(torch.zeros(n_heads, d_head))
        self.b_O = nn.Parameter(torch.zeros(d_model))
        self.register_buffer("mask", torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool)), persistent=False)
        self.attn_scale = math.sqrt(d_head)
        self.hook_q = HookPoint()  # [batch, pos, head, d_head]
        self.hook_k = HookPoint()
        self.hook_v = HookPoint()
        self.hook_attn_scores = HookPoint()  # [batch, head, query_pos, key_pos]
        self.hook_pattern = HookPoint()
        self.hook_z = HookPoint()  # [batch, pos, head, d_head]

    def forward(self, resid: Float[Tensor, "batch pos d_model"],
                final_position_only: bool = False) -> Float[Tensor, "batch query d_model"]:
        """Attention out at every position, or (`final_position_only`) at the last one alone: then
        queries, scores, pattern and z have a query axis of length 1, keys and values all positions."""
        n = resid.shape[1]
        first_query = n - 1 if final_position_only else 0
        q = self.hook_q(per_head(resid[:, first_query:], self.W_Q) + self.b_Q)
        k = self.hook_k(per_head(resid, self.W_K) + self.b_K)
        v = self.hook_v(per_head(resid, self.W_V) + self.b_V)
        # one query (the analysis's forward, at "=" alone): each example's scores and z are a few
        # multiply-adds, which einsum would run as one tiny batched product per example and head
        # (40 -> 25-30 ms for the p=113 grid's attention); with every query, einsum is faster
        one_query = q.shape[1] == 1
        if one_query:
            scores = (q * k).sum(-1).transpose(1, 2)[:, :, None]  # [batch, head, 1, key]
        else:
            scores = torch.einsum("bqhe,bkhe->bhqk", q, k)
        scores = (scores / self.attn_scale).masked_fill(~self.mask[first_query:n, :n], float("-inf"))
        pattern = self.hook_pattern(torch.softmax(self.hook_attn_scores(scores), dim=-1))
        if one_query:
            z = (pattern[:, :, 0].transpose(1, 2)[..., None] * v).sum(1, keepdim=True)  # [batch, 1, head, d_head]
        else:
            z = torch.einsum("bhqk,bkhe->bqhe", pattern, v)
        z = self.hook_z(z)
        return z.flatten(2) @ self.W_O.flatten(0, 1) + self.b_O


def per_head(resid: Float[Tensor, "batch pos d_model"], W: Float[Tensor, "head d_model d_head"]
             ) -> Float[Tensor, "batch pos head d_head"]:
    """resid @ W for every head as one product over the flattened heads (the layout TransformerLens
    hooks expect, without einsum's per-head batching)."""
    batch, pos, d_model = resid.shape
    flat = resid.reshape(-1, d_model) @ W.permute(1, 0, 2).reshape(d_model, -1)
    return flat.view(batch, pos, W.shape[0], W.shape[2])
