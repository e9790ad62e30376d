"""logit_lens: for each traced input, what the residual stream would answer after each layer.

At the answer position the residual stream after the embedding, after attention and after the MLP
is read straight through the unembedding (the model has no final LayerNorm, so the last layer's
reading is the model's answer). Per layer: the correct answer's logit, its margin over the best
wrong answer, its rank and the loss, as `input_outcomes` measures the output. So a pair's trace
shows at which layer, and from which epoch, the answer becomes readable.

Computed on the run's traced probe (`tdw analyze --trace`), not the whole grid unless p is small.
Families without a residual stream (the MLP) are skipped by the pipeline with one line.
"""

from __future__ import annotations

import polars as pl

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analyzers import register
from tdw.analyzers.input_outcomes import MEASURES, outcomes
from tdw.deferred_imports import torch


@register
class LogitLens(Analyzer):
    name = "logit_lens"
    description = "per traced input and layer: the residual stream read through W_U (correct logit, margin, rank, loss)"
    requires = "activations"
    hooks = ("residual",)
    traced = True
    tables = {"logit_lens": TableSpec({"a": pl.Int16, "b": pl.Int16, "layer": pl.Utf8, "measure": pl.Utf8})}

    def analyze(self, ctx):
        p, rows = ctx.p, ctx.traced_rows()
        labels = ctx.data.labels[rows]
        layers = ctx.family.residual_stream(ctx.cache)
        values = torch.stack([outcomes(ctx.family.decode_residual(ctx.weights, ctx.at_traced(resid)), labels)
                              for resid in layers.values()], dim=1)  # [pair, layer, measure]
        n, n_layers, n_measures = values.shape
        pair = rows.cpu().repeat_interleave(n_layers * n_measures)
        return {"logit_lens": pl.DataFrame({
            "a": (pair // p).numpy(),
            "b": (pair % p).numpy(),
            "layer": [layer for layer in layers for _ in range(n_measures)] * n,
            "measure": list(MEASURES) * (n * n_layers),
            "value": values.float().flatten().cpu().numpy(),
        })}
