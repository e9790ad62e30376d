"""The real Fourier basis over Z_p and the measurements built on it."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from jaxtyping import Float
from torch import Tensor


@lru_cache(maxsize=16)
def fourier_basis(p: int) -> tuple[Tensor, tuple[tuple[int, str], ...]]:
    """Orthonormal rows over the p tokens: const, cos 1, sin 1, cos 2, ... and their (frequency, component)."""
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    labels = [(0, "const")]
    for k in range(1, p // 2 + 1):
        rows.append(torch.cos(2 * math.pi * k * x / p))
        labels.append((k, "cos"))
        if 2 * k != p:  # an even p has no sine at its Nyquist frequency
            rows.append(torch.sin(2 * math.pi * k * x / p))
            labels.append((k, "sin"))
    basis = torch.stack(rows)
    basis = basis / basis.norm(dim=1, keepdim=True)
    return basis.float(), tuple(labels)


def frequencies(p: int) -> list[int]:
    return list(range(1, p // 2 + 1))


def component_norms(matrix: Float[Tensor, "token d"]) -> Float[Tensor, " basis"]:
    """Norm of the matrix's projection on each basis vector over its token axis."""
    basis, _ = fourier_basis(matrix.shape[0])
    return (basis.to(matrix) @ matrix).norm(dim=1)


def frequency_fractions_2d(maps: Float[Tensor, "unit a b"]) -> Float[Tensor, "unit frequency"]:
    """Fraction of each map's variance explained by each frequency's 2D Fourier terms.

    The terms of frequency k are the products of {const, cos k, sin k} in a with {const, cos k,
    sin k} in b, except const x const: they span every function of ka and kb, including
    cos(k(a + b)). Variance is the total power minus the constant term.
    """
    p = maps.shape[-1]
    basis, labels = fourier_basis(p)
    basis = basis.to(maps)
    # two broadcast products: at [512, 113, 113] in float64, 58 ms against einsum's 86
    power = ((basis @ maps) @ basis.T).pow(2)  # [unit, i, j]
    # each basis row's frequency (0: the constant); summing rows, then columns, by frequency
    # gives every (frequency, frequency) block of the power at once
    group = torch.tensor([k for k, _ in labels])
    n_groups = int(group.max()) + 1
    rows = power.new_zeros(power.shape[0], n_groups, p).index_add_(1, group, power)
    blocks = power.new_zeros(power.shape[0], n_groups, n_groups).index_add_(2, group, rows)
    total = blocks.sum((1, 2)) - blocks[:, 0, 0]
    k = torch.arange(1, n_groups)
    # frequency k's terms: k x k, k x const and const x k (const x const is the mean, not variance)
    explained = blocks[:, k, k] + blocks[:, k, 0] + blocks[:, 0, k]
    return explained / total.clamp_min(1e-30)[:, None]


def fractions_frame(fractions: Float[Tensor, "unit frequency"], unit: str):
    """Long format (unit, frequency 1.., value) of a [unit, frequency] fraction matrix."""
    import polars as pl

    n_units, n_freq = fractions.shape
    return pl.DataFrame({
        unit: torch.arange(n_units).repeat_interleave(n_freq).numpy(),
        "frequency": torch.arange(1, n_freq + 1).repeat(n_units).numpy(),
        "value": fractions.flatten().numpy(),
    })


def gini(values: Tensor) -> float:
    """Gini coefficient of non-negative values: 0 spread evenly, near 1 concentrated in one."""
    v = values.flatten().double().abs().sort().values
    n = v.numel()
    if n == 0 or v.sum() == 0:
        return 0.0
    index = torch.arange(1, n + 1, dtype=torch.float64)
    return float(((2 * index - n - 1) * v).sum() / (n * v.sum()))
