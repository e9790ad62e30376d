"""frequency_lifecycle (sql/30_marts/frequency_lifecycle.sql) on planted neuron clusters with
hand-written answers (`planted_sql`: the view's own SQL over planted tables)."""

from __future__ import annotations

import holoviews as hv
from planted_sql import planted_warehouse, run_model

CLUSTERS = "variant varchar, epoch integer, frequency smallint, neurons bigint, specialized_neurons bigint"
ROWS = [("v", 0, 3, 30, 0), ("v", 0, 7, 30, 0), ("v", 0, 9, 40, 4),
        ("v", 100, 3, 30, 20), ("v", 100, 7, 30, 4), ("v", 100, 11, 10, 5), ("v", 100, 9, 30, 2),
        ("v", 200, 3, 30, 20), ("v", 200, 7, 30, 6), ("v", 200, 9, 40, 0),
        ("v", 300, 3, 10, 1), ("v", 300, 7, 50, 30), ("v", 300, 9, 40, 3),
        ("w", 0, 2, 20, 1)]
TABLES = {"neuron_clusters": (CLUSTERS, ROWS), "key_frequencies": ("variant varchar, frequency smallint", [("v", 7)])}


def test_a_cluster_formed_and_gone_is_lost_and_one_held_at_the_end_is_kept():
    """Run v has 100 neurons (a cluster: 5 specialized). Frequency 3 forms a cluster of 20 at epoch
    100, keeps it at 200 (the first of the tied peaks is the peak) and falls to 1: lost. Frequency 7
    grows past 5 at 200 and ends at 30, a key frequency: kept. Frequency 11 holds exactly 5 at 100
    and has no neuron at the end: lost, final 0. Frequency 9 never reaches 5: no row. Run w, 20
    neurons and one checkpoint, holds a cluster of one neuron there: kept."""
    lifecycle = run_model("frequency_lifecycle", TABLES)
    assert lifecycle.rows() == [
        # variant, frequency, first_epoch, last_epoch, peak_epoch, peak_neurons, final_neurons, status, is_key, share
        ("v", 3, 100, 200, 100, 20, 1, "lost", False, 0.05),
        ("v", 7, 200, 300, 300, 30, 30, "kept", True, 0.05),
        ("v", 11, 100, 100, 100, 5, 0, "lost", False, 0.05),
        ("w", 2, 0, 0, 0, 1, 1, "kept", False, 0.05),
    ]


def test_the_cluster_growth_view_draws_each_cluster_in_the_order_it_forms_with_zeros_where_it_has_none(tmp_path):
    """The Neurons section's view of frequency_lifecycle, through the dashboard's store: a curve per
    frequency that ever holds a cluster, in the order they form (3 and 11 at epoch 100, then 7),
    a dropped one labelled so, and 0 at the checkpoints where no neuron is on it (11 at 0, 200, 300)."""
    from dashboards.export import _holoviews
    from dashboards.store import WarehouseStore
    from dashboards.views import get_view

    _holoviews()  # the plotting extensions, whose options the views set
    store = WarehouseStore(planted_warehouse(tmp_path / "tdw.duckdb", "frequency_lifecycle", TABLES))
    try:
        view = get_view("cluster_growth")
        element = view.element(store, "v")
        caption = view.caption(store, "v")
        empty = view.element(store, "nobody")
    finally:
        store.close()
    curves = [layer for layer in element if isinstance(layer, hv.Curve)]
    assert [curve.label for curve in curves] == ["k=3 (dropped)", "k=11 (dropped)", "k=7"]
    assert [list(curve.dimension_values(1)) for curve in curves] == [[0, 20, 20, 1], [0, 5, 0, 0], [0, 4, 6, 30]]
    assert list(curves[0].dimension_values(0)) == [0, 100, 200, 300]
    assert caption == "Clusters (5% of the neurons) form on 3, 11, 7, in that order; dropped: 3, 11"
    assert isinstance(empty, hv.Text)
    # a dropped cluster is dashed in both backends (the exported figure, for a paper, too)
    import matplotlib.pyplot as plt

    figure = hv.render(element, backend="matplotlib")
    assert [line.get_linestyle() for line in figure.axes[0].lines] == ["--", "--", "-"]
    plt.close(figure)
    assert [glyph.glyph.line_dash for glyph in hv.render(element, backend="bokeh").renderers] == [
        [6], [6], []]
