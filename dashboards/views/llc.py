"""The local learning coefficient (SGLD, the opt-in `llc` analyzer) of all weights, the attention
and the MLP over the checkpoints it was estimated at: how many effective dimensions the loss
landscape has around the weights (it rises while the model memorizes and falls as it cleans up)."""

from dashboards.views import view
from dashboards.views._common import curves, no_data


@view("llc", "Local learning coefficient", group="Flatness", over_epochs=True, order=72)
def llc(store, variant: str):
    frame = store.llc(variant)
    if frame.is_empty():
        return no_data("Local learning coefficient", "not estimated: tdw analyze RUN --analyzers llc --epochs 0:E:S")
    return curves(frame, "epoch", "value", "component", "Local learning coefficient (SGLD)", "LLC")
