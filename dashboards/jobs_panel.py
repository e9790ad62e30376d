"""Live job monitor shared by the Train and Analyze pages: the catalog's jobs with progress bars,
and the loss curves of running training jobs, refreshed every second while the page is open."""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn

from dashboards.store import WarehouseStore
from tdw.jobs.task import job_task

COLUMNS = ["id", "kind", "variant", "task", "state", "percent", "progress", "host", "error"]


def job_table_frame(jobs: list[dict], kinds: tuple[str, ...]) -> pd.DataFrame:
    rows = [{"id": j["id"], "kind": j["kind"], "variant": j["variant"] or "", "task": job_task(j["kind"], j["params"]),
             "state": j["state"],
             "percent": round(100 * j["progress"] / j["total"], 1) if j["total"] else 0.0,
             "progress": f"{j['progress']}/{j['total']}", "host": j["host"] or "",
             "error": (j["error"] or "").splitlines()[0] if j["error"] else ""} for j in jobs if j["kind"] in kinds]
    return pd.DataFrame(rows, columns=COLUMNS)


class JobMonitor:
    def __init__(self, store: WarehouseStore, kinds: tuple[str, ...], css: str) -> None:
        self.store, self.kinds = store, kinds
        self.history: dict[int, list[tuple[int, float, float]]] = {}  # job -> (epoch, train, test)
        self.table = pn.widgets.Tabulator(job_table_frame([], kinds), disabled=True, show_index=False,
                                          formatters={"percent": {"type": "progress", "max": 100, "legend": True}},
                                          sizing_mode="stretch_width", height=260, css_classes=[css])
        self.curves = pn.pane.HoloViews(self.loss_plot(), css_classes=[f"{css}-losses"])
        self.callback = pn.state.add_periodic_callback(self.refresh, period=1000) if pn.state.curdoc else None
        self.refresh()

    def refresh(self) -> None:
        jobs = self.store.jobs()
        self.table.value = job_table_frame(jobs, self.kinds)
        changed = False
        for job in jobs:
            metrics = job.get("metrics") or {}
            if job["kind"] == "train" and metrics.get("epoch") is not None:
                points = self.history.setdefault(job["id"], [])
                if not points or points[-1][0] != metrics["epoch"]:
                    points.append((metrics["epoch"], metrics["train_loss"], metrics["test_loss"] or float("nan")))
                    changed = True
        if changed and "train" in self.kinds:
            self.curves.object = self.loss_plot()

    def loss_plot(self):
        curves = []
        for job_id, points in sorted(self.history.items())[-6:]:
            epochs = [p[0] for p in points]
            curves.append(hv.Curve((epochs, [p[2] for p in points]), "epoch", "loss", label=f"job {job_id} test"))
            curves.append(hv.Curve((epochs, [p[1] for p in points]), "epoch", "loss", label=f"job {job_id} train").opts(line_dash="dotted"))
        if not curves:
            return hv.Curve([], "epoch", "loss").opts(title="Live losses of running jobs", width=620, height=300)
        return hv.Overlay(curves).opts(title="Live losses of running jobs", logy=True, width=620, height=300, show_legend=True)
