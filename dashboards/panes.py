"""How a registered view becomes a live pane: bound to the shared state, with the epoch marker,
the brushed range and click-to-navigate on over-epochs plots. Only panes whose section is open
re-render when the state moves; the over-epochs figures never re-render on an epoch change
(their marker and band are Bokeh annotations moved in place)."""

from __future__ import annotations

import holoviews as hv
import panel as pn
import param
from bokeh.models import BoxAnnotation, Span

from dashboards.state import WorkbenchState
from dashboards.store import WarehouseStore
from dashboards.views import View

PLOT_SIZE = {"width": 470, "height": 300}


class EpochAnnotations:
    """The selected epoch (a dashed line) and the brushed range (a shaded band) on every
    over-epochs figure, as Bokeh models moved in place: an epoch change sends a two-number patch
    to the browser instead of re-plotting a dozen figures."""

    def __init__(self, state: WorkbenchState) -> None:
        self.state = state
        self.spans: list[Span] = []
        self.boxes: list[BoxAnnotation] = []
        state.param.watch(self.move, ["epoch", "epoch_range"])

    def hook(self, plot, element) -> None:
        figure = plot.state
        if "tdw-epoch-annotations" in figure.tags:
            return
        figure.tags = [*figure.tags, "tdw-epoch-annotations"]
        span = Span(location=self.state.epoch, dimension="height", line_color="black", line_dash="dashed", line_width=1)
        box = BoxAnnotation(fill_color="gold", fill_alpha=0.25, line_alpha=0, visible=False)
        figure.add_layout(span)
        figure.add_layout(box)
        self.spans.append(span)
        self.boxes.append(box)
        self.move()

    def move(self, *_) -> None:
        epoch_range = self.state.epoch_range
        for span in self.spans:
            span.location = self.state.epoch
        for box in self.boxes:
            box.visible = bool(epoch_range)
            if epoch_range:
                box.left, box.right = epoch_range


def listener(*streams: hv.streams.Stream) -> hv.DynamicMap:
    """An empty layer that owns the plot's pointer streams. HoloViews links a stream declared on a
    DynamicMap's own `streams` reliably (a `source=` on a bound DynamicMap is never subscribed in
    the browser), and the subscribers, not this callback, act on the events."""
    return hv.DynamicMap(lambda **_: hv.Points([]), streams=list(streams))


def over_epochs_pane(view: View, store: WarehouseStore, state: WorkbenchState,
                     annotations: EpochAnnotations) -> hv.DynamicMap:
    base = hv.DynamicMap(pn.bind(view.render, store, variant=state.param.variant))
    tap, bounds = hv.streams.Tap(), hv.streams.BoundsX()
    tap.add_subscriber(lambda x, y: state.go_to_epoch(x) if x is not None else None)

    def brush(boundsx):
        if boundsx and boundsx[0] is not None:
            state.epoch_range = (float(boundsx[0]), float(boundsx[1]))

    bounds.add_subscriber(brush)
    return (base * listener(tap, bounds)).opts(hooks=[annotations.hook], **PLOT_SIZE)


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


def view_pane(view: View, store: WarehouseStore, state: WorkbenchState, visible: param.Parameter,
              annotations: EpochAnnotations) -> pn.Column:
    if view.over_epochs:
        plot = over_epochs_pane(view, store, state, annotations)
    else:
        plot = at_epoch_pane(view, store, state, visible)
    pane = pn.pane.HoloViews(plot, backend=view.backend, css_classes=[f"view-{view.name}"], linked_axes=False,
                             **({"width": 420, "height": 360} if view.backend == "matplotlib" else {}))
    return pn.Column(caption_pane(view, store, state), pane, name=view.name, css_classes=[f"card-{view.name}"])
