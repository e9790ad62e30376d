"""Embedding norm per frequency at the selected epoch: which frequencies dominate now. The y axis
spans the variant's whole run, so moving the epoch shows the norms grow against a fixed scale (and
the figure's layout never changes: only its bars move)."""

import holoviews as hv
import polars as pl

from dashboards.views import view
from dashboards.views._common import no_data


@view("frequencies_at_epoch", "Frequencies at the epoch", group="Frequencies", needs=("epoch",), order=22,
      caption=lambda store, variant, epoch: f"Embedding Fourier norms at epoch {epoch}")
def frequencies_at_epoch(store, variant: str, epoch: int):
    norms = store.embedding_norms(variant)
    frame = norms.filter(pl.col("epoch") == epoch)
    title = f"Frequencies at epoch {epoch}"
    if frame.is_empty():
        return no_data(title)
    return hv.Bars((frame["frequency"].to_numpy(), frame["norm"].to_numpy()), "frequency", "norm").opts(
        title=title, xlabel="frequency k", ylabel="norm", ylim=(0, float(norms["norm"].max()) * 1.05))
