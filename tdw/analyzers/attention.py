"""attention: per head, the attention from "=" to a and to b over the grid, and each head's
frequency specialization (fraction of the map's variance per frequency)."""

from __future__ import annotations

import polars as pl

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analysis.fourier import fractions_frame, frequency_fractions_2d
from tdw.analyzers import register
from tdw.deferred_imports import torch

SOURCES = ("a", "b")


def attention_maps(ctx) -> torch.Tensor:
    """[head, source(a, b), a, b]: attention paid from "=" (query 2) to key 0 (a) and key 1 (b)."""
    p = ctx.p
    pattern = ctx.cache[ctx.family.hooks["attention"]][:, :, -1, :2]  # [pair, head, source] at the "=" query
    return pattern.permute(1, 2, 0).reshape(pattern.shape[1], 2, p, p)


@register
class Attention(Analyzer):
    name = "attention"
    description = "attention from '=' to a and to b per head over the grid; per-head frequency fractions"
    requires = "activations"
    hooks = ("attention",)
    tables = {
        "attention": TableSpec({"head": pl.Int8, "source": pl.Utf8, "a": pl.Int16, "b": pl.Int16}, warehouse="parquet"),
        "attention_freq": TableSpec({"head": pl.Int8, "frequency": pl.Int16}),
    }

    def analyze(self, ctx):
        p = ctx.p
        maps = attention_maps(ctx).float()
        n_heads = maps.shape[0]
        head, source, a, b = torch.meshgrid(torch.arange(n_heads), torch.arange(2), torch.arange(p), torch.arange(p), indexing="ij")
        attention = pl.DataFrame(
            {
                "head": head.flatten().numpy(),
                "source": pl.Series(SOURCES).gather(source.flatten().numpy()),  # not a Python list: 8 -> 1 ms at p=113
                "a": a.flatten().numpy(),
                "b": b.flatten().numpy(),
                "value": maps.flatten().numpy(),
            }
        )
        fractions = frequency_fractions_2d(maps[:, 0].double()).float()  # the a-attention map of each head
        freq = fractions_frame(fractions, "head")
        return {"attention": attention, "attention_freq": freq}
