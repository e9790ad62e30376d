"""The run's path through weight space, projected on its first principal components (REQ_029):
PC1/PC2 and PC2/PC3, the selected epoch marked. Clicking near a point selects its epoch."""

from __future__ import annotations

import holoviews as hv
import numpy as np

from dashboards.views import view
from dashboards.views._common import no_data


def path(store, variant: str, epoch: int, x: str, y: str, title: str):
    frame = store.trajectory(variant)
    if frame.is_empty() or frame[x].null_count() == frame.height:
        return no_data(title)
    # the colour bar says which end of the path is early (a paper figure has no hover)
    points = hv.Points(frame.select(x, y, "epoch").to_numpy(), [x, y], ["epoch"]).opts(color="epoch", cmap="viridis", colorbar=True)
    line = hv.Path([frame.select(x, y).to_numpy()]).opts(color="lightgray")
    here = frame.filter(frame["epoch"] == epoch)
    # a marker's size is `size` (pixels across) to Bokeh and `s` (points squared) to matplotlib
    marker = (hv.Points(here.select(x, y).to_numpy(), [x, y]).opts(color="red").opts(size=10, backend="bokeh")
              .opts(s=100, backend="matplotlib") if here.height else hv.Points([], [x, y]))
    return (line * points * marker).opts(title=f"{title}, epoch {epoch}", xlabel=x.upper(), ylabel=y.upper())


def nearest_epoch(store, state, px: str, py: str, x: float, y: float) -> None:
    frame = store.trajectory(state.variant)
    if frame.is_empty():
        return
    xy = frame.select(px, py).to_numpy()
    i = int(np.nanargmin((xy[:, 0] - x) ** 2 + (xy[:, 1] - y) ** 2))
    state.go_to_epoch(frame["epoch"][i])


@view("trajectory_pc12", "Trajectory PC1/PC2", group="Trajectory", needs=("epoch",), order=60,
      on_tap=lambda store, state, x, y, shift: nearest_epoch(store, state, "pc1", "pc2", x, y))
def trajectory_pc12(store, variant: str, epoch: int):
    return path(store, variant, epoch, "pc1", "pc2", "PC1 / PC2")


@view("trajectory_pc23", "Trajectory PC2/PC3", group="Trajectory", needs=("epoch",), order=62,
      on_tap=lambda store, state, x, y, shift: nearest_epoch(store, state, "pc2", "pc3", x, y))
def trajectory_pc23(store, variant: str, epoch: int):
    return path(store, variant, epoch, "pc2", "pc3", "PC2 / PC3")
