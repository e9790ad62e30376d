"""coarseness: multi-scale structure of each neuron map and each head's attention map.

Metrics (research notes, 2026-02-02):
  fft_low_freq   share of non-DC spectral power within radius 12.5% of the spectrum (high = coarse)
  variance_kept  variance after bilinear downsampling to 14x14 and back, over the original's
  gradient       mean absolute difference between neighbours (edge density)
"""

import polars as pl
import torch
import torch.nn.functional as F

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analyzers import register
from tdw.analyzers.attention import attention_maps

METRICS = ("fft_low_freq", "variance_kept", "gradient")

def coarseness_metrics(maps: torch.Tensor, radius_fraction: float = 0.125, coarse_size: int = 14) -> torch.Tensor:
    """[unit, a, b] -> [unit, 3] in METRICS order."""
    maps = maps.double()
    _n, h, w = maps.shape
    power = torch.fft.fftshift(torch.fft.fft2(maps), dim=(-2, -1)).abs().pow(2)
    cy, cx = h // 2, w // 2
    yy, xx = torch.meshgrid(torch.arange(h) - cy, torch.arange(w) - cx, indexing="ij")
    radius = radius_fraction * min(h, w)
    low = (yy.double().pow(2) + xx.double().pow(2)).sqrt() <= radius
    power[:, cy, cx] = 0.0  # remove DC: the mean would dominate the ratio
    fft_low = power[:, low].sum(1) / power.sum((1, 2)).clamp_min(1e-30)

    coarse = F.interpolate(maps[:, None], size=(coarse_size, coarse_size), mode="bilinear", align_corners=False)
    restored = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    variance = maps.flatten(1).var(1)
    kept = restored.flatten(1).var(1) / variance.clamp_min(1e-30)

    dx = (maps[:, :, 1:] - maps[:, :, :-1]).abs().mean((1, 2))
    dy = (maps[:, 1:, :] - maps[:, :-1, :]).abs().mean((1, 2))
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
    description = "FFT low-frequency ratio (no DC), variance kept at 14x14, gradient magnitude per neuron and head map"
    requires = "activations"
    hooks = ("neurons",)
    optional_hooks = ("attention",)  # heads too, in families that have them
    tables = {"coarseness": TableSpec({"unit_kind": pl.Utf8, "unit": pl.Int16, "metric": pl.Utf8})}

    def analyze(self, ctx):
        frames = [metric_frame("neuron", coarseness_metrics(ctx.neuron_maps()))]
        if ctx.has("attention"):
            frames.append(metric_frame("head", coarseness_metrics(attention_maps(ctx)[:, 0])))
        return {"coarseness": pl.concat(frames)}

