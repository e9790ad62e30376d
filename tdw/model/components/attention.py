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
        q = self.hook_q(torch.einsum("bpd,hde->bphe", resid[:, first_query:], self.W_Q) + self.b_Q)
        k = self.hook_k(torch.einsum("bpd,hde->bphe", resid, self.W_K) + self.b_K)
        v = self.hook_v(torch.einsum("bpd,hde->bphe", resid, self.W_V) + self.b_V)
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / self.attn_scale
        scores = scores.masked_fill(~self.mask[first_query:n, :n], float("-inf"))
        pattern = self.hook_pattern(torch.softmax(self.hook_attn_scores(scores), dim=-1))
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))
        return torch.einsum("bqhe,hed->bqd", z, self.W_O) + self.b_O
