"""Coarseness of the neuron maps over epochs (mean over neurons): how much of each map is low
frequency (blobs) versus fine checkerboard (the seeds' multi-scale finding)."""

import polars as pl

from dashboards.views import view
from dashboards.views._common import curves


@view("coarseness", "Coarseness", group="Neurons", over_epochs=True, order=36)
def coarseness(store, variant: str):
    frame = store.coarseness(variant).filter(pl.col("unit_kind") == "neuron")
    return curves(frame, "epoch", "value", "metric", "Neuron map coarseness (mean)", "metric")
