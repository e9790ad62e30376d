"""The real Fourier basis over Z_p and the measurements built on it."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

from tdw.deferred_imports import torch

if TYPE_CHECKING:
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
    """Fraction of each map's variance explained by each frequency's 2D Fourier terms, in the
    maps' precision (float32 maps: about 1e-6 relative).

    The terms of frequency k are the products of {const, cos k, sin k} in a with {const, cos k,
    sin k} in b, except const x const: they span every function of ka and kb, including
    cos(k(a + b)). Variance is the total power minus the constant term.

    Computed from the 2D DFT F rather than by projecting on the real basis: {cos k, sin k} spans
    the exponentials of k and p - k, so frequency k's power is |F(k,k)|^2 + |F(p-k,k)|^2 +
    |F(k,p-k)|^2 + |F(p-k,p-k)|^2 plus the k x const and const x k terms, and for a real map
    F(p-s, p-t) is F(s, t)'s conjugate, so half the spectrum (`rfft2`) holds all of it. At
    [512, 113, 113] the basis products took 75-80 ms in float64 and 38 in float32, the FFT 27 in
    float32 (equal to the projection to float rounding: tests/test_analysis.py).
    """
    p = maps.shape[-1]
    spectrum = torch.fft.rfft2(maps)  # [unit, s 0..p-1, t 0..p//2]
    power = spectrum.real.square() + spectrum.imag.square()
    n_freq = p // 2
    k = torch.arange(1, n_freq + 1)
    # how many of the full spectrum's columns each of rfft2's stands for: t and p - t, except
    # t = 0 and, for an even p, the Nyquist column p / 2, which are their own partners
    copies = torch.full((n_freq,), 2.0, dtype=power.dtype)
    if p % 2 == 0:
        copies[-1] = 1.0
    column_copies = torch.cat((copies.new_ones(1), copies))
    total = (power.sum(1, dtype=torch.float64) * column_copies.double()).sum(-1) - power[:, 0, 0].double()
    # rows k and p - k of column k; at the Nyquist frequency they are one row, counted once
    diagonal = (power[:, k, k] + power[:, p - k, k]) / torch.where(2 * k == p, 2.0, 1.0).to(power.dtype)
    explained = copies * (diagonal + power[:, k, 0] + power[:, 0, k])
    return (explained.double() / total.clamp_min(1e-30)[:, None]).to(maps.dtype)


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
