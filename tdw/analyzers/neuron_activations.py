"""neuron_activations: each neuron's p x p activation map at "=" for the heatmaps (REQ_005).

Storage: one row per (variant, epoch, neuron) holding the map as a list of uint8 codes with
its own `lo`/`hi` (value = lo + code / 255 * (hi - lo)): 1/255 of the map's range is finer than
any colormap shows, and it keeps a p=113 run of 50 checkpoints at about 330 MB raw instead of
1.3 GB in float32. Row groups of 16 neurons let a one-neuron read touch one small group.
"""

import polars as pl
import torch

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analyzers import register

LEVELS = 255


def quantize(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    flat = maps.flatten(1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    scale = (hi - lo).clamp_min(1e-12)
    codes = torch.round((flat - lo[:, None]) / scale[:, None] * LEVELS).to(torch.uint8)
    return codes, lo, hi


def dequantize(codes, lo: float, hi: float, p: int):
    import numpy as np

    return (lo + np.asarray(codes, dtype=np.float32) / LEVELS * (hi - lo)).reshape(p, p)


@register
class NeuronActivations(Analyzer):
    name = "neuron_activations"
    description = "p x p activation map of each neuron where the answer is read, uint8-coded with per-map lo/hi"
    requires = "activations"
    hooks = ("neurons",)
    row_group_size = 16
    tables = {
        "neuron_activations": TableSpec(
            {"neuron": pl.Int16, "lo": pl.Float32, "hi": pl.Float32}, value_type=pl.List(pl.UInt8), value_column="codes",
            warehouse="parquet",
        )
    }

    def analyze(self, ctx):
        codes, lo, hi = quantize(ctx.neuron_maps())
        return {
            "neuron_activations": pl.DataFrame(
                {
                    "neuron": torch.arange(codes.shape[0]).numpy(),
                    "lo": lo.numpy(),
                    "hi": hi.numpy(),
                    "codes": pl.Series(codes.numpy()).cast(pl.List(pl.UInt8)),
                }
            )
        }
