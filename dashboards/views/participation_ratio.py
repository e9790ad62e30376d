"""Participation ratio of each weight matrix over epochs: the effective dimensionality that
compresses as the model groks (the seeds' dimensionality-compression notes)."""

from dashboards.views import view
from dashboards.views._common import curves


@view("participation_ratio", "Participation ratio", group="Geometry", over_epochs=True, order=50)
def participation_ratio(store, variant: str):
    return curves(store.participation(variant), "epoch", "participation_ratio", "matrix",
                  "Participation ratio per matrix", "PR = (sum s^2)^2 / sum s^4")
