"""The traced input through the layers (logit_lens): the margin its answer would have if read off
the residual stream after the embedding, after attention and after the MLP, over training. Shows
which layer makes the answer readable, and from when. Only for the run's traced pairs."""

import holoviews as hv

from dashboards.state import parse_pair
from dashboards.views import view
from dashboards.views._common import no_data, not_traced, with_legend

LAYERS = ("embed", "attention", "mlp")


def caption(store, variant: str, pair: str) -> str:
    a, b = parse_pair(pair)
    if store.pair_lens(variant, a, b).is_empty():
        return f"Logit lens: {not_traced(store, variant, a, b, command=False)}"  # the plot says how to trace it
    return f"Logit lens for {a}+{b}: margin read after each layer"


@view("pair_logit_lens", "Logit lens of the traced input", group="Trace", needs=("pair",), over_epochs=True,
      order=83, requires=("residual",), caption=caption)
def pair_logit_lens(store, variant: str, pair: str):
    a, b = parse_pair(pair)
    frame = store.pair_lens(variant, a, b)
    title = f"Logit lens, {a}+{b}"
    if frame.is_empty():
        return no_data(title, not_traced(store, variant, a, b))
    curves = [hv.Curve((part["epoch"].to_numpy(), part["value"].to_numpy()), "epoch", "margin", label=f"after {layer}")
              for layer in LAYERS for part in [frame.filter(frame["layer"] == layer)] if part.height]
    return with_legend(hv.Overlay([*curves, hv.HLine(0).opts(color="lightgray")]).opts(
        title=title, xlabel="epoch", ylabel="margin read off the residual"), len(curves))
