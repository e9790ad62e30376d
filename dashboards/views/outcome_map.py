"""Each input's margin at the selected epoch: the correct answer's logit minus the best wrong one
(input_outcomes), positive where the model answers right. The map follows the epoch slider; a click
on a pair traces it (shift-click pins it beside)."""

import numpy as np
import polars as pl

from dashboards.views import view
from dashboards.views._common import grid_of, no_data, pair_image, select_pair


def caption(store, variant: str, epoch: int) -> str:
    frame = store.outcome_map(variant, epoch)
    if frame.is_empty():
        return f"Margin per input at epoch {epoch}"
    right = frame.group_by("split").agg((pl.col("value") > 0).mean().alias("right")).sort("split")
    shares = ", ".join(f"{s} {r:.0%} right" for s, r in zip(right["split"], right["right"]))
    return f"Margin per input at epoch {epoch} ({shares})"


@view("outcome_map", "Margin map", group="Trace", needs=("epoch",), order=81, on_tap=select_pair, caption=caption)
def outcome_map(store, variant: str, epoch: int):
    frame = store.outcome_map(variant, epoch)
    title = f"Margin per input at epoch {epoch}"
    if frame.is_empty():
        return no_data(title)
    p = int(store.variant(variant)["p"])
    grid = grid_of(frame, "value", p)
    limit = float(np.nanmax(np.abs(grid))) or 1.0
    return pair_image(grid, title, "margin", "RdBu").opts(clim=(-limit, limit))
