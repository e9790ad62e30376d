"""The traced input's correct-answer logit split by frequency (answer_frequencies) over training:
each key frequency's term, every other frequency's, and the constant. The Fourier algorithm shows as
the key frequencies' terms rising while the rest falls."""

import holoviews as hv

from dashboards.state import parse_pair
from dashboards.views import view
from dashboards.views._common import no_data, not_traced, with_legend


@view("pair_frequencies", "Traced input by frequency", group="Trace", needs=("pair",), over_epochs=True, order=84,
      caption=lambda store, variant, pair: f"Correct logit of {pair} split by frequency (key frequencies, other, constant)")
def pair_frequencies(store, variant: str, pair: str):
    a, b = parse_pair(pair)
    frame = store.pair_frequencies(variant, a, b)
    title = f"Correct logit by frequency, {a}+{b}"
    if frame.is_empty():
        return no_data(title, not_traced(store, variant, a, b))
    curves = []
    for (component, frequency), part in frame.group_by(["component", "frequency"], maintain_order=True):
        label = f"k={frequency}" if component == "key" else component
        curves.append(hv.Curve((part["epoch"].to_numpy(), part["value"].to_numpy()), "epoch", "logit", label=label))
    return with_legend(hv.Overlay(curves).opts(title=title, xlabel="epoch", ylabel="contribution to the correct logit"),
                       len(curves))
