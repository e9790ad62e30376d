"""unembedding_fourier: the same Fourier norms for W_U over the p output tokens."""

import polars as pl

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analyzers import register
from tdw.analyzers.embedding_fourier import fourier_norm_frame


@register
class UnembeddingFourier(Analyzer):
    name = "unembedding_fourier"
    description = "norm of W_U projected on cos(k)/sin(k) over the p output tokens, per frequency k"
    requires = "weights"
    tables = {"unembedding_fourier": TableSpec({"frequency": pl.Int16, "component": pl.Utf8})}

    def analyze(self, ctx):
        return {"unembedding_fourier": fourier_norm_frame(ctx.family.unembedding(ctx.weights).T, ctx.p)}
