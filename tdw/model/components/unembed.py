"""Unembedding (TransformerLens `unembed.W_U` [d_model, d_vocab_out], `b_U`)."""

import torch
from jaxtyping import Float
from torch import Tensor, nn


class Unembed(nn.Module):
    def __init__(self, d_model: int, d_vocab_out: int) -> None:
        super().__init__()
        self.W_U = nn.Parameter(torch.empty(d_model, d_vocab_out))
        self.b_U = nn.Parameter(torch.zeros(d_vocab_out))

    def forward(self, resid: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_vocab_out"]:
        return resid @ self.W_U + self.b_U
