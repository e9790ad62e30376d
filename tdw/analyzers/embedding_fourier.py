"""embedding_fourier: how much of the token embedding (W_E, or the family's input layer) lies on each
Fourier basis vector of the p input tokens (REQ_004)."""

import polars as pl

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analysis.fourier import component_norms, fourier_basis
from tdw.analyzers import register


def fourier_norm_frame(matrix, p: int) -> pl.DataFrame:
    """Rows (frequency, component, value) for frequencies >= 1; `matrix` is [token, d]."""
    norms = component_norms(matrix.float())
    _, labels = fourier_basis(p)
    rows = [(k, c, float(n)) for (k, c), n in zip(labels, norms) if k > 0]
    return pl.DataFrame(rows, schema=["frequency", "component", "value"], orient="row")


@register
class EmbeddingFourier(Analyzer):
    name = "embedding_fourier"
    description = "norm of W_E projected on cos(k)/sin(k) over the p input tokens, per frequency k"
    requires = "weights"
    tables = {"embedding_fourier": TableSpec({"frequency": pl.Int16, "component": pl.Utf8})}

    def analyze(self, ctx):
        return {"embedding_fourier": fourier_norm_frame(ctx.family.embedding(ctx.weights, ctx.p), ctx.p)}
