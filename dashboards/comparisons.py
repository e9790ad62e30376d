"""Cross-variant overlays for the Compare page: one curve per variant of one measure, optionally
shifted so every variant's turn sits at 0. Data from the store only."""

from __future__ import annotations

from collections.abc import Callable

import holoviews as hv
import polars as pl

from dashboards.store import WarehouseStore
from dashboards.views._common import no_data

# measure -> (reader of an (epoch, value) frame, y label, log scale)
MEASURES: dict[str, tuple[Callable[[WarehouseStore, str], pl.DataFrame], str, bool]] = {
    "test loss": (lambda s, v: s.losses(v).filter(pl.col("split") == "test").select("epoch", value="loss"), "test loss (log)", True),
    "train loss": (lambda s, v: s.losses(v).filter(pl.col("split") == "train").select("epoch", value="loss"), "train loss (log)", True),
    "test accuracy": (lambda s, v: s.losses(v).filter(pl.col("split") == "test").select("epoch", value="accuracy"), "test accuracy", False),
    "W_in participation ratio": (lambda s, v: s.participation(v).filter(pl.col("matrix") == "W_in").select("epoch", value="participation_ratio"), "PR of W_in", False),
    "specialized fraction": (lambda s, v: s.specialization(v).select("epoch", value="specialized_fraction"), "specialized fraction", False),
    "velocity": (lambda s, v: s.trajectory(v).select("epoch", value="velocity").drop_nulls().drop_nans(), "velocity (log)", True),
}


# Up to this many variants an overlay draws one glyph per curve with a legend; beyond it HoloViews
# batches all curves into one multi-line glyph (hover names the variant): 30 curves drew in 0.7 s
# one by one and in 0.2 s batched, and a 30-entry legend hides the plot anyway.
LEGEND_LIMIT = 12
POINTS_PER_CURVE = 600  # buckets per curve: a 620-pixel-wide overlay shows no more


def envelope(frame: pl.DataFrame, buckets: int = POINTS_PER_CURVE) -> pl.DataFrame:
    """The rows holding each bucket's lowest and highest value, plus the first and last row: a curve
    of 25,000 epochs drawn from ~1,200 points that keeps every spike (a slingshot, a loss bump).
    Thirty variants of full-resolution curves sent 50x the data and took seconds to draw."""
    if frame.height <= 2 * buckets:
        return frame
    size = -(-frame.height // buckets)
    indexed = frame.with_row_index("row").with_columns(bucket=pl.col("row") // size)
    extremes = (pl.col("value") == pl.col("value").min().over("bucket")) | (
        pl.col("value") == pl.col("value").max().over("bucket"))
    keep = extremes | (pl.col("row") == 0) | (pl.col("row") == frame.height - 1)
    return indexed.filter(keep).unique("row", keep="first", maintain_order=True).select(frame.columns)


def overlay(store: WarehouseStore, variants: list[str], measure: str, align_at_turn: bool) -> hv.Element:
    reader, ylabel, logy = MEASURES[measure]
    xlabel = "epoch - turn epoch" if align_at_turn else "epoch"
    curves = {}
    for variant in variants:
        frame = reader(store, variant)
        if logy:
            frame = frame.filter(pl.col("value") > 0)
        frame = envelope(frame)
        shift = 0
        if align_at_turn:
            turn = store.turn(variant).get("turn_epoch")
            if turn is None:
                continue  # a variant that never turned has nothing to align
            shift = turn
        curves[variant] = hv.Curve(((frame["epoch"] - shift).to_numpy(), frame["value"].to_numpy()), xlabel, ylabel)
    title = f"{measure} by variant" + (" (aligned at the turn)" if align_at_turn else "")
    if not curves:
        return no_data(title, "no variant has this measure" + (" and a turn" if align_at_turn else ""))
    return hv.NdOverlay(curves, "variant").opts(title=title, logy=logy, show_legend=True, legend_limit=LEGEND_LIMIT)


def trajectories(store: WarehouseStore, variants: list[str], basis: str = "own") -> hv.Element:
    """Each variant's PC2/PC3 path (the plane where the seeds' loops show), in one shared basis or
    each in its own PCA; a black dot marks where each path starts."""
    paths, starts = {}, []
    for variant in variants:
        frame = store.basis_trajectory(variant, basis)
        if not frame.is_empty() and frame["pc3"].null_count() < frame.height:
            points = frame.select("pc2", "pc3").drop_nulls().to_numpy()
            paths[variant] = hv.Curve(points, "PC2", "PC3")
            starts.append(points[0])
    where = "each in its own PCA basis" if basis == "own" else f"shared basis {basis}"
    title = f"Trajectories PC2/PC3 ({where})"
    if not paths:
        return no_data(title, "no compared variant is in this basis")
    origins = hv.Points(starts, ["PC2", "PC3"]).opts(color="black")  # options both backends know: export draws it too
    return (hv.NdOverlay(paths, "variant").opts(show_legend=True, legend_limit=LEGEND_LIMIT) * origins).opts(title=title)


def event_order_table(store: WarehouseStore, variants: list[str], from_turn: bool) -> pl.DataFrame:
    """One row per event (metric and kind), a column per variant: the epoch of the variant's first
    such event, or with `from_turn` its distance from the variant's turn (negative: before it; empty
    for a run without a turn); the median over variants, and in how many of the runs that turned
    it came before the turn. Rows in order of the median: the usual order of events."""
    firsts = store.first_events(variants)
    value = "epochs_from_turn" if from_turn else "epoch"
    if firsts.is_empty():
        return pl.DataFrame({"event": []}, schema={"event": pl.Utf8})
    firsts = firsts.with_columns(event=pl.col("metric") + " " + pl.col("kind"))
    wide = firsts.pivot(on="variant", index="event", values=value)
    turned = pl.col("epochs_from_turn").is_not_null()
    order = firsts.group_by("event").agg(
        median=pl.col(value).median(),
        before_turn=(pl.col("epochs_from_turn") < 0).sum().cast(pl.Utf8) + " of " + turned.sum().cast(pl.Utf8))
    columns = ["event", "median", "before_turn", *[v for v in variants if v in wide.columns]]
    return wide.join(order, on="event").sort(["median", "event"], nulls_last=True).select(columns)
