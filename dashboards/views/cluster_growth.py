"""Specialized neurons on each frequency over training (frequency_lifecycle): which frequencies the
MLP takes up, in what order and how fast, and whether it drops one it had formed (the seeds'
p101/seed999 "lost a low frequency", drawn dashed). The frequencies are those that ever hold a
cluster (a share of the neurons, `frequency_lifecycle.cluster_share`), in the order they first do."""

import holoviews as hv

from dashboards.views import view
from dashboards.views._common import no_data, with_legend

TITLE = "Neuron clusters over training"


@view("cluster_growth", TITLE, group="Neurons", over_epochs=True, order=31,
      caption=lambda store, variant: cluster_caption(store.cluster_growth(variant)))
def cluster_growth(store, variant: str):
    frame = store.cluster_growth(variant)
    if frame.is_empty():
        return no_data(TITLE, "no frequency holds a cluster (frequency_lifecycle) at any checkpoint")
    curves = []
    for (frequency, status), part in frame.group_by(["frequency", "status"], maintain_order=True):
        label = f"k={frequency}" + (" (dropped)" if status == "lost" else "")
        curve = hv.Curve((part["epoch"].to_numpy(), part["specialized_neurons"].to_numpy()), "epoch",
                         "specialized_neurons", label=label)
        curves.append(curve.opts(line_dash="dashed", backend="bokeh").opts(linestyle="--", backend="matplotlib")
                      if status == "lost" else curve)
    return with_legend(hv.Overlay(curves).opts(title=TITLE, xlabel="epoch", ylabel="specialized neurons"), len(curves))


def cluster_caption(frame) -> str:
    if frame.is_empty():
        return "Specialized neurons per frequency: none holds a cluster yet"
    order = frame.unique(["frequency"], maintain_order=True)
    dropped = order.filter(order["status"] == "lost")["frequency"].to_list()
    formed = ", ".join(str(k) for k in order["frequency"])
    share = frame["cluster_share"][0]
    return f"Clusters ({share:.0%} of the neurons) form on {formed}, in that order; " + (
        f"dropped: {', '.join(map(str, dropped))}" if dropped else "none dropped")
