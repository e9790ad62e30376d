"""Total weight norm over epochs: weight decay shrinking the memorizing solution."""

import polars as pl

from dashboards.views import view
from dashboards.views._common import curves


@view("weight_norm", "Weight norm", group="Training", over_epochs=True, order=14)
def weight_norm(store, variant: str):
    frame = store.progress(variant).filter(pl.col("measure") == "weight_norm")
    return curves(frame, "epoch", "value", "measure", "Weight norm", "L2 norm")
