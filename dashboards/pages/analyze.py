"""Analyze: per variant, how many checkpoints each analyzer has covered; launch the missing
analysis of a variant, or its opt-in LLC at chosen checkpoints (its step calibrated first if
asked), as a tracked job (it re-indexes when done) and watch it run."""

from __future__ import annotations

import panel as pn
import polars as pl

from dashboards.jobs_panel import JobMonitor
from dashboards.launch import launch_tdw
from dashboards.state import WorkbenchState
from dashboards.store import WarehouseStore
from tdw.epoch_spec import parse_epoch_spec
from tdw.errors import TdwError


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

    llc_epochs = pn.widgets.TextInput(name="LLC at epochs", placeholder="e.g. 0:25000:1250", width=220,
                                      css_classes=["analyze-llc-epochs"])
    calibrate = pn.widgets.Checkbox(name="calibrate its step first (--llc-step auto)", css_classes=["analyze-llc-calibrate"])
    estimate = pn.widgets.Button(name="Estimate the LLC", css_classes=["analyze-llc"])

    def on_estimate(_):
        """`tdw analyze RUN --analyzers llc --epochs SPEC [--llc-step auto]` as a job; epochs that are
        not the variant's checkpoints are one line here, and nothing is launched."""
        path, spec = store.variant(variant.value).get("path"), llc_epochs.value.strip()
        if not path:
            launched.object = f"{variant.value}: not in the warehouse"
            return
        try:
            wanted = parse_epoch_spec(spec, "LLC at epochs") if spec else []
        except TdwError as error:
            launched.object = str(error)
            return
        missing = sorted(set(wanted) - set(store.checkpoint_epochs(variant.value)))
        if not wanted or missing:
            launched.object = (f"LLC at epochs {spec!r}: no checkpoint of {variant.value} at epoch {missing[0]}" if missing
                               else "LLC at epochs: which checkpoints, e.g. 0:25000:1250")
            return
        step = ["--llc-step", "auto"] if calibrate.value else []
        launch_tdw(store, "analyze", path, "--analyzers", "llc", "--epochs", spec, *step, "--quiet", "--job-db", str(store.db),
                   log_name="llc")
        launched.object = (f"LLC of {variant.value} at {len(wanted)} checkpoints launched"
                           + (", its step calibrated first." if calibrate.value else "."))

    def on_generation(*_):
        table.value = coverage_frame(store)
        variant.options = store.variant_names()

    state.param.watch(on_generation, "generation")
    launch.on_click(on_launch)
    estimate.on_click(on_estimate)
    return pn.Column(pn.pane.Markdown("### Analysis coverage (checkpoints analyzed / trained)"), table,
                     pn.Row(variant, launch), pn.Row(llc_epochs, calibrate, estimate), launched,
                     pn.pane.Markdown("### Analysis jobs"), monitor.table, sizing_mode="stretch_width")
