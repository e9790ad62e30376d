"""The local learning coefficient (SGLD, the opt-in `llc` analyzer) of all weights, the attention
and the MLP over the checkpoints it was estimated at: how many effective dimensions the loss
landscape has around the weights (it rises while the model memorizes and falls as it cleans up)."""

from dashboards.views import view
from dashboards.views._common import curves, no_data


def caption(store, variant: str) -> str:
    """How many checkpoints were estimated, with which step, and how many had unsound chains (their
    NaN is not drawn), with the command that calibrates the step for the run."""
    sampler = store.llc_sampler(variant)
    if sampler.is_empty():
        return "Local learning coefficient (SGLD): not estimated"
    steps = sorted(sampler["step_size"].drop_nulls().unique())
    step = (f", step {steps[0]:.3g}" if len(steps) == 1 else f", steps {steps[0]:.3g} to {steps[-1]:.3g}" if steps else "")
    unsound = int(sampler["unsound"].sum())
    note = (f"; unsound chains at {unsound} (not drawn): calibrate the step (the Analyze page, or tdw analyze RUN "
            "--llc-step auto)" if unsound else "")
    return f"SGLD estimates at {sampler.height} checkpoints{step}{note}"


@view("llc", "Local learning coefficient", group="Flatness", over_epochs=True, order=72, caption=caption)
def llc(store, variant: str):
    frame = store.llc(variant)
    if frame.is_empty():
        return no_data("Local learning coefficient", "not estimated: tdw analyze RUN --analyzers llc --epochs 0:E:S")
    return curves(frame, "epoch", "value", "component", "Local learning coefficient (SGLD)", "LLC")
