"""Train and test loss over epochs (log scale) with the turn and grok epochs marked (REQ_009)."""

import holoviews as hv

from dashboards.views import view
from dashboards.views._common import TRAINING_MARKS, curves, training_marks, with_legend

TITLE, YLABEL = "Train and test loss", "loss (log)"


def caption(store, variant: str) -> str:
    """What the vertical lines are (a legend lists curves only): each mark's colour and epoch."""
    turn = store.turn(variant)
    marks = [f"{name} at {turn[key]:,} ({color})" for key, name, color in TRAINING_MARKS if turn.get(key) is not None]
    return "Loss; " + (", ".join(marks) if marks else "not memorized, no turn yet")


@view("loss_curves", "Loss", group="Training", over_epochs=True, order=10, caption=caption)
def loss_curves(store, variant: str):
    frame = store.losses(variant)
    plot = curves(frame, "epoch", "loss", "split", TITLE, YLABEL, logy=True)
    if frame.is_empty():
        return plot
    # a new overlay, so the curves' title and labels are set on it again
    overlay = hv.Overlay([*plot, *training_marks(store.turn(variant))])
    return with_legend(overlay.opts(title=TITLE, xlabel="epoch", ylabel=YLABEL, logy=True), len(plot))
