"""Attention from "=" to the first operand for every (a, b) at the epoch, for the selected head."""

import numpy as np

from dashboards.views import view
from dashboards.views._common import no_data, pair_image


@view("attention_map", "Attention", group="Attention", needs=("epoch", "head"), order=40, requires=("attention",),
      caption=lambda store, variant, epoch, head: f"Head {head} at epoch {epoch}: attention from '=' to a")
def attention_map(store, variant: str, epoch: int, head: int):
    frame = store.attention_map(variant, epoch, head)
    title = f"Head {head} attention to a, epoch {epoch}"
    if frame.is_empty():
        return no_data(title)
    p = int(frame["a"].max()) + 1
    grid = frame["value"].to_numpy().astype(np.float32).reshape(p, p)
    return pair_image(grid, title, "attention", "viridis").opts(clim=(0, 1))
