"""Train: a form for one variant or a grid (comma-separated values), validated as you launch
(one clear line per bad value), run as a `tdw sweep` in the background, with live progress and
loss curves. Finished jobs are indexed by the sweep, and the app picks the new warehouse up."""

from __future__ import annotations

import panel as pn

from dashboards.jobs_panel import JobMonitor
from dashboards.launch import launch_tdw
from dashboards.state import WorkbenchState
from dashboards.store import WarehouseStore
from tdw.config import DEFAULT_FAMILY
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.jobs.grid import expand, parse_values
from tdw.jobs.sweep import extension_of, parse_stack
from tdw.parameters import SWEEPABLE
from tdw.training.lifecycle import prepare_run


def build(store: WarehouseStore, state: WorkbenchState) -> pn.Column:
    # one field per parameter that declares a form label (tdw/parameters.py): values comma-separated
    fields = {key: pn.widgets.TextInput(name=parameter.form, value=parameter.form_value,
                                        css_classes=[f"train-{key.replace('_', '-')}"], width=150)
              for key, parameter in SWEEPABLE.items() if parameter.form}
    checkpoints = pn.widgets.TextInput(name="checkpoints", value="0:100:10,100:3000:100", css_classes=["train-checkpoints"])
    analyze = pn.widgets.Checkbox(name="analyze after training", value=True, css_classes=["train-analyze"])
    extend = pn.widgets.Checkbox(name="extend existing runs to these epochs", value=False, css_classes=["train-extend"])
    workers = pn.widgets.IntInput(name="workers", value=2, start=1, end=32, css_classes=["train-workers"])
    executor = pn.widgets.Select(name="executor", options=["local", "ray"], value="local", css_classes=["train-executor"])
    stack = pn.widgets.TextInput(name="stack (auto: all on a GPU, none on a CPU)", value="auto", css_classes=["train-stack"])
    launch = pn.widgets.Button(name="Launch sweep", button_type="primary", css_classes=["train-launch"])
    message = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["train-error"])
    launched = pn.pane.Markdown("", css_classes=["train-launched"])
    monitor = JobMonitor(store, ("train", "sweep"), "train-jobs")

    def grid_arguments() -> tuple[list[str], int]:
        """The sweep's arguments and its number of variants; a bad value, or a clash with an
        existing run, raises the one line `tdw sweep` would print (before anything starts)."""
        grid = {key: parse_values(key, widget.value) for key, widget in fields.items()
                if widget.value.strip()}  # a field left blank takes the family's default
        # the form shows every family's dimensions; those no chosen family has are left out
        used = set().union(*(get_family(name).uses for name in grid.get("family", [DEFAULT_FAMILY])))
        grid = {key: values for key, values in grid.items()
                if not SWEEPABLE[key].architecture or SWEEPABLE[key].field in used}
        args = [x for key in grid for x in (SWEEPABLE[key].option, fields[key].value)]
        configs = expand(grid, checkpoints.value or None)  # every variant validated before launch
        for config in configs:  # as the sweep will check them, so its refusal shows here and not in a log
            if extend.value:
                extension_of(config, store.results)
            else:
                prepare_run(config, store.results, force=False)
        args += ["--stack", str(parse_stack(stack.value.strip()))]
        return args + (["--checkpoints", checkpoints.value] if checkpoints.value else []), len(configs)

    def on_launch(_):
        try:
            args, count = grid_arguments()
        except TdwError as error:
            message.object, message.visible = str(error), True
            return
        message.visible = False
        command = ["sweep", *args, "--workers", str(workers.value), "--executor", executor.value,
                   "--results", str(store.results), "--db", str(store.db)] + (["--analyze"] if analyze.value else []) \
            + (["--extend"] if extend.value else [])
        log = launch_tdw(store, *command)
        launched.object = f"Launched a sweep of {count} variants (log: {log})."

    launch.on_click(on_launch)
    return pn.Column(
        pn.pane.Markdown("### Train a variant or a grid (comma-separated values)"),
        pn.FlexBox(*fields.values()), pn.Row(checkpoints, workers, executor, stack), pn.Row(analyze, extend, launch), message, launched,
        pn.pane.Markdown("### Jobs"), monitor.table, monitor.curves, sizing_mode="stretch_width")
