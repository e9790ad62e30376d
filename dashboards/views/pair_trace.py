"""The traced input's margin over training (input_outcomes), beside the pinned pairs (one train, one
test), with the memorization, turn and grok epochs marked: when did the model come to know it?"""

import holoviews as hv
import polars as pl

from dashboards.state import parse_pair
from dashboards.views import view
from dashboards.views._common import no_data, pair_label, training_marks, with_legend


def caption(store, variant: str, pair: str, pinned: list[str]) -> str:
    a, b = parse_pair(pair)
    rows = store.graduation(variant).filter((pl.col("a") == a) & (pl.col("b") == b))
    if rows.is_empty():
        return f"Input {a}+{b}: not in the warehouse"
    row = rows.row(0, named=True)
    when = f"graduates at epoch {row['graduation_epoch']}" if row["graduation_epoch"] is not None else "never graduates"
    beside = f"; pinned: {', '.join(pinned)}" if pinned else "; shift-click a pair on a map to pin it beside"
    return f"Input {a}+{b} = {(a + b) % int(store.variant(variant)['p'])} ({row['split']}) {when}{beside}"


@view("pair_trace", "Traced input's margin", group="Trace", needs=("pair", "pinned"), over_epochs=True, order=82,
      caption=caption)
def pair_trace(store, variant: str, pair: str, pinned: list[str]):
    title = f"Margin over training, {pair_label(store, variant, pair)}"  # named, as the lens and split name theirs
    curves = []
    for traced in [pair, *[p for p in pinned if p != pair]]:
        a, b = parse_pair(traced)
        rows = store.pair_outcomes(variant, a, b).filter(pl.col("measure") == "margin")
        if rows.height:
            curves.append(hv.Curve((rows["epoch"].to_numpy(), rows["value"].to_numpy()), "epoch", "margin",
                                   label=pair_label(store, variant, traced)))
    if not curves:
        return no_data(title)
    marks = training_marks(store.turn(variant))
    return with_legend(hv.Overlay([*curves, hv.HLine(0).opts(color="lightgray"), *marks]).opts(
        title=title, xlabel="epoch", ylabel="margin (correct - best wrong)"), len(curves))
