"""coarseness: multi-scale structure of each neuron map and each head's attention map.

Metrics (research notes, 2026-02-02):
  fft_low_freq   share of non-DC spectral power within radius 12.5% of the spectrum (high = coarse)
  variance_kept  variance after bilinear downsampling to 14x14 and back, over the original's
  gradient       mean absolute difference between neighbours (edge density)
"""

from __future__ import annotations

import polars as pl

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analyzers import register
from tdw.analyzers.attention import attention_maps
from tdw.deferred_imports import F, torch

METRICS = ("fft_low_freq", "variance_kept", "gradient")

def fourier_rows(frequencies: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of 2 pi k x / n, [frequency, x], the angle reduced mod n first (exact in float64)."""
    x = torch.arange(n, dtype=torch.int64)
    angle = 2 * torch.pi * ((frequencies[:, None] * x[None, :]) % n).double() / n
    return angle.cos(), angle.sin()


def low_frequency_share(maps: torch.Tensor, radius_fraction: float, variance: torch.Tensor) -> torch.Tensor:
    """[unit, h, w] float64 -> each map's share of non-DC spectral power within the radius
    (`variance`: each map's population variance, which the caller computes anyway).

    Only the frequencies inside the radius are computed, as a partial DFT (two small matmuls per
    axis), and the total comes from Parseval: the non-DC power of the full spectrum is h w times
    the sum of squared deviations from the mean. At p=113 that is 29 x 15 of 113 x 113
    frequencies, and no FFT of a prime size (which needs Bluestein's algorithm). It is equal to
    the full fftshifted spectrum's form to float rounding (tests/test_analysis.py)."""
    _n, h, w = maps.shape
    radius = radius_fraction * min(h, w)
    reach = int(radius)
    ky = torch.fft.fftfreq(h, 1 / h).round().long()
    ky = ky[ky.abs() <= reach]  # signed row frequencies
    kx = torch.arange(min(reach, w // 2) + 1)  # a real map's column half; the rest are conjugates
    cos_y, sin_y = fourier_rows(ky, h)  # [ky, a]
    cos_x, sin_x = fourier_rows(kx, w)  # [kx, b]
    n = maps.shape[0]
    # columns first, as one [unit * a, b] @ [b, kx] product each; then rows, as one product each
    # over a [a, unit * kx] matrix (a batched product over units was 5x slower)
    p = (maps.reshape(n * h, w) @ cos_x.T).reshape(n, h, -1).transpose(0, 1).reshape(h, -1)
    q = (maps.reshape(n * h, w) @ sin_x.T).reshape(n, h, -1).transpose(0, 1).reshape(h, -1)
    real = (cos_y @ p - sin_y @ q).reshape(len(ky), n, -1)
    imaginary = (cos_y @ q + sin_y @ p).reshape(len(ky), n, -1)  # the sign does not matter for the power
    power = (real.pow(2) + imaginary.pow(2)).transpose(0, 1)  # [unit, ky, kx]
    partners = torch.full((len(kx),), 2.0, dtype=torch.float64)  # columns with a conjugate partner count twice
    partners[0] = 1.0
    if w % 2 == 0 and kx[-1] == w // 2:
        partners[-1] = 1.0  # the Nyquist column is its own partner
    weights = ((ky[:, None].double().pow(2) + kx[None, :].double().pow(2)).sqrt() <= radius) * partners[None, :]
    weights[(ky == 0).nonzero()[0, 0], 0] = 0.0  # no DC: the mean would dominate the ratio
    low = (power * weights).sum((1, 2))
    total = (h * w) ** 2 * variance  # h w times the sum of squared deviations
    return low / total.clamp_min(1e-30)


def linear_resize_matrix(n_from: int, n_to: int) -> torch.Tensor:
    """[n_to, n_from] float64: `F.interpolate(mode="linear", align_corners=False)` as a matrix
    (bilinear resizing is this along each axis)."""
    eye = torch.eye(n_from, dtype=torch.float64)[None]  # each source position as a channel
    return F.interpolate(eye, size=n_to, mode="linear", align_corners=False)[0].T


def variance_kept(maps: torch.Tensor, coarse_size: int, variance: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """[unit, h, w] float64 -> the variance of each map bilinearly downsampled to coarse_size and
    back, over its own (`variance`; `mean`, each map's mean). Resizing is linear,
    restored = U_y (D_y M D_x^T) U_x^T, so the restored map's sum and sum of squares come from
    the small coarse map C and the Gram matrices of the up-sampling: sum = s_y C s_x and sum of
    squares = <G_y C G_x, C>. C is centred on the map's mean first (resizing keeps constants),
    so a map far from zero loses no digits to the difference of the two. Equal to resizing with
    F.interpolate to float rounding (tests/test_analysis.py), at a fraction of its cost: the
    full-size restored maps are never built."""
    _n, h, w = maps.shape
    down_y, down_x = linear_resize_matrix(h, coarse_size), linear_resize_matrix(w, coarse_size)
    up_y, up_x = linear_resize_matrix(coarse_size, h), linear_resize_matrix(coarse_size, w)
    coarse = down_y @ (maps.reshape(-1, w) @ down_x.T).reshape(_n, h, coarse_size)  # [unit, c, c]
    coarse = coarse - mean[:, None, None]
    total = torch.einsum("i,uij,j->u", up_y.sum(0), coarse, up_x.sum(0))
    squares = ((up_y.T @ up_y) @ coarse @ (up_x.T @ up_x) * coarse).sum((1, 2))
    n_cells = h * w
    restored_variance = squares / n_cells - (total / n_cells) ** 2
    return restored_variance / variance.clamp_min(1e-30)


def coarseness_metrics(maps: torch.Tensor, radius_fraction: float = 0.125, coarse_size: int = 14) -> torch.Tensor:
    """[unit, a, b] -> [unit, 3] in METRICS order."""
    maps = maps.double()
    flat = maps.flatten(1)
    mean = flat.mean(1)
    # two passes over the centred maps rather than torch.var_mean's one-pass Welford update: 4x
    # faster at [512, 113, 113] (20 -> 5 ms), and as accurate
    variance = (flat - mean[:, None]).square_().mean(1)
    fft_low = low_frequency_share(maps, radius_fraction, variance)
    kept = variance_kept(maps, coarse_size, variance, mean)
    # differences in place (abs_): each fresh [unit, a, b] float64 temporary costs its page faults
    dx = maps.diff(dim=2).abs_().mean((1, 2))
    dy = maps.diff(dim=1).abs_().mean((1, 2))
    return torch.stack((fft_low, kept, (dx + dy) / 2), dim=1)


def metric_frame(kind: str, values: torch.Tensor) -> pl.DataFrame:
    n = values.shape[0]
    return pl.DataFrame(
        {
            "unit_kind": [kind] * (n * len(METRICS)),
            "unit": torch.arange(n).repeat_interleave(len(METRICS)).numpy(),
            "metric": list(METRICS) * n,
            "value": values.flatten().float().numpy(),
        }
    )

@register
class Coarseness(Analyzer):
    name = "coarseness"
    # v2: each map's variance in two passes (4x faster): v1's values to 1e-14 relative, except a
    # near-empty map's variance_kept, which is 0 to rounding in both (|value| < 1e-17)
    version = 2
    description = "FFT low-frequency ratio (no DC), variance kept at 14x14, gradient magnitude per neuron and head map"
    requires = "activations"
    hooks = ("neurons",)
    optional_hooks = ("attention",)  # heads too, in families that have them
    tables = {"coarseness": TableSpec({"unit_kind": pl.Utf8, "unit": pl.Int16, "metric": pl.Utf8})}

    def analyze(self, ctx):
        frames = [metric_frame("neuron", coarseness_metrics(ctx.neuron_maps(torch.float64)))]
        if ctx.has("attention"):
            frames.append(metric_frame("head", coarseness_metrics(attention_maps(ctx)[:, 0])))
        return {"coarseness": pl.concat(frames)}

