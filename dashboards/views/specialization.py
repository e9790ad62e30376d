"""Share of neurons specialized to one frequency (best frequency explains at least the family's
share of their variance, 85% for the transformer) over epochs: when the MLP commits to the circuit."""

import polars as pl

from dashboards.views import view
from dashboards.views._common import curves


@view("specialization", "Neuron specialization", group="Neurons", over_epochs=True, order=30)
def specialization(store, variant: str):
    frame = store.specialization(variant).select("epoch", "specialized_fraction").with_columns(
        series=pl.lit("specialized fraction"))
    return curves(frame, "epoch", "specialized_fraction", "series", "Specialized neurons", "fraction")
