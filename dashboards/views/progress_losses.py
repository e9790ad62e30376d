"""Progress measures (Nanda et al.): restricted loss (only the key frequencies kept) falls before
test loss does; excluded loss (key frequencies removed) rises as the circuit takes over."""

import polars as pl

from dashboards.views import view
from dashboards.views._common import curves


@view("progress_losses", "Restricted and excluded loss", group="Training", over_epochs=True, order=12)
def progress_losses(store, variant: str):
    frame = store.progress(variant).filter(pl.col("measure").is_in(["restricted_loss", "excluded_loss"]))
    return curves(frame, "epoch", "value", "measure", "Restricted / excluded loss", "loss (log)", logy=True)
