"""singular_values: the raw singular-value spectrum of every weight matrix the family names
(`Family.weight_matrices`; for the transformer W_E, W_pos, W_Q, W_K, W_V, W_O stacked over heads,
head = -1, and per head, W_in, W_out, W_U). Participation ratio and spectral gap are computed from
these in SQL."""

from __future__ import annotations

import polars as pl

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analyzers import register
from tdw.deferred_imports import torch


@register
class SingularValues(Analyzer):
    name = "singular_values"
    description = "singular values of every weight matrix (and per head for attention)"
    requires = "weights"
    tables = {"singular_values": TableSpec({"matrix": pl.Utf8, "head": pl.Int8, "index": pl.Int16})}

    def analyze(self, ctx):
        frames = []
        for matrix, head, w in ctx.family.weight_matrices(ctx.weights):
            s = torch.linalg.svdvals(w.double()).float()
            frames.append(pl.DataFrame({"matrix": matrix, "head": head, "index": torch.arange(len(s)).numpy(), "value": s.numpy()}))
        return {"singular_values": pl.concat(frames)}
