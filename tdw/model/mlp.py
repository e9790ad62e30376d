"""The hooked two-layer MLP of the `mlp` family (tdw/families/mlp.py), the model its runs train
and its analyzers hook. Apart from the family, as the transformer is, because it is a
TransformerLens `HookedRootModule`: importing it brings TransformerLens, which reading the family's
declarations (`tdw index`) never needs."""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint
from transformer_lens.HookedRootModule import HookedRootModule


class HookedModularMLP(HookedRootModule):
    """logits = (W_a[a] + W_b[b])^2 @ W_U, hooked before and after the square."""

    def __init__(self, p: int, d_mlp: int) -> None:
        super().__init__()
        self.p, self.d_mlp = p, d_mlp
        self.W_a = nn.Parameter(torch.empty(p, d_mlp))
        self.W_b = nn.Parameter(torch.empty(p, d_mlp))
        self.W_U = nn.Parameter(torch.empty(d_mlp, p))
        self.hook_pre = HookPoint()  # [pair, d_mlp]
        self.hook_hidden = HookPoint()  # [pair, d_mlp], the neurons
        self.setup()

    def forward(self, pairs: Int[Tensor, "pair 2"]) -> Float[Tensor, "pair p"]:
        pre = self.hook_pre(self.W_a[pairs[:, 0]] + self.W_b[pairs[:, 1]])
        return self.hook_hidden(pre * pre) @ self.W_U

    def init_weights(self, seed: int) -> None:
        """Every weight N(0, 1/d_mlp), drawn in the order W_a, W_b, W_U from `seed`."""
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param in (self.W_a, self.W_b, self.W_U):
                param.copy_(torch.randn(param.shape, generator=generator) / self.d_mlp**0.5)
