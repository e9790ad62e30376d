"""Neurons x frequencies at the epoch, neurons sorted by best frequency then strength, so the
frequency clusters read as blocks (REQ_006). Clicking a row selects that neuron: the heatmap beside
it follows (the seeds' neuron discovery loop)."""

from __future__ import annotations

import holoviews as hv
import numpy as np

from dashboards.views import view
from dashboards.views._common import no_data


def neuron_order(store, variant: str, epoch: int) -> list[int]:
    """Neurons by (best frequency, explained fraction descending): row r of the plot is order[r]."""
    return store.neuron_best(variant, epoch)["neuron"].to_list()


def select_neuron(store, state, x: float, y: float, shift: bool = False) -> None:
    order = neuron_order(store, state.variant, state.epoch)
    row = int(np.floor(y))
    if 0 <= row < len(order):
        state.neuron = order[row]


@view("neuron_clusters", "Neuron frequency clusters", group="Neurons", needs=("epoch",), order=32,
      on_tap=select_neuron,
      caption=lambda store, variant, epoch: f"Neurons sorted by best frequency at epoch {epoch}; click a row to open it")
def neuron_clusters(store, variant: str, epoch: int):
    frame = store.neuron_freq(variant, epoch)
    title = f"Neuron clusters at epoch {epoch}"
    if frame.is_empty():
        return no_data(title)
    n_freq = int(frame["frequency"].max())
    matrix = frame["value"].to_numpy().astype(np.float32).reshape(-1, n_freq)  # float32: half the bytes to the browser
    order = neuron_order(store, variant, epoch)
    sorted_rows = matrix[order]
    # hv.Image draws the first array row at the top; flip so row r spans y in [r, r + 1)
    return hv.Image(np.flipud(sorted_rows), bounds=(0.5, 0, n_freq + 0.5, len(order)),
                    kdims=["frequency", "neuron rank"], vdims=["explained"]).opts(
        title=title, cmap="viridis", colorbar=True, clim=(0, 1), xlabel="frequency k", ylabel="neurons (sorted)")
