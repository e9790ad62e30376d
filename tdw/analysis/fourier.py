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
    coefficients = torch.einsum("ia,uab,jb->uij", basis, maps, basis)
    power = coefficients.pow(2)
    total = power.sum((1, 2)) - power[:, 0, 0]
    freq_of = torch.tensor([k for k, _ in labels])
    fractions = []
    for k in frequencies(p):
        idx = torch.cat((torch.tensor([0]), torch.nonzero(freq_of == k).flatten()))
        block = power[:, idx][:, :, idx].sum((1, 2)) - power[:, 0, 0]
        fractions.append(block)
    return torch.stack(fractions, dim=1) / total.clamp_min(1e-30)[:, None]


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
