"""Distance moved in weight space per epoch between checkpoints: bursts of motion at the turn."""

import polars as pl

from dashboards.views import view
from dashboards.views._common import curves


@view("velocity", "Velocity", group="Trajectory", over_epochs=True, order=66)
def velocity(store, variant: str):
    frame = store.trajectory(variant).select("epoch", "velocity").drop_nulls().drop_nans()
    # the legend names what moved; a label equal to a column's name ("velocity") is read by
    # HoloViews' matplotlib backend as that column (a label per point), and the export failed
    frame = frame.with_columns(series=pl.lit("all parameters"))
    return curves(frame, "epoch", "velocity", "series", "Weight-space velocity", "distance / epoch", logy=True)
