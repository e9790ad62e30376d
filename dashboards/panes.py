"""How a registered view becomes a live plot on a page.

A `LivePlot` draws its view once (HoloViews makes the Bokeh figure) and keeps that figure: when the
state it depends on moves, the view function runs again and its element is piped into the same
plot, so HoloViews replaces the arrays of the existing data sources and the browser receives data
patches, never a new figure. A plot that is not shown (its section closed or never scrolled to)
does no work; it catches up when it is shown. `LivePlots` refreshes every shown plot of a page in
one batch (`dashboards.batch.one_update`): one state change, one document update.

A frame is patched in only where the drawn figure's models fit it (`shape`), and it is made to fit
the way HoloViews matches it: its labelled layers named by their place (`placed_labels`), a side
legend set where it stands (`legend_in_place`). Anything that changes a figure's renderers or side
panels makes the browser lay out the whole page. A plot keeps a figure per shape it met (a traced
pair's curves, an untraced pair's "not traced"), hidden by CSS while another shows (`DrawnFigure`):
coming back to a shape patches its figure instead of drawing one.

Over-epochs plots get the selected epoch (a dashed line) and the brushed range (a band) as Bokeh
annotations moved in place; a click on them selects an epoch, a box selection brushes a range.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import holoviews as hv
import panel as pn
from bokeh.core.property.vectorization import value
from bokeh.events import SelectionGeometry, Tap
from bokeh.models import BoxAnnotation, Legend, Span

from dashboards.batch import one_update
from dashboards.caption import Caption
from dashboards.log_epochs import FIRST_EPOCH, on_log_epochs
from dashboards.state import WorkbenchState
from dashboards.store import WarehouseStore
from dashboards.views import View
from dashboards.views._common import no_data
from tdw.errors import TdwError

PLOT_SIZE = {"width": 470, "height": 300}
# A caption wraps at its card's width instead of widening the card: zero intrinsic width, stretched
# to the card (less its margins). A card that changed width with its caption (an untraced input's
# is longer) moved its row's other cards and made the browser lay out the page.
CAPTION_MARGIN = 10  # pixels left and right
CAPTION_WRAPS = {"width": "0", "min-width": f"calc(100% - {2 * CAPTION_MARGIN}px)"}
timings = logging.getLogger("tdw.dashboard.timings")  # `benchmarks/dashboard_latency.py` reads these lines
STATE_INPUTS = ("variant", "epoch", "neuron", "head", "pair", "pinned", "generation", "log_epochs")


PHASE_COLORS = {"memorization": "#9e9e9e", "circuit_formation": "#f4a261", "cleanup": "#2a9d8f", "plateau": "#457b9d"}
MAX_PHASES = 4  # training_phases has at most four per run


@dataclass(eq=False)
class EpochMarks:
    """One over-epochs figure's annotations: the epoch line, the brushed band and the phase bands;
    kept still while the figure is hidden (moving an annotation of a hidden figure cost the browser
    ~80 ms of each epoch change, for two hidden figures)."""

    span: Span
    box: BoxAnnotation
    bands: list[BoxAnnotation]
    shown: bool = True


class EpochAnnotations:
    """The selected epoch, the brushed range and the run's phases (training_phases, toggled by
    `state.show_phases`) on every over-epochs figure of a page, as Bokeh models moved in place: an
    epoch change sends a two-number patch per figure shown, a variant change a few numbers per band.
    A figure shown again (`LivePlot.show`) catches up."""

    def __init__(self, state: WorkbenchState, store: WarehouseStore | None = None) -> None:
        self.state = state
        self.store = store
        self.marks: dict[str, EpochMarks] = {}  # by the figure's Bokeh id
        state.param.watch(self.move, ["epoch", "epoch_range"])
        state.param.watch(self.shade, ["variant", "show_phases", "generation", "log_epochs"])

    def hook(self, plot, element) -> None:
        figure = plot.state
        if "tdw-epoch-annotations" in figure.tags:
            return
        figure.tags = [*figure.tags, "tdw-epoch-annotations"]
        bands = [BoxAnnotation(fill_alpha=0.12, line_alpha=0, visible=False, level="underlay") for _ in range(MAX_PHASES)]
        # on Bokeh's overlay layer: moving them repaints that layer alone, not the figure's axes,
        # grid, glyphs and bands (a full repaint re-reads every visual's CSS: most of the browser's
        # time per epoch change)
        span = Span(location=self.state.epoch, dimension="height", line_color="black", line_dash="dashed", line_width=1,
                    level="overlay")
        box = BoxAnnotation(fill_color="gold", fill_alpha=0.25, line_alpha=0, visible=False, level="overlay")
        for band in bands:
            figure.add_layout(band)
        figure.add_layout(span)
        figure.add_layout(box)
        self.marks[figure.id] = marks = EpochMarks(span, box, bands)
        self.move(only=[marks])
        self.shade(only=[marks])

    def show(self, figure, shown: bool) -> None:
        """Keep the figure's marks still while it is hidden; bring them up to date when it shows."""
        marks = self.marks.get(getattr(figure, "id", None))
        if marks is None or marks.shown == shown:
            return
        marks.shown = shown
        if shown:
            self.move(only=[marks])
            self.shade(only=[marks])

    def forget(self, figure) -> None:
        """A figure gone from the page (replaced in its pane): its marks are moved no more."""
        self.marks.pop(getattr(figure, "id", None), None)

    def shown_marks(self, only: list[EpochMarks] | None) -> list[EpochMarks]:
        return only if only is not None else [marks for marks in self.marks.values() if marks.shown]

    def shade(self, *_, only: list[EpochMarks] | None = None) -> None:
        phases = []
        if self.store is not None and self.state.show_phases and self.state.variant:
            phases = self.store.phases(self.state.variant).iter_rows(named=True)
        phases = list(phases)[:MAX_PHASES]
        with one_update():
            for marks in self.shown_marks(only):
                for i, band in enumerate(marks.bands):
                    if i < len(phases):
                        # a log epoch axis begins at epoch 1: a band from 0 was not drawn at all
                        left = max(phases[i]["start_epoch"], FIRST_EPOCH) if self.state.log_epochs else phases[i]["start_epoch"]
                        band.update(left=left, right=phases[i]["end_epoch"], visible=True,
                                    fill_color=PHASE_COLORS.get(phases[i]["phase"], "#cccccc"))
                    else:
                        band.visible = False

    def move(self, *_, only: list[EpochMarks] | None = None) -> None:
        epoch_range = self.state.epoch_range
        with one_update():
            for marks in self.shown_marks(only):
                marks.span.location = self.state.epoch
                marks.box.visible = bool(epoch_range)
                if epoch_range:
                    marks.box.left, marks.box.right = epoch_range


def shape(element: hv.Element) -> tuple:
    """What must stay the same for new data to be patched into the drawn figure: the element types,
    the number of layers, the frame's size and whether the view sets its y range itself (a patched
    frame's `ylim` moves the axis, but a frame without one leaves the last one in place: after a
    run of one checkpoint, its flatness on a log axis around one value, `views/_common.curves`,
    the next run's curves were drawn in that range, mostly off the plot). Anything else (a view
    going from "no data" to data, another variant with more key frequencies) needs another figure
    (`LivePlot` keeps one per shape, `MAX_FIGURES`): HoloViews never resizes a drawn frame (the
    event timeline's height is its number of series). So a view keeps its layers from
    run to run where it can: a layer per training mark, empty where a run has none
    (`views/_common.training_marks`), the timeline's rows for every series.

    A map of another p, a bar chart over another p's frequencies or another neuron count is patched:
    with the cached ranges forgotten (`forget_ranges`), another run's first frame sets the axes,
    the colour scale and a bar chart's factors from its own data, pixel for pixel what a new
    figure draws. (Until session 30 the old ranges shadowed the new, and a p=113 neuron map patched
    into a p=17 figure showed its 17 x 17 corner; each such view was then drawn anew, ~230 ms of
    server time apiece, 2.4 s of a switch between a p=17 run and the published run.)"""
    layers = list(element) if isinstance(element, hv.Overlay) else [element]
    size = hv.Store.lookup_options("bokeh", element, "plot").kwargs
    return (size.get("frame_width"), size.get("frame_height"), "ylim" in size, *(type(layer) for layer in layers))


def forget_ranges(plot) -> None:
    """Drop the data ranges a drawn HoloViews plot has cached, before another run's first frame.

    That frame is marked `framewise` (`new_ranges`), which files its ranges under another key than
    the plot's first frame had; HoloViews then picks the older, more specific key, so a colour
    scale kept the previous run's range: after a switch between two p=13 seeds the neuron map was
    coloured 0..9.3 for activations up to 6.7 until the next epoch change (and a trajectory's
    epochs took the colours of a run of another length). Cleared, this frame's ranges are the only
    ones; the axes are set from the frame either way."""
    for part in plot.traverse(lambda part: part):
        part.ranges.clear()


def new_ranges(element: hv.Element) -> hv.Element:
    """The first frame of another run (variant or warehouse), to be drawn on its own ranges.

    HoloViews keeps a DynamicMap's first ranges unless the frame it draws is normalized on its own
    (`framewise`, a norm option it reads from each frame): patched in plainly, the published run
    after a p=17 run of 600 epochs had its curves cut at epoch 599. Framewise on every frame
    reset a researcher's zoom at each epoch change; a new figure per run (session 28) cost a
    switch 0.93 s of server time for the four plots at the top of the page against 0.51 s
    patched. This frame alone is framewise: the switch is patched, and the frames after it keep
    whatever zoom the researcher sets."""
    return element.map(lambda layer: layer.opts(framewise=True), lambda obj: isinstance(obj, hv.Element | hv.Overlay))


PLACE_LABEL = "tdw layer {}"


def placed_labels(element: hv.Element) -> tuple[hv.Element, dict[str, str]]:
    """The element with each labelled layer of an overlay named by its place, and the legend text
    of each such name (`LivePlot.name_legend` writes them into the drawn legend).

    HoloViews gives a patched-in layer the drawn layer of the same type, group and label; a layer
    whose label it has not drawn (another traced pair, another run's key frequencies) gets a new
    glyph renderer and the old one is hidden, never removed. So each pair click added a renderer to
    the margin plot (50 clicks, 50 hidden lines with their data) and took the next colour of the
    cycle (the traced pair turned from blue to red), and a figure whose renderers change re-lays
    out the whole page in the browser (Bokeh's `invalidate_layout` walks up to the root): 0.31 s
    of a pair click's 0.6 s. Named by place, layers always match their drawn renderers."""
    if not isinstance(element, hv.Overlay):
        return element, {}
    texts, layers = {}, []
    for place, layer in enumerate(element):
        if layer.label:
            texts[PLACE_LABEL.format(place)] = layer.label
            layer = layer.relabel(PLACE_LABEL.format(place))
        layers.append(layer)
    return element.clone(layers), texts


# Where HoloViews is told to put a legend the view wants beside the frame: a location within the
# frame, which it sets and leaves (`LivePlot.legend_beside` moves the legend beside the frame once)
LEGEND_IN_SIDE_PANEL = "bottom_left"


def legend_in_place(element: hv.Element) -> tuple[hv.Element, bool]:
    """The element with a legend wanted beside the frame (`legend_position="right"`) given a
    location HoloViews sets in place, and whether it was so wanted.

    At every frame HoloViews removes a side legend from the figure and adds it again; the browser
    takes a change to a figure's side panels for a change of layout and lays out the whole page
    again: 40 ms of each pair click for each of the Trace section's two legends, and of each epoch
    change for the singular-value spectrum's."""
    if not isinstance(element, hv.Overlay):
        return element, False
    if hv.Store.lookup_options("bokeh", element, "plot").kwargs.get("legend_position") != "right":
        return element, False
    return element.opts(legend_position=LEGEND_IN_SIDE_PANEL, backend="bokeh"), True


# The figures a plot keeps, each of another shape: a view going from a traced pair to one that is not
# traced and back, or between runs of two p, patches a figure it keeps and shows it in place of the
# other. Shown and hidden by CSS: a change of a pane's `visible` (or of its CSS classes) makes Bokeh
# lay out and repaint the whole page (2 s a click on the published run), a style only the figure shown
# (`local_layout`: it lays itself out when shown, alone). `visibility: hidden` kept a hidden figure's
# size, but a figure shown again kept a layout computed while hidden (another frame width).
MAX_FIGURES = 3
HIDDEN, SHOWN = {"display": "none"}, {"display": None}  # None: the style property is removed


@dataclass(eq=False)
class DrawnFigure:
    """A figure a live plot drew: its layers (`shape`, with the axis type), the pipe its frames go
    through, its pane, the HoloViews plots drawn from that pipe (whose cached ranges another run's
    first frame must not read, `forget_ranges`) and the run whose ranges it shows: the variant,
    warehouse generation and (over epochs) selection. Another run's first frame takes its own
    ranges (`new_ranges`); later frames keep the figure's (a researcher's zoom)."""

    shape: tuple
    pipe: hv.streams.Pipe
    pane: pn.pane.HoloViews | None = None
    holoviews_plots: dict[int, Any] = field(default_factory=dict)
    run: tuple | None = None

    def keep_plot(self, plot, element) -> None:
        """A hook: remember each HoloViews plot drawn from the pipe (one per rendering of the pane)."""
        self.holoviews_plots[id(plot)] = plot


class LivePlot:
    """One view on a page: its caption and its figure, refreshed in place."""

    def __init__(self, view: View, store: WarehouseStore, state: WorkbenchState,
                 arguments: Callable[[], dict[str, Any]] | None = None,
                 annotations: EpochAnnotations | None = None, size: dict | None = None, title: str | None = None,
                 captioned: bool = True, plot_options: dict[str, Any] | None = None) -> None:
        self.view, self.store, self.state = view, store, state
        # by default the shared state's variant and the view's needs; Compare fixes the variant
        self.arguments = arguments or (lambda: {"variant": state.variant, **{n: getattr(state, n) for n in view.needs}})
        self.annotations = annotations
        self.size = size or PLOT_SIZE
        self.title = title
        self.plot_options = plot_options or {}  # Bokeh plot options of this placement (a bare small multiple)
        self.drawn: tuple | None = None  # the arguments and warehouse generation the figure shows
        self.figures: list[DrawnFigure] = []  # the figures drawn, the one shown last first (`MAX_FIGURES`)
        self.legend_texts: dict[str, str] = {}  # each placed layer's legend text (`placed_labels`)
        self.wants_legend_beside = False  # the view's legend goes beside the frame (`legend_in_place`)
        self.captioned = captioned
        self.caption = Caption("", css_classes=[f"caption-{view.name}"], margin=(0, CAPTION_MARGIN), styles=CAPTION_WRAPS)
        # the pane holds its size before the figure exists, so an undrawn section does not collapse
        # (and pull every section below it into the viewport)
        self.pane_size = {"width": 420, "height": 360} if view.backend == "matplotlib" else self.size
        self.panel = pn.Column(*([self.caption] if captioned else []), self.new_pane(), name=view.name,
                               css_classes=[f"card-{view.name}"], min_width=self.pane_size["width"],
                               min_height=self.pane_size["height"] + (40 if captioned else 0))

    def new_pane(self) -> pn.pane.HoloViews:
        return pn.pane.HoloViews(None, backend=self.view.backend, css_classes=[f"view-{self.view.name}"],
                                 linked_axes=False, **(self.pane_size if self.view.backend == "matplotlib" else {}))

    @property
    def pane(self) -> pn.pane.HoloViews:
        """The pane of the figure shown (before any is drawn, the empty one holding the place)."""
        return self.figures[0].pane if self.figures else self.panel.objects[-1]

    @property
    def pipe(self) -> hv.streams.Pipe | None:
        return self.figures[0].pipe if self.figures else None

    def refresh(self) -> bool:
        """Bring the plot to the current state; False when it already showed it (no work done)."""
        started = time.perf_counter()
        arguments = self.arguments()
        log_epochs = self.view.over_epochs and self.view.backend == "bokeh" and self.state.log_epochs
        key = (tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in arguments.items())), self.state.generation,
               log_epochs)
        if key == self.drawn:
            return False
        variant = arguments.pop("variant")
        if variant is None:
            return False
        try:
            element = self.view.element(self.store, variant, **arguments)
            line = (self.view.not_applicable(self.store, variant)
                    or (self.view.caption(self.store, variant, **arguments) if self.view.caption else self.view.title))
        except TdwError as error:  # the warehouse cannot answer (a file it lists is gone): say why, here
            line = str(error)
            element = no_data(self.view.title, "the warehouse could not answer: see the line above" if self.captioned else line)
        if log_epochs:
            element = on_log_epochs(element)
        if self.title:
            element = element.opts(title=self.title)
        self.caption.object = f"**{line}**"
        if self.view.backend == "bokeh":
            element, self.legend_texts = placed_labels(element)
            element, self.wants_legend_beside = legend_in_place(element)
        # the data a frame's ranges come from: the run, and for an over-epochs view the selection
        # its series follow (the traced pair, the pinned ones): another pair's margin kept the
        # first pair's y range and ran off the plot (-60 in an axis from -1.5 to 14.2)
        series = tuple((name, value) for name, value in key[0] if name not in ("variant", "epoch")) if self.view.over_epochs else ()
        run, figure = (variant, self.state.generation, series), (shape(element), log_epochs)
        # a matplotlib view (the 3D trajectory) gets a new figure per run: patched, it raised
        # "Scatter3D type not found" (`new_ranges` sets Bokeh's options), and matplotlib kept the
        # artist's colour array (118 points of another run failed to draw over 161)
        drawn = next((f for f in self.figures if f.shape == figure and (f.run == run or self.view.backend == "bokeh")), None)
        if drawn is not None:
            # same figure models, new arrays; ranged anew for another run
            if run != drawn.run:
                for plot in drawn.holoviews_plots.values():
                    forget_ranges(plot)
                element = new_ranges(element)
            self.show(drawn)
            drawn.pipe.send(element)
            how = "patched"
        else:
            drawn = self.draw(element, figure)
            how = "drawn"
        drawn.run = run
        self.drawn = key
        timings.debug("%s %s in %.1f ms", self.view.name, how, (time.perf_counter() - started) * 1000)
        return True

    def draw(self, element: hv.Element, shape: tuple) -> DrawnFigure:
        """A new figure for `element`, shown in place of the others; the one shown longest ago goes
        when `MAX_FIGURES` are kept (a matplotlib figure of another run replaces its own)."""
        pipe = hv.streams.Pipe(data=element)
        drawn = DrawnFigure(shape, pipe)
        plot = hv.DynamicMap(lambda data: data, streams=[pipe])
        if self.view.backend == "bokeh":
            hooks = [drawn.keep_plot, self.name_legend, self.legend_beside, self.wire_figure]
            if self.view.over_epochs and self.annotations:
                hooks.append(self.annotations.hook)
            plot = plot.opts(hooks=hooks, **self.size, **self.plot_options)
        else:
            plot = plot.opts(hooks=[drawn.keep_plot], backend=self.view.backend)
        replaced = next((f for f in self.figures if f.shape == shape), None)
        if replaced is None and len(self.figures) >= MAX_FIGURES:
            replaced = self.figures[-1]
        if replaced is not None:  # its pane takes the new figure
            self.figures.remove(replaced)
            drawn.pane = replaced.pane
            if self.annotations is not None:
                for plot in replaced.holoviews_plots.values():
                    self.annotations.forget(plot.state)
        elif self.figures:
            drawn.pane = self.new_pane()
            self.panel.append(drawn.pane)
        else:  # the first figure goes into the pane that held its place
            drawn.pane = self.panel.objects[-1]
        self.figures.insert(0, drawn)
        drawn.pane.object = plot
        self.show(drawn)
        return drawn

    def show(self, drawn: DrawnFigure) -> None:
        """Show `drawn` alone; the others stay in the page, hidden, under another name (the tests
        and benchmarks find a view's figure by its name)."""
        self.figures.remove(drawn)
        self.figures.insert(0, drawn)
        for other in self.figures:
            styles = SHOWN if other is drawn else HIDDEN
            if other.pane.styles != styles:
                other.pane.styles = styles
            for plot in other.holoviews_plots.values():
                if self.annotations is not None:
                    self.annotations.show(plot.state, other is drawn)
                if other is not drawn and getattr(plot.state, "name", None) == f"tdw-view-{self.view.name}":
                    plot.state.name = f"tdw-hidden-{self.view.name}"

    def name_legend(self, plot, element) -> None:
        """Give each placed layer's renderer and legend entry the layer's own text (after every
        frame: HoloViews writes the placed names when it draws a layer)."""
        if not self.legend_texts:
            return
        texts = {}
        for layer_plot in getattr(plot, "subplots", {}).values():
            renderer, frame = layer_plot.handles.get("glyph_renderer"), layer_plot.current_frame
            if renderer is not None and frame is not None and frame.label in self.legend_texts:
                texts[renderer.id] = text = self.legend_texts[frame.label]
                if renderer.name != text:
                    renderer.name = text
        for item in (item for legend in plot.state.legend for item in legend.items):
            text = next((texts[r.id] for r in item.renderers if r.id in texts), None)
            shown = item.label.get("value") if isinstance(item.label, dict) else getattr(item.label, "value", None)
            if text is not None and shown != text:
                item.label = value(text)

    def legend_beside(self, plot, element) -> None:
        """Move the legend HoloViews drew in the frame to the frame's right, once per figure: there
        HoloViews finds it at every frame and sets its location (unchanged) in place."""
        if not self.wants_legend_beside:
            return
        figure = plot.state
        for legend in [model for model in figure.center if isinstance(model, Legend)]:
            figure.center.remove(legend)
            figure.add_layout(legend, "right")

    def wire_figure(self, plot, element) -> None:
        """Name the figure after its view (the browser tests find it by that) and listen to clicks
        and box selections on it. Bokeh's own server-side events: a click reaches the state with no
        stream machinery between (HoloViews' Tap stream added ~100 ms and a dummy layer)."""
        figure = plot.state
        figure.name = f"tdw-view-{self.view.name}"
        if not self.view.over_epochs and not figure.select(type=Legend):
            # an at-epoch view gets new data at every epoch change: with its glyphs on Bokeh's
            # overlay layer that repaints the overlay alone, not the axes, grid and colorbar
            # (a full repaint re-reads every visual's CSS). Not under a legend, which they would cover.
            for renderer in figure.renderers:
                renderer.level = "overlay"
        if "tdw-pointer-events" in figure.tags:
            return
        figure.tags = [*figure.tags, "tdw-pointer-events"]
        if self.view.over_epochs:
            figure.on_event(Tap, lambda event: self.in_one_update(figure, self.state.go_to_epoch, event.x))
            figure.on_event(SelectionGeometry, lambda event: self.brush(figure, event))
        elif self.view.on_tap is not None:
            figure.on_event(Tap, lambda event: self.in_one_update(
                figure, self.view.on_tap, self.store, self.state, event.x, event.y,
                bool((event.modifiers or {}).get("shift"))))

    @staticmethod
    def in_one_update(figure, action: Callable, *arguments) -> None:
        if any(a is None for a in arguments):  # a click outside the data
            return
        with one_update(figure.document):
            action(*arguments)

    def brush(self, figure, event) -> None:
        geometry = event.geometry or {}
        if event.final and geometry.get("x0") is not None and geometry.get("x1") is not None:
            with one_update(figure.document):
                self.state.epoch_range = (float(geometry["x0"]), float(geometry["x1"]))


class LivePlots:
    """The live plots of one page and which of them are shown. One watcher on the shared state
    refreshes every shown plot in one batch; a plot that becomes shown catches up at once."""

    def __init__(self, state: WorkbenchState) -> None:
        self.state = state
        self.plots: dict[LivePlot, Callable[[], bool]] = {}
        state.param.watch(self.refresh, list(STATE_INPUTS))

    def add(self, plot: LivePlot, shown: Callable[[], bool]) -> LivePlot:
        self.plots[plot] = shown
        return plot

    def clear(self) -> None:
        self.plots.clear()

    def refresh(self, *_) -> int:
        """Refresh the shown plots; returns how many did work."""
        started = time.perf_counter()
        with one_update():
            done = sum(plot.refresh() for plot, shown in list(self.plots.items()) if shown())
        if done:
            timings.info("refreshed %d plots in %.1f ms", done, (time.perf_counter() - started) * 1000)
        return done
