"""Singular values of every weight matrix at the epoch (log scale)."""

from dashboards.views import view
from dashboards.views._common import curves


@view("spectrum", "Singular values", group="Geometry", needs=("epoch",), order=54,
      caption=lambda store, variant, epoch: f"Singular value spectra at epoch {epoch}")
def spectrum(store, variant: str, epoch: int):
    frame = store.spectrum(variant, epoch)
    plot = curves(frame, "index", "value", "matrix", f"Singular values at epoch {epoch}", "singular value (log)", logy=True)
    low, high = store.spectrum_range(variant)
    # one scale for the whole run: the spectrum's change reads against it, and the layout stays put
    return plot.opts(ylim=(low / 1.5, high * 1.5)) if low is not None and high is not None and low > 0 else plot
