"""Train and test loss over epochs (log scale) with the turn and grok epochs marked (REQ_009)."""

import holoviews as hv

from dashboards.views import view
from dashboards.views._common import curves, with_legend

TITLE, YLABEL = "Train and test loss", "loss (log)"


@view("loss_curves", "Loss", group="Training", over_epochs=True, order=10)
def loss_curves(store, variant: str):
    frame = store.losses(variant)
    plot = curves(frame, "epoch", "loss", "split", TITLE, YLABEL, logy=True)
    turn = store.turn(variant)
    marks = []
    for key, color in (("memorization_epoch", "gray"), ("turn_epoch", "orange"), ("grok_epoch", "green")):
        if turn.get(key) is not None:
            marks.append(hv.VLine(turn[key], label=key.replace("_epoch", "")).opts(color=color))
    # a new overlay, so the curves' title and labels are set on it again
    return with_legend(hv.Overlay([plot, *marks]).opts(title=TITLE, ylabel=YLABEL, logy=True), 2) if marks else plot

