"""Train and test loss over epochs (log scale) with the turn and grok epochs marked (REQ_009)."""

import holoviews as hv

from dashboards.views import view
from dashboards.views._common import curves


@view("loss_curves", "Loss", group="Training", over_epochs=True, order=10)
def loss_curves(store, variant: str):
    frame = store.losses(variant)
    plot = curves(frame, "epoch", "loss", "split", "Train and test loss", "loss (log)", logy=True)
    turn = store.turn(variant)
    marks = []
    for key, color in (("memorization_epoch", "gray"), ("turn_epoch", "orange"), ("grok_epoch", "green")):
        if turn.get(key) is not None:
            marks.append(hv.VLine(turn[key], label=key.replace("_epoch", "")).opts(color=color))
    return hv.Overlay([plot, *marks]).opts(title="Train and test loss", logy=True) if marks else plot

