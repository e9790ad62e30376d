"""When each input (a, b) graduated: the first checkpoint from which the model answers it right for
good (input_graduation), gray where it never does. Memorized train pairs graduate early, test pairs
around the turn; a click on a pair traces it (shift-click pins it beside)."""

from dashboards.views import view
from dashboards.views._common import grid_of, no_data, pair_image, select_pair


def caption(store, variant: str) -> str:
    frame = store.graduation(variant)
    if frame.is_empty():
        return "Graduation epoch per input"
    never = frame["graduation_epoch"].null_count()
    line = f"Graduation epoch per input ({never:,} of {frame.height:,} never graduate, gray"
    summary = store.variant_summary().filter(variant=variant)
    half = summary["test_half_graduated_epoch"][0] if summary.height else None
    if half is not None:  # when the test inputs generalize, against the aggregate turn
        turn = summary["turn_epoch"][0]
        line += f"; half the test inputs by epoch {half:,}" + (f", turn {turn:,}" if turn is not None else "")
    line += "); click a pair to trace it, shift-click to pin it"
    traced = store.traced_inputs(variant)
    if traced < frame.height:  # the published run traces 1,024 of 12,769: most clicks find no logit lens
        line += f"; {traced:,} of {frame.height:,} inputs are traced (logit lens, frequency split; the sidebar traces any other)"
    return line


@view("graduation_map", "Graduation map", group="Trace", order=80, on_tap=select_pair, caption=caption)
def graduation_map(store, variant: str):
    frame = store.graduation(variant)
    title = "Graduation epoch per input"
    if frame.is_empty():
        return no_data(title)
    p = int(store.variant(variant)["p"])
    return pair_image(grid_of(frame, "graduation_epoch", p), title, "graduation epoch", "viridis")
