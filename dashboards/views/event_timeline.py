"""Every detected event of the run (event_order) on one timeline: a row per series, a mark per onset,
collapse, settle or peak, with the run's phases (training_phases) shaded behind. Click anywhere to
go to that epoch: the events are where the other views are worth reading."""

import holoviews as hv
import numpy as np

from dashboards.views import view
from dashboards.views._common import no_data

KIND_COLORS = {"onset": "green", "collapse": "red", "settle": "gray", "peak": "purple"}
PHASE_COLORS = {"memorization": "#dddddd", "circuit_formation": "#fde0c5", "cleanup": "#d5ecd4", "plateau": "#dce6f2"}


def caption(store, variant: str) -> str:
    phases = store.phases(variant)
    events = store.events(variant)
    spans = ", ".join(f"{r['phase'].replace('_', ' ')} {r['start_epoch']}-{r['end_epoch']}" for r in phases.iter_rows(named=True))
    return f"{events.height} events in {events['metric'].n_unique() if events.height else 0} series; phases: {spans or 'none'}"


@view("event_timeline", "Events and phases", group="Events", over_epochs=True, order=12, caption=caption)
def event_timeline(store, variant: str):
    events = store.events(variant)
    title = "Events and phases"
    if events.is_empty():
        return no_data(title, "no events: run tdw index on an analyzed run")
    metrics = sorted(events["metric"].unique().to_list())
    row = {m: i for i, m in enumerate(metrics)}
    layers = [hv.Rectangles([(r["start_epoch"], -0.5, r["end_epoch"], len(metrics) - 0.5)]).opts(
                  color=PHASE_COLORS.get(r["phase"], "#eeeeee"), alpha=0.6)
              for r in store.phases(variant).iter_rows(named=True)]
    for kind, color in KIND_COLORS.items():
        part = events.filter(events["kind"] == kind)
        points = np.column_stack([part["epoch"].to_numpy(), [row[m] for m in part["metric"]]]) if part.height else np.empty((0, 2))
        layers.append(hv.Scatter(points, "epoch", "series", label=kind).opts(color=color))
    return hv.Overlay(layers).opts(title=title, xlabel="epoch", ylabel="series", yticks=list(enumerate(metrics)),
                                   show_legend=True)
