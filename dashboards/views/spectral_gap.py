"""Largest ratio of consecutive top singular values per matrix over epochs: a gap opening means
a few directions now carry the matrix."""

from dashboards.views import view
from dashboards.views._common import curves


@view("spectral_gap", "Spectral gap", group="Geometry", over_epochs=True, order=52)
def spectral_gap(store, variant: str):
    return curves(store.participation(variant), "epoch", "spectral_gap", "matrix", "Spectral gap per matrix",
                  "max s_i / s_(i+1), top 10")
