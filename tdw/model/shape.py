"""The transformer's dimensions, apart from the hooked model: the family, the fast forward and the
TransformerLens bridge read them without importing TransformerLens (1.6 s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TransformerShape:
    d_vocab: int
    d_vocab_out: int
    n_ctx: int = 3
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
