"""Cross-variant overlays for the Compare page: one curve per variant of one measure, optionally
shifted so every variant's turn sits at 0. Data from the store only."""

from __future__ import annotations

from collections.abc import Callable

import holoviews as hv
import polars as pl

from dashboards.store import WarehouseStore
from dashboards.views._common import no_data

# measure -> (reader of a (variant, epoch, value) frame for many variants in one query, y label, log scale)
MEASURES: dict[str, tuple[Callable[[WarehouseStore, list[str]], pl.DataFrame], str, bool]] = {
    "test loss": (lambda s, vs: s.losses_of(vs).filter(pl.col("split") == "test").select("variant", "epoch", value="loss"),
                  "test loss (log)", True),
    "train loss": (lambda s, vs: s.losses_of(vs).filter(pl.col("split") == "train").select("variant", "epoch", value="loss"),
                   "train loss (log)", True),
    "test accuracy": (lambda s, vs: s.losses_of(vs).filter(pl.col("split") == "test").select("variant", "epoch", value="accuracy"),
                      "test accuracy", False),
    "W_in participation ratio": (lambda s, vs: s.participation_of(vs, "W_in").select("variant", "epoch", value="participation_ratio"),
                                 "PR of W_in", False),
    "specialized fraction": (lambda s, vs: s.specialization_of(vs).select("variant", "epoch", value="specialized_fraction"),
                             "specialized fraction", False),
    "velocity": (lambda s, vs: s.velocity_of(vs).select("variant", "epoch", value="velocity").drop_nulls().drop_nans(),
                 "velocity (log)", True),
    # when each run generalizes input by input: aligned at the turn, which run's test inputs go first
    "test inputs graduated": (lambda s, vs: s.graduation_curve_of(vs).filter(pl.col("split") == "test")
                              .select("variant", "epoch", value="graduated_fraction"),
                              "share of test inputs graduated", False),
    # where estimated (the opt-in llc analyzer): how much of the weights each run uses, run beside run
    "LLC of all weights": (lambda s, vs: s.llc_of(vs), "LLC, all weights (log)", True),
}


# Up to this many variants an overlay draws one curve per variant with a legend. Beyond it, every
# variant's curve goes into one line broken by gaps (hover names the variant): HoloViews builds a
# plot per curve, so 30 curves took 0.3-0.5 s per overlay on the server and 30 separately colored
# lines read as noise anyway; one line takes ~60 ms, and a 30-entry legend would hide the plot.
LEGEND_LIMIT = 12
POINTS_PER_CURVE = 600  # buckets per curve: a 620-pixel-wide overlay shows no more


def envelope(frame: pl.DataFrame, buckets: int = POINTS_PER_CURVE, by: str | None = None,
             log_axis: str | None = None) -> pl.DataFrame:
    """The rows holding each bucket's lowest and highest value, plus the first and last row: a curve
    of 25,000 epochs drawn from ~1,200 points that keeps every spike (a slingshot, a loss bump).
    Thirty variants of full-resolution curves sent 50x the data and took seconds to draw. With `by`,
    each group (a variant's curve, rows in order) is reduced on its own. Buckets are runs of rows;
    with `log_axis` (a positive column drawn on a log axis) they are equal spans of its logarithm
    instead, so epochs 1-40, a third of a log axis over 25,000 epochs, keep their detail (row
    buckets of 42 epochs left them two points)."""
    groups = [by] if by else []
    over = (lambda e: e.over(groups)) if by else (lambda e: e)
    indexed = frame.with_columns(row=over(pl.int_range(pl.len())), rows=over(pl.len()))
    if log_axis is None:
        bucket = pl.col("row") // ((pl.col("rows") + buckets - 1) // buckets)
    else:
        logged = pl.col(log_axis).cast(pl.Float64).log()
        lowest_x, span = over(logged.min()), over(logged.max()) - over(logged.min())
        bucket = ((logged - lowest_x) / span * buckets).fill_nan(0.0).floor().clip(0, buckets - 1).cast(pl.Int64)
    indexed = indexed.with_columns(bucket=bucket)
    bucketed = [*groups, "bucket"]
    # the first row of each bucket's minimum and of its maximum (a plateau is one point, not hundreds)
    lowest = pl.col("row").get(pl.col("value").arg_min()).over(bucketed)
    highest = pl.col("row").get(pl.col("value").arg_max()).over(bucketed)
    keep = ((pl.col("rows") <= 2 * buckets) | (pl.col("row") == lowest) | (pl.col("row") == highest)
            | (pl.col("row") == 0) | (pl.col("row") == pl.col("rows") - 1))
    return indexed.filter(keep).select(frame.columns)


def gapped_curve(frame: pl.DataFrame, x: str, y: str, xlabel: str, ylabel: str, variants: list[str]) -> hv.Curve:
    """Every variant's (x, y) rows as one line, a gap (NaN) after each variant. The value dimension
    `variant` is the variant's position in `variants`, a number, not its name: 30 variants' names
    repeated at every point were 450 kB of the Compare page's document; the page's hover maps the
    number back to the name (`dashboards.pages.compare.variant_hover`)."""
    position = {name: float(i) for i, name in enumerate(variants)}
    parts = []
    for (variant,), rows in frame.group_by("variant", maintain_order=True):
        index = position[variant]
        parts.append(rows.select(pl.col(x).cast(pl.Float64), pl.col(y).cast(pl.Float64), variant=pl.lit(index)))
        parts.append(pl.DataFrame({x: [float("nan")], y: [float("nan")], "variant": [index]}))
    joined = pl.concat(parts)
    return hv.Curve((joined[x].to_numpy(), joined[y].to_numpy(), joined["variant"].to_numpy()),
                    xlabel, [ylabel, "variant"]).opts(alpha=0.6, line_width=1.5)


def in_order(frame: pl.DataFrame, variants: list[str]) -> pl.DataFrame:
    """Rows by the variants' order in `variants` (the page's, so curves keep their colors), then epoch."""
    position = {variant: i for i, variant in enumerate(variants)}
    return frame.sort(pl.col("variant").replace_strict(position, return_dtype=pl.Int64), "epoch")


def epoch_axis(align_at_turn: bool, log_epochs: bool) -> tuple[pl.Expr, str]:
    """What an overlay draws along x, and its label: the epoch, or with `align_at_turn` the epochs
    from the variant's turn (a `turn` column); on a log axis, the epoch (from 1: epoch 0 has no
    place on it), or aligned, the epoch as a multiple of the turn epoch, so every turn sits at 1
    and a 600-epoch run beside a 25,000-epoch one is not squeezed into the left edge."""
    if log_epochs:
        return ((pl.col("epoch") / pl.col("turn"), "epoch / turn epoch (log)") if align_at_turn
                else (pl.col("epoch"), "epoch (log)"))
    return (pl.col("epoch") - pl.col("turn"), "epoch - turn epoch") if align_at_turn else (pl.col("epoch"), "epoch")


def overlay(store: WarehouseStore, variants: list[str], measure: str, align_at_turn: bool,
            log_epochs: bool = False) -> hv.Element:
    reader, ylabel, logy = MEASURES[measure]
    x, xlabel = epoch_axis(align_at_turn, log_epochs)
    title = f"{measure} by variant"
    frame = reader(store, list(variants)) if variants else pl.DataFrame()
    if align_at_turn:  # a variant that never turned has nothing to align: the title says how many did
        turns = {v: t for v, t in store.turns(variants).items() if t > 0}
        title += (" (aligned at the turn)" if len(turns) == len(variants)
                  else f" (aligned at the turn: {len(turns)} of {len(variants)} turned)")
    if not frame.is_empty():
        if logy:
            frame = frame.filter(pl.col("value") > 0)
        if log_epochs:
            frame = frame.filter(pl.col("epoch") > 0)
        if align_at_turn:
            turned = pl.DataFrame(list(turns.items()), schema={"variant": pl.Utf8, "turn": pl.Int64}, orient="row")
            frame = frame.join(turned, on="variant")
        frame = in_order(frame, variants).with_columns(epoch=x).select("variant", "epoch", "value")
        frame = envelope(frame, by="variant", log_axis="epoch" if log_epochs else None)
    if frame.is_empty():
        return no_data(title, "no variant has this measure" + (" and a turn" if align_at_turn else ""))
    if frame["variant"].n_unique() > LEGEND_LIMIT:
        return gapped_curve(frame, "epoch", "value", xlabel, ylabel, list(variants)).opts(title=title, logy=logy, logx=log_epochs)
    curves = {variant[0]: hv.Curve((rows["epoch"].to_numpy(), rows["value"].to_numpy()), xlabel, ylabel)
              for variant, rows in frame.group_by("variant", maintain_order=True)}
    return hv.NdOverlay(curves, "variant").opts(title=title, logy=logy, logx=log_epochs, show_legend=True,
                                                legend_limit=LEGEND_LIMIT,
                                                legend_position="right")  # beside: inside, it covered the curves' ends


def trajectories(store: WarehouseStore, variants: list[str], basis: str = "own") -> hv.Element:
    """Each variant's PC2/PC3 path (the plane where the seeds' loops show), in one shared basis or
    each in its own PCA; a black dot marks where each path starts."""
    where = "each in its own PCA basis" if basis == "own" else f"shared basis {basis}"
    title = f"Trajectories PC2/PC3 ({where})"
    frame = store.basis_trajectories(list(variants), basis).drop_nulls(["pc2", "pc3"]) if variants else pl.DataFrame()
    if frame.is_empty():
        return no_data(title, "no compared variant is in this basis")
    frame = in_order(frame, variants)
    starts = frame.group_by("variant", maintain_order=True).first()
    origins = hv.Points(starts.select("pc2", "pc3").to_numpy(), ["PC2", "PC3"]).opts(color="black")  # options both backends know: export draws it too
    if frame["variant"].n_unique() > LEGEND_LIMIT:
        return (gapped_curve(frame, "pc2", "pc3", "PC2", "PC3", list(variants)) * origins).opts(title=title)
    paths = {variant[0]: hv.Curve(rows.select("pc2", "pc3").to_numpy(), "PC2", "PC3")
             for variant, rows in frame.group_by("variant", maintain_order=True)}
    # the legend's options on the outer overlay: `*` builds a new one, without the NdOverlay's
    return (hv.NdOverlay(paths, "variant") * origins).opts(title=title, show_legend=True, legend_limit=LEGEND_LIMIT,
                                                           legend_position="right")


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
