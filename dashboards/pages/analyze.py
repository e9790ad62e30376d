"""Analyze: per variant, how many checkpoints each analyzer has covered; launch the missing
analysis of a variant as a tracked job (it re-indexes when done) and watch it run."""

from __future__ import annotations

import panel as pn
import polars as pl

from dashboards.jobs_panel import JobMonitor
from dashboards.launch import launch_tdw
from dashboards.state import WorkbenchState
from dashboards.store import WarehouseStore


def coverage_frame(store: WarehouseStore):
    frame = store.analysis_coverage()
    if frame.is_empty():
        return pl.DataFrame({"variant": []}).to_pandas()
    wide = frame.with_columns(done=pl.format("{}/{}", "analyzed", "checkpoints")).pivot(
        on="analyzer", index="variant", values="done")
    return wide.to_pandas()


def build(store: WarehouseStore, state: WorkbenchState) -> pn.Column:
    table = pn.widgets.Tabulator(coverage_frame(store), disabled=True, show_index=False, sizing_mode="stretch_width",
                                 css_classes=["analysis-coverage"])
    variant = pn.widgets.Select(name="Variant", options=store.variant_names(), css_classes=["analyze-variant"])
    launch = pn.widgets.Button(name="Analyze what is missing", button_type="primary", css_classes=["analyze-launch"])
    launched = pn.pane.Markdown("", css_classes=["analyze-launched"])
    monitor = JobMonitor(store, ("analyze",), "analyze-jobs")

    def on_launch(_):
        path = store.variant(variant.value).get("path")
        if not path:
            launched.object = f"{variant.value}: not in the warehouse"
            return
        launch_tdw(store, "analyze", path, "--quiet", "--job-db", str(store.db))
        launched.object = f"Analysis of {variant.value} launched."

    def on_generation(*_):
        table.value = coverage_frame(store)
        variant.options = store.variant_names()

    state.param.watch(on_generation, "generation")
    launch.on_click(on_launch)
    return pn.Column(pn.pane.Markdown("### Analysis coverage (checkpoints analyzed / trained)"), table,
                     pn.Row(variant, launch), launched, pn.pane.Markdown("### Analysis jobs"), monitor.table,
                     sizing_mode="stretch_width")
