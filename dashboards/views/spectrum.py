"""Singular values of every weight matrix at the epoch (log scale)."""

from dashboards.views import view
from dashboards.views._common import curves


@view("spectrum", "Singular values", group="Geometry", needs=("epoch",), order=54,
      caption=lambda store, variant, epoch: f"Singular value spectra at epoch {epoch}")
def spectrum(store, variant: str, epoch: int):
    frame = store.spectrum(variant, epoch)
    return curves(frame, "index", "value", "matrix", f"Singular values at epoch {epoch}", "singular value (log)", logy=True)
