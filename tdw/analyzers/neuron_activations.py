"""neuron_activations: each neuron's p x p activation map at "=" for the heatmaps (REQ_005).

Storage: one row per (variant, epoch, neuron) holding the map as p * p uint8 codes in one binary
value (a-major), with its own `lo`/`hi` (value = lo + code / 255 * (hi - lo)): 1/255 of the map's
range is finer than any colormap shows, and it keeps a p=113 run of 50 checkpoints at about
200 MB instead of 1.3 GB in float32. Row groups of 16 neurons let a one-neuron read touch one
small group.

Why a binary value, not a list of uint8 (version 1): Parquet stores a list with a repetition and
a definition level per element, 6.5 million per p=113 checkpoint, and writing them took 90-128 ms
per checkpoint of the published run against 19-27 ms for the same codes as 512 values, in files
1% smaller (tdw analyze runs this for every checkpoint). The table is `neuron_maps`, not version 1's
`neuron_activations`: their codes have another type, and DuckDB cannot read the two kinds of file
as one table. Version 1's files still read as `neuron_maps` (`replaces`), converted per map as a
query reads it (about 2 ms a map, 1 s a p=113 checkpoint when every map is read), so a run whose
checkpoints are gone (a study bundle without them) keeps its maps; `tdw analyze` rewrites them.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tdw.analysis.analyzer import Analyzer, ReplacedTable, TableSpec
from tdw.analyzers import register
from tdw.deferred_imports import torch

LEVELS = 255


def quantize(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[unit, a, b] -> (codes [unit, a * b] uint8, lo [unit], hi [unit])."""
    flat = maps.flatten(1)
    lo, hi = torch.aminmax(flat, dim=1)
    scale = LEVELS / (hi - lo).clamp_min(1e-12)
    codes = (flat - lo[:, None]).mul_(scale[:, None]).round_().to(torch.uint8)
    return codes, lo, hi


def dequantize(codes: bytes, lo: float, hi: float, p: int) -> np.ndarray:
    """One map's stored codes back to its [a, b] float32 values (within half a level)."""
    return (lo + np.frombuffer(codes, dtype=np.uint8).astype(np.float32) / LEVELS * (hi - lo)).reshape(p, p)


@register
class NeuronActivations(Analyzer):
    name = "neuron_activations"
    version = 2
    description = "p x p activation map of each neuron where the answer is read, uint8-coded with per-map lo/hi"
    requires = "activations"
    hooks = ("neurons",)
    row_group_size = 16
    replaces = {
        "neuron_activations": ReplacedTable(  # version 1's table: the codes as a list of uint8
            into="neuron_maps",
            select="variant, epoch, neuron, lo, hi, "
                   "unhex(array_to_string(list_transform(codes, lambda c: lpad(to_hex(c), 2, '0')), '')) as codes",
        )
    }
    tables = {
        "neuron_maps": TableSpec(
            {"neuron": pl.Int16, "lo": pl.Float32, "hi": pl.Float32}, value_type=pl.Binary, value_column="codes",
            warehouse="parquet",
        )
    }

    def analyze(self, ctx):
        codes, lo, hi = quantize(ctx.neuron_maps())
        return {
            "neuron_maps": pl.DataFrame(
                {
                    "neuron": torch.arange(codes.shape[0]).numpy(),
                    "lo": lo.numpy(),
                    "hi": hi.numpy(),
                    "codes": pl.Series([row.tobytes() for row in codes.numpy()], dtype=pl.Binary),
                }
            )
        }
