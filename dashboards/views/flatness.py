"""Train-loss increase under random weight perturbations (median over directions) per radius
over epochs: flatter minima after grokking."""

import polars as pl

from dashboards.views import view
from dashboards.views._common import curves


@view("flatness", "Flatness", group="Flatness", over_epochs=True, order=70)
def flatness(store, variant: str):
    frame = store.flatness(variant).filter(pl.col("statistic") == "p50").with_columns(
        radius=pl.format("radius {}", pl.col("radius").round(4)))
    return curves(frame, "epoch", "value", "radius", "Flatness: median loss increase", "train-loss increase")
