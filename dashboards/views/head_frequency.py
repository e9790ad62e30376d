"""Each attention head's dominant frequency over training (attention_head_frequency): heads that
converge on one frequency and later diversify (p107/seed999 in the notes) show as lines that meet
and part."""

import holoviews as hv

from dashboards.views import view
from dashboards.views._common import no_data, with_legend


@view("head_frequency", "Head frequencies", group="Attention", over_epochs=True, order=49, requires=("attention",))
def head_frequency(store, variant: str):
    frame = store.head_frequencies(variant)
    title = "Dominant frequency per head"
    if frame.is_empty():
        return no_data(title)
    curves = [hv.Curve((part["epoch"].to_numpy(), part["dominant_frequency"].to_numpy()), "epoch", "frequency",
                       label=f"head {head}").opts(interpolation="steps-post")
              for (head,), part in frame.group_by(["head"], maintain_order=True)]
    return with_legend(hv.Overlay(curves).opts(title=title, xlabel="epoch", ylabel="dominant frequency"), len(curves))
