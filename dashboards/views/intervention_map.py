"""What an intervention (`tdw intervene`) did to each input, at the recorded checkpoint nearest to
the selected epoch: the change of the margin (blue: helped, red: hurt), gray where not recorded.
The caption names the intervention and counts the inputs it broke and fixed."""

import numpy as np

from dashboards.views import view
from dashboards.views._common import grid_of, no_data, pair_image, select_pair


def caption(store, variant: str, epoch: int) -> str:
    frame = store.intervention_effects(variant, epoch)
    if frame.is_empty():
        return "Interventions: none recorded (tdw intervene RUN --epoch E --ablate-frequency K)"
    return (f"{frame['intervention'][0]} at epoch {frame['epoch'][0]}: {int(frame['broken'].sum())} inputs broken, "
            f"{int(frame['fixed'].sum())} fixed of {frame.height}")


@view("intervention_map", "Intervention effect", group="Trace", needs=("epoch",), order=85, on_tap=select_pair,
      caption=caption)
def intervention_map(store, variant: str, epoch: int):
    frame = store.intervention_effects(variant, epoch)
    title = "Margin change under the intervention"
    if frame.is_empty():
        return no_data(title, "no intervention recorded for this variant")
    p = int(store.variant(variant)["p"])
    grid = grid_of(frame, "margin_change", p)
    limit = float(np.nanmax(np.abs(grid))) or 1.0
    return pair_image(grid, f"{frame['intervention'][0]}, epoch {frame['epoch'][0]}", "margin change", "RdBu").opts(
        clim=(-limit, limit))
