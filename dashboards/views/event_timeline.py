"""Every detected event of the run (event_order) on one timeline: a row per series, a mark per onset,
collapse, settle or peak, with the run's phases (training_phases) shaded behind. Click anywhere to
go to that epoch: the events are where the other views are worth reading."""

import holoviews as hv
import numpy as np

from dashboards.views import view
from dashboards.views._common import no_data

KIND_COLORS = {"onset": "green", "collapse": "red", "settle": "gray", "peak": "purple"}
PHASE_COLORS = {"memorization": "#dddddd", "circuit_formation": "#fde0c5", "cleanup": "#d5ecd4", "plateau": "#dce6f2"}
ROW_PX = 15  # one series' row: its label's height at Bokeh's default tick font
ROW_INCHES = 0.25  # the same in an exported matplotlib figure


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
    # a row for every series of the warehouse, not only this run's: each series keeps its row from
    # run to run (the eye finds it where it was), and another run's timeline has the same layers
    # and size, so a variant switch patches the drawn figure (a new one cost 0.36 s of the server)
    metrics = store.event_series()
    row = {m: i for i, m in enumerate(metrics)}
    phases = store.phases(variant)
    bands = hv.Rectangles((phases["start_epoch"].to_numpy(), np.full(phases.height, -0.5), phases["end_epoch"].to_numpy(),
                           np.full(phases.height, len(metrics) - 0.5),
                           [PHASE_COLORS.get(phase, "#eeeeee") for phase in phases["phase"]]), vdims=["color"])
    layers = [bands.opts(color="color", alpha=0.6).opts(backend="bokeh", line_width=0)]
    for kind, color in KIND_COLORS.items():
        part = events.filter(events["kind"] == kind)
        # the series' name, the change's size and where it lies from the turn, for the hover: the
        # row labels of 28 series are small, and "how far before the turn" is the question
        columns = {"epoch": part["epoch"].to_numpy(), "series": np.array([row[m] for m in part["metric"]], dtype=float),
                   "metric": part["metric"].to_numpy(), "magnitude": part["magnitude"].to_numpy(),
                   "from_turn": np.array(["no turn" if d is None else f"{d:+,}" for d in part["epochs_from_turn"]], dtype=object)}
        layers.append(hv.Scatter(columns, "epoch", ["series", "metric", "magnitude", "from_turn"], label=kind)
                      .opts(color=color).opts(backend="bokeh", tools=["hover"], hover_tooltips=[
                          ("series", "@{metric}"), ("event", kind), ("epoch", "@{epoch}"), ("magnitude", "@{magnitude}{0.000}"),
                          ("from the turn", "@{from_turn}")]))
    timeline = hv.Overlay(layers).opts(title=title, xlabel="epoch", ylabel="series", yticks=list(enumerate(metrics)),
                                       show_legend=True, legend_position="right")
    # a row of height per series and the legend beside the frame: at a fixed 300 px a study's 28
    # series overlapped into an unreadable column, and the legend covered the cleanup phase
    rows = len(metrics)
    timeline = timeline.opts(backend="bokeh", frame_height=max(200, ROW_PX * rows), frame_width=420)
    return timeline.opts(backend="matplotlib", fig_inches=(8, max(4.5, ROW_INCHES * rows)), aspect="auto")
