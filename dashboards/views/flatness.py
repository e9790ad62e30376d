"""Train-loss increase under random weight perturbations (median over directions) per radius
over epochs, on a log scale: the increase at a radius of 0.1 falls from 0.04 to 1e-7 over the
published run, most of it through circuit formation and the turn (flatter minima after grokking),
which a linear axis flattens to zero after the first thousand epochs."""

import polars as pl

from dashboards.views import view
from dashboards.views._common import curves

TITLE = "Flatness: median loss increase"


def medians(store, variant: str) -> pl.DataFrame:
    return store.flatness(variant).filter(pl.col("statistic") == "p50")


def caption(store, variant: str) -> str:
    dropped = medians(store, variant).filter(pl.col("value") <= 0).height
    note = f"; {dropped} medians at or below zero (noise at the smallest radii) are not drawn" if dropped else ""
    return f"Median train-loss increase under random weight perturbations, per relative radius (log scale{note})"


@view("flatness", "Flatness", group="Flatness", over_epochs=True, order=70, caption=caption)
def flatness(store, variant: str):
    frame = medians(store, variant).with_columns(radius=pl.format("radius {}", pl.col("radius").round(4)))
    return curves(frame, "epoch", "value", "radius", TITLE, "train-loss increase (log)", logy=True)
