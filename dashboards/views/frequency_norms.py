"""Embedding norm of each key frequency over epochs (the final checkpoint's key frequencies,
plus the strongest other frequency in gray): when the Fourier features appear."""

import holoviews as hv
import polars as pl

from dashboards.views import view
from dashboards.views._common import no_data, with_legend

TITLE = "Key frequencies: embedding norm"


@view("frequency_norms", TITLE, group="Frequencies", over_epochs=True, order=20)
def frequency_norms(store, variant: str):
    frame = store.embedding_norms(variant)
    if frame.is_empty():
        return no_data(TITLE)
    found = store.key_frequencies(variant)
    keys = found["frequency"].to_list()
    # where the embedding shows no norm gap the neurons named the keys: their norms need not stand apart
    title = f"{TITLE} (keys by neuron clusters)" if "neuron_clusters" in found["rule"].to_list() else TITLE
    others = (frame.filter(~pl.col("frequency").is_in(keys)).group_by("epoch").agg(pl.col("norm").max()).sort("epoch"))
    elements = [hv.Curve((others["epoch"].to_numpy(), others["norm"].to_numpy()), "epoch", "norm",
                         label="strongest other").opts(color="lightgray")]
    for k in keys:
        part = frame.filter(pl.col("frequency") == k)
        elements.append(hv.Curve((part["epoch"].to_numpy(), part["norm"].to_numpy()), "epoch", "norm", label=f"k={k}"))
    return with_legend(hv.Overlay(elements).opts(title=title, xlabel="epoch", ylabel="norm"), len(elements))
