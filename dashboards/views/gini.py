"""Gini coefficients of the embedding's Fourier norms and of the neuron-logit map: how
concentrated on few frequencies the model has become (sparsity rises at the turn)."""

import polars as pl

from dashboards.views import view
from dashboards.views._common import curves


@view("gini", "Frequency sparsity (Gini)", group="Frequencies", over_epochs=True, order=24)
def gini(store, variant: str):
    frame = store.progress(variant).filter(pl.col("measure").str.starts_with("gini_"))
    return curves(frame, "epoch", "value", "measure", "Frequency sparsity (Gini)", "Gini")
