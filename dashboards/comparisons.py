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


def overlay(store: WarehouseStore, variants: list[str], measure: str, align_at_turn: bool) -> hv.Element:
    reader, ylabel, logy = MEASURES[measure]
    xlabel = "epoch - turn epoch" if align_at_turn else "epoch"
    curves = []
    for variant in variants:
        frame = reader(store, variant)
        if logy:
            frame = frame.filter(pl.col("value") > 0)
        shift = 0
        if align_at_turn:
            turn = store.turn(variant).get("turn_epoch")
            if turn is None:
                continue  # a variant that never turned has nothing to align
            shift = turn
        curves.append(hv.Curve(((frame["epoch"] - shift).to_numpy(), frame["value"].to_numpy()), xlabel, ylabel, label=variant))
    title = f"{measure} by variant" + (" (aligned at the turn)" if align_at_turn else "")
    if not curves:
        return no_data(title, "no variant has this measure" + (" and a turn" if align_at_turn else ""))
    return hv.Overlay(curves).opts(title=title, logy=logy, show_legend=True)


def trajectories(store: WarehouseStore, variants: list[str]) -> hv.Element:
    paths = []
    for variant in variants:
        frame = store.trajectory(variant)
        if not frame.is_empty():
            paths.append(hv.Curve(frame.select("pc1", "pc2").to_numpy(), "PC1", "PC2", label=variant))
    return hv.Overlay(paths).opts(title="Trajectories PC1/PC2 (each in its own PCA basis)", show_legend=True) if paths \
        else no_data("Trajectories")
