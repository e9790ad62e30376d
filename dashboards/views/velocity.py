"""Distance moved in weight space per epoch between checkpoints: bursts of motion at the turn."""

import polars as pl

from dashboards.views import view
from dashboards.views._common import curves


@view("velocity", "Velocity", group="Trajectory", over_epochs=True, order=66)
def velocity(store, variant: str):
    frame = store.trajectory(variant).select("epoch", "velocity").drop_nulls().drop_nans()
    frame = frame.with_columns(series=pl.lit("velocity"))
    return curves(frame, "epoch", "velocity", "series", "Weight-space velocity", "distance / epoch", logy=True)
