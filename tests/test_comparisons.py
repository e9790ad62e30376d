"""The Compare page's overlays (dashboards/comparisons.py) against the warehouse: every variant's
curve holds its rows as SQL returns them, thinned by the envelope that keeps each bucket's extremes,
whether drawn one curve per variant (with a legend) or, for many variants, as one gapped line."""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh  # the views set Bokeh options: a plotting backend must be loaded
import numpy as np
import polars as pl
import pytest

from dashboards import comparisons
from dashboards.comparisons import envelope, gapped_curve, overlay, trajectories
from dashboards.store import WarehouseStore
from tdw.warehouse.query import query


def drawn_curves(element: hv.Element, variants: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """variant -> (x, y) of an overlay, whichever way it was drawn (a gapped line numbers the
    variants by their position in `variants`)."""
    if isinstance(element, hv.Overlay):  # trajectories: the paths and their start points
        element = element.get(0)
    if isinstance(element, hv.NdOverlay):
        return {key: (curve.dimension_values(0), curve.dimension_values(1)) for key, curve in element.items()}
    x, y, index = (element.dimension_values(i) for i in range(3))
    names = np.array(variants)[index.astype(int)]
    return {name: (x[(names == name) & ~np.isnan(x)], y[(names == name) & ~np.isnan(x)]) for name in dict.fromkeys(names)}


def test_envelope_keeps_each_buckets_first_extremes_and_the_ends():
    values = [5.0, 1.0, 1.0, 9.0, 9.0, 2.0, 3.0, 3.0, 0.0, 4.0, 7.0, 6.0]
    frame = pl.DataFrame({"variant": ["a"] * 12 + ["b"] * 3, "epoch": [*range(12), 0, 1, 2],
                          "value": [*values, 3.0, 2.0, 1.0]})
    thinned = envelope(frame, buckets=3, by="variant")  # a: buckets of 4 rows; b: 3 rows, kept whole
    a = thinned.filter(pl.col("variant") == "a")
    # bucket 0 (rows 0-3): first min row 1, max row 3; bucket 1 (4-7): max row 4, min row 5;
    # bucket 2 (8-11): min row 8, max row 10; plus the first and last rows
    assert a["epoch"].to_list() == [0, 1, 3, 4, 5, 8, 10, 11]
    assert thinned.filter(pl.col("variant") == "b")["value"].to_list() == [3.0, 2.0, 1.0]
    assert envelope(frame.filter(pl.col("variant") == "a"), buckets=3)["epoch"].to_list() == [0, 1, 3, 4, 5, 8, 10, 11]


def test_envelope_on_a_log_axis_buckets_equal_spans_of_the_log():
    """Epochs 1-999 rising: on a log axis the three buckets are 1-9, 10-99 and 100-999 (edges at
    999^(1/3) and 999^(2/3)), each kept as its first and last row; by rows they were thirds."""
    frame = pl.DataFrame({"epoch": list(range(1, 1000)), "value": [float(e) for e in range(1, 1000)]})
    assert envelope(frame, buckets=3, log_axis="epoch")["epoch"].to_list() == [1, 9, 10, 99, 100, 999]
    assert envelope(frame, buckets=3)["epoch"].to_list() == [1, 333, 334, 666, 667, 999]


def test_gapped_curve_is_each_variants_rows_separated_by_gaps():
    frame = pl.DataFrame({"variant": ["a", "a", "b", "b", "b"], "epoch": [0, 10, 0, 5, 10], "value": [1.0, 2.0, 3.0, 4.0, 5.0]})
    curve = gapped_curve(frame, "epoch", "value", "epoch", "loss", ["b", "a"])
    x, y, index = (curve.dimension_values(i) for i in range(3))
    np.testing.assert_array_equal(x, [0, 10, np.nan, 0, 5, 10, np.nan])
    np.testing.assert_array_equal(y, [1, 2, np.nan, 3, 4, 5, np.nan])
    assert index.tolist() == [1, 1, 1, 0, 0, 0, 0]  # the hover names the curve from its position in the list


@pytest.mark.parametrize("legend_limit", [12, 1])  # one curve per variant; one gapped line
def test_overlays_draw_every_variants_rows_from_sql(study, monkeypatch, legend_limit):
    monkeypatch.setattr(comparisons, "LEGEND_LIMIT", legend_limit)
    store = WarehouseStore(study)
    variants = store.variant_names()
    assert store.turns(variants) == dict(query("select variant, turn_epoch from grokking_turn where turn_epoch is not null",
                                               study).iter_rows())
    turns = {"p13_seed3": 50, "mlp_p13_seed5": 125}  # hand-set (the tiny runs never turn): p13_seed4 has none
    monkeypatch.setattr(store, "turns", lambda names: {v: t for v, t in turns.items() if v in names})
    assert isinstance(overlay(WarehouseStore(study), variants, "test loss", True), hv.Text)  # no run turned: it says so
    for align, log_epochs in [(False, False), (True, False), (False, True), (True, True)]:
        element = overlay(store, variants, "test loss", align, log_epochs)
        assert element.opts.get().kwargs.get("logx", False) == log_epochs
        title = element.opts.get().kwargs["title"]
        assert title == ("test loss by variant" + (f" (aligned at the turn: 2 of {len(variants)} turned)" if align else ""))
        drawn = drawn_curves(element, variants)
        assert sorted(drawn) == sorted(v for v in variants if not align or v in turns)
        for variant, (x, y) in drawn.items():
            rows = query(f"select epoch, loss from losses where variant = '{variant}' and split = 'test' and loss > 0 "
                         f"and epoch >= {int(log_epochs)} order by epoch", study)  # few epochs: the envelope keeps every row
            epochs = rows["epoch"].to_numpy()
            turn = turns.get(variant)
            expected = (epochs / turn if log_epochs else epochs - turn) if align else epochs
            np.testing.assert_allclose(x, expected)
            np.testing.assert_allclose(y, rows["loss"].to_numpy(), rtol=1e-6)
    graduated = drawn_curves(overlay(store, variants, "test inputs graduated", False), variants)
    assert sorted(graduated) == sorted(variants)  # every family has per-input outcomes
    for variant, (x, y) in graduated.items():
        rows = query(f"select epoch, graduated_fraction from graduation_curve where variant = '{variant}' "
                     "and split = 'test' order by epoch", study)
        np.testing.assert_allclose(x, rows["epoch"].to_numpy())
        np.testing.assert_allclose(y, rows["graduated_fraction"].to_numpy())
    llc = drawn_curves(overlay(store, variants, "LLC of all weights", False), variants)
    assert sorted(llc) == ["p13_seed3"]  # the one run the study estimated it for
    rows = query("select epoch, value from llc where variant = 'p13_seed3' and component = 'all' and statistic = 'llc' "
                 "and not isnan(value) and value > 0 order by epoch", study)  # NaN: unsound chains
    np.testing.assert_allclose(llc["p13_seed3"][0], rows["epoch"].to_numpy())
    np.testing.assert_allclose(llc["p13_seed3"][1], rows["value"].to_numpy(), rtol=1e-6)
    drawn = drawn_curves(trajectories(store, variants, "seeds"), variants)
    members = query("select distinct variant from trajectory_basis where basis = 'seeds'", study)["variant"].to_list()
    assert sorted(drawn) == sorted(members)
    for variant, (x, _) in drawn.items():
        pc2 = query(f"select value from trajectory_basis where variant = '{variant}' and basis = 'seeds' and "
                    "\"group\" = 'all' and component = 'pc2' order by epoch", study)["value"].to_numpy()
        np.testing.assert_allclose(x, pc2, rtol=1e-6)
