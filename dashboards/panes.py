"""How a registered view becomes a live pane: bound to the shared state, with the epoch marker,
the brushed range and click-to-navigate on over-epochs plots. Only panes whose section is open
re-render when the state moves; the over-epochs curves themselves never re-render on an epoch
change (only their marker does)."""

from __future__ import annotations

import holoviews as hv
import panel as pn
import param

from dashboards.state import WorkbenchState
from dashboards.store import WarehouseStore
from dashboards.views import View

PLOT_SIZE = {"width": 470, "height": 300}


def epoch_marker(epoch: int) -> hv.VLine:
    return hv.VLine(epoch).opts(color="black", line_dash="dashed", line_width=1)


def brushed_span(epoch_range) -> hv.VSpan:
    if not epoch_range:
        return hv.VSpan(0, 0).opts(alpha=0)
    return hv.VSpan(*epoch_range).opts(color="gold", alpha=0.25)


def listener(*streams: hv.streams.Stream) -> hv.DynamicMap:
    """An empty layer that owns the plot's pointer streams. HoloViews links a stream declared on a
    DynamicMap's own `streams` reliably (a `source=` on a bound DynamicMap is never subscribed in
    the browser), and the subscribers, not this callback, act on the events."""
    return hv.DynamicMap(lambda **_: hv.Points([]), streams=list(streams))


def over_epochs_pane(view: View, store: WarehouseStore, state: WorkbenchState) -> hv.DynamicMap:
    base = hv.DynamicMap(pn.bind(view.render, store, variant=state.param.variant))
    marker = hv.DynamicMap(pn.bind(epoch_marker, epoch=state.param.epoch))
    span = hv.DynamicMap(pn.bind(brushed_span, epoch_range=state.param.epoch_range))
    tap, bounds = hv.streams.Tap(), hv.streams.BoundsX()
    tap.add_subscriber(lambda x, y: state.go_to_epoch(x) if x is not None else None)

    def brush(boundsx):
        if boundsx and boundsx[0] is not None:
            state.epoch_range = (float(boundsx[0]), float(boundsx[1]))

    bounds.add_subscriber(brush)
    return (base * span * marker * listener(tap, bounds)).opts(**PLOT_SIZE)


def at_epoch_pane(view: View, store: WarehouseStore, state: WorkbenchState, visible: param.Parameter) -> hv.DynamicMap:
    last: dict[str, hv.Element] = {}

    def render(variant, collapsed, **needs):
        # a closed section keeps its last picture and costs nothing while the epoch moves
        if collapsed and "element" in last:
            return last["element"]
        last["element"] = view.render(store, variant, **needs)
        return last["element"]

    bound = pn.bind(render, variant=state.param.variant, collapsed=visible,
                    **{need: state.param[need] for need in view.needs})
    dmap = hv.DynamicMap(bound)
    if view.on_tap is not None:
        tap = hv.streams.Tap()
        tap.add_subscriber(lambda x, y: view.on_tap(store, state, x, y) if x is not None else None)
        dmap = dmap * listener(tap)
    return dmap.opts(**PLOT_SIZE) if view.backend == "bokeh" else dmap


def caption_pane(view: View, store: WarehouseStore, state: WorkbenchState) -> pn.pane.Markdown:
    def text(variant, **needs):
        line = view.caption(store, variant, **needs) if view.caption else view.title
        return f"**{line}**"

    bound = pn.bind(text, variant=state.param.variant, **{need: state.param[need] for need in view.needs})
    return pn.pane.Markdown(bound, css_classes=[f"caption-{view.name}"], margin=(0, 10))


def view_pane(view: View, store: WarehouseStore, state: WorkbenchState, visible: param.Parameter) -> pn.Column:
    if view.over_epochs:
        plot = over_epochs_pane(view, store, state)
    else:
        plot = at_epoch_pane(view, store, state, visible)
    pane = pn.pane.HoloViews(plot, backend=view.backend, css_classes=[f"view-{view.name}"], linked_axes=False,
                             **({"width": 420, "height": 360} if view.backend == "matplotlib" else {}))
    return pn.Column(caption_pane(view, store, state), pane, name=view.name, css_classes=[f"card-{view.name}"])
