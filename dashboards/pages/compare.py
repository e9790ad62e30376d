"""Across variants: the variant_summary table (click a row to open that variant), overlays of
chosen variants with an "align at the turn" switch, and small multiples of any one view.

The small multiples are live plots, one per variant, each drawn when it scrolls into view and
refreshed in place when the epoch moves (each variant at its own nearest checkpoint)."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import panel as pn
from bokeh.document import Document
from bokeh.models import CustomJSHover, HoverTool

from dashboards.batch import one_update
from dashboards.comparisons import MEASURES, event_order_table, overlay, trajectories
from dashboards.panes import LivePlot, LivePlots
from dashboards.reveal import Reveal, RevealCells
from dashboards.state import WorkbenchState, nearest_checkpoint
from dashboards.store import WarehouseStore
from dashboards.tables import float_formatters
from dashboards.views import View, all_views

SIZE = {"width": 620, "height": 340}
SMALL = {"width": 330, "height": 250}
# what a cell takes beyond its figure: the HoloViews pane's default margin, 10 px beside it and 5 px
# above and below
CELL_MARGIN = {"width": 20, "height": 10}
# A small multiple is for looking across variants, not for zooming: no toolbar and no tools, which
# is a third of the Bokeh models each figure brings (30 figures: 2.9 s -> 2.5 s to build on the server).
# Nor a legend: its colours are the full-size view's, and the frame a view sets for its legend
# beside it (`with_legend`) would outgrow the grid's cells; the cell's size holds instead.
BARE = {"toolbar": None, "default_tools": [], "tools": [], "show_legend": False, "frame_width": None, "frame_height": None}


def variant_hover(variants: list[str]) -> HoverTool:
    """Hover for an overlay drawn as one gapped line (`comparisons.gapped_curve`): its `variant`
    column holds positions in `variants`, named here in the browser."""
    return HoverTool(tooltips=[("variant", "@variant{custom}"), ("x", "$x"), ("y", "$y")],
                     formatters={"@variant": CustomJSHover(args={"names": list(variants)}, code="return names[value]")})


def drawn(element: hv.Element, variants: list[str]) -> hv.Element:
    """An overlay at the page's size, its gapped line (if any) with the variant-naming hover."""
    gapped = [e for e in (element.values() if isinstance(element, hv.Overlay) else [element])
              if isinstance(e, hv.Curve) and "variant" in [d.name for d in e.vdims]]
    for curve in gapped:
        curve.opts(tools=[variant_hover(variants)])
    return element.opts(**SIZE)


def summary_frame(store: WarehouseStore):
    """variant_summary as pandas (Tabulator takes pandas), key frequencies as text."""
    frame = store.variant_summary().to_pandas()
    frame["key_frequencies"] = frame["key_frequencies"].map(lambda ks: ", ".join(map(str, ks)) if ks is not None else "")
    return frame


def summary_table(store: WarehouseStore, state: WorkbenchState) -> pn.widgets.Tabulator:
    frame = summary_frame(store)
    table = pn.widgets.Tabulator(frame, disabled=True, show_index=False, selectable=1, sizing_mode="stretch_width",
                                 css_classes=["variant-summary"], pagination=None, height=min(400, 60 + 32 * len(frame)),
                                 formatters=float_formatters(frame))

    def open_variant(event):
        state.variant = table.value["variant"].iloc[event.row]
        state.page = "Variant"

    table.on_click(open_variant)

    def refresh(*_):
        fresh = summary_frame(store)
        table.value = fresh
        table.height = min(400, 60 + 32 * len(fresh))

    state.param.watch(refresh, "generation")
    return table


def small_multiple_arguments(store: WarehouseStore, state: WorkbenchState, view: View, variant: str) -> dict[str, Any]:
    """The view's inputs for one variant: the shared neuron and head, the variant's checkpoint
    nearest to the selected epoch."""
    epochs = store.checkpoint_epochs(variant)
    needs = {"epoch": nearest_checkpoint(epochs, state.epoch) if epochs else state.epoch,
             "neuron": state.neuron, "head": state.head, "pair": state.pair, "pinned": list(state.pinned)}
    return {"variant": variant, **{need: needs[need] for need in view.needs}}


class SmallMultiples:
    """One live plot per compared variant, in a wrapping grid.

    Nothing is built until the grid first comes into view. Then the cells one screen shows are
    drawn first and sent in one update; the others are drawn in the next tick (while the browser
    paints the first) and appended in a second update once the browser reports it has rendered
    the first (`RevealCells.renders`). Each cell's figure is drawn before it joins the page, so
    the browser lays out each batch once. Afterwards only the cells on screen follow
    the state; the others catch up when scrolled to."""

    def __init__(self, store: WarehouseStore, state: WorkbenchState, choice: pn.widgets.Select) -> None:
        self.store, self.state, self.choice = store, state, choice
        self.plots = LivePlots(state)
        self.cells = RevealCells(sizing_mode="stretch_width")
        placeholder = pn.pane.Markdown("Small multiples are drawn when they come into view.", min_height=300)
        self.grid = pn.Column(placeholder, sizing_mode="stretch_width", css_classes=["small-multiples"])
        self.reveal = Reveal(object=self.grid, sizing_mode="stretch_width")
        self.built: tuple | None = None  # the view and variants the cells show
        self.pending: list[LivePlot] = []  # every cell, to show once the browser has rendered the first screen's
        self.reveal.param.watch(self.rebuild, "in_view")
        self.cells.param.watch(self.plots.refresh, "on_screen")
        self.cells.param.watch(self.place_the_rest, "renders")
        choice.param.watch(self.rebuild, "value")
        state.param.watch(self.rebuild, "compare")

    def screenful(self) -> int:
        """How many cells one screen shows, from the grid's width and the viewport's height as the
        browser reported them (all of them before it has)."""
        if len(self.reveal.screen) != 2:
            return len(self.state.compare)
        width, height = self.reveal.screen
        columns = max(1, width // (SMALL["width"] + CELL_MARGIN["width"]))
        rows = max(1, -(-height // (SMALL["height"] + CELL_MARGIN["height"])))  # the last row partly shown
        return columns * rows

    def rebuild(self, *_) -> None:
        wanted = (self.choice.value, tuple(self.state.compare))
        if not self.reveal.in_view or wanted == self.built:
            return
        self.built = wanted
        view = all_views()[self.choice.value]
        self.plots.clear()
        plots = []
        for index, variant in enumerate(self.state.compare):
            plot = LivePlot(view, self.store, self.state, size=SMALL, title=variant, captioned=False, plot_options=BARE,
                            arguments=lambda v=variant: small_multiple_arguments(self.store, self.state, view, v))
            plot.panel.css_classes = [*plot.panel.css_classes, f"multiple-{variant}"]
            self.plots.add(plot, lambda i=index: self.reveal.in_view and i in self.cells.on_screen)
            plots.append(plot)
        document = pn.state.curdoc
        first = len(plots) if document is None else self.screenful()
        self.pending = pending = plots if first < len(plots) else []  # a rebuild drops an earlier one's
        self.place(plots[:first], document)
        if pending:
            def draw_the_rest() -> None:  # while the browser paints the first screen; sent on its report
                for plot in pending[first:]:
                    if self.pending is pending and plot.drawn is None:
                        plot.refresh()
            document.add_next_tick_callback(draw_the_rest)

    def place_the_rest(self, *_) -> None:
        """Append the cells beyond the first screen, once the browser has rendered the first screen's."""
        if self.pending:
            plots, self.pending = self.pending, []
            self.place(plots, pn.state.curdoc)

    def place(self, plots: list[LivePlot], document: Document | None) -> None:
        """Show `plots` as the cells, drawing those not drawn yet before they join the page (one
        update of `document`: a Bokeh callback does not always run with Panel's current document set)."""
        for plot in plots:
            if plot.drawn is None:
                plot.refresh()
        with one_update(document):
            self.cells.objects = [plot.panel for plot in plots]
            self.grid.objects = [self.cells] if plots else [pn.pane.Markdown("Choose variants to compare.")]


def basis_chooser(store: WarehouseStore, state: WorkbenchState) -> pn.widgets.Select:
    """'own' (each run's PCA) and every shared basis the compared variants were fitted into."""
    choice = pn.widgets.Select(name="Trajectory basis", options=["own", *store.bases(state.compare)], value="own",
                               css_classes=["trajectory-basis"])

    def refresh(*_):
        options = ["own", *store.bases(state.compare)]
        choice.options = options
        if choice.value not in options:
            choice.value = "own"

    state.param.watch(refresh, ["compare", "generation"])
    return choice


def event_table(store: WarehouseStore, state: WorkbenchState) -> pn.pane.DataFrame:
    """The event-order table: each compared variant's first event of each kind, at its epoch or,
    with "align at the turn", at its distance from the variant's turn. A plain HTML table: it is
    only read, and a Tabulator of 30 variant columns took seconds of the browser's page load."""
    def frame():
        return event_order_table(store, state.compare, state.align_at_turn).to_pandas()

    table = pn.pane.DataFrame(frame(), index=False, na_rep="", float_format="{:g}".format, sizing_mode="stretch_width",
                              max_height=360, styles={"overflow": "auto"}, css_classes=["event-order"])

    def refresh(*_):
        table.object = frame()

    state.param.watch(refresh, ["compare", "align_at_turn", "generation"])
    return table


def build(store: WarehouseStore, state: WorkbenchState) -> pn.Column:
    chooser = pn.widgets.MultiChoice.from_param(state.param.compare, name="Variants to compare", sizing_mode="stretch_width")
    align = pn.widgets.Checkbox.from_param(state.param.align_at_turn, name="Align at the turn")
    log_epochs = pn.widgets.Checkbox.from_param(state.param.log_epochs, name="Log epochs (aligned: epoch / turn epoch)",
                                                css_classes=["log-epochs"])
    measure_a = pn.widgets.Select(name="Overlay", options=list(MEASURES), value="test loss")
    measure_b = pn.widgets.Select(name="Overlay", options=list(MEASURES), value="W_in participation ratio")
    bokeh_views = [n for n, v in all_views().items() if v.backend == "bokeh"]
    basis = basis_chooser(store, state)
    multiple = pn.widgets.Select(name="Small multiples of", options=bokeh_views, value="loss_curves",
                                 css_classes=["multiple-view"])

    def overlay_pane(measure, variants, align_at_turn, log_axis):
        return pn.pane.HoloViews(drawn(overlay(store, variants, measure, align_at_turn, log_axis), variants))

    overlay_state = (state.param.compare, state.param.align_at_turn, state.param.log_epochs)

    return pn.Column(
        pn.pane.Markdown("### Variant summary (click a row to open the variant)"),
        summary_table(store, state),
        pn.Row(chooser, pn.Column(align, log_epochs), sizing_mode="stretch_width"),
        pn.FlexBox(pn.Column(measure_a, pn.bind(overlay_pane, measure_a, *overlay_state)),
                   pn.Column(measure_b, pn.bind(overlay_pane, measure_b, *overlay_state)),
                   pn.Column(basis, pn.pane.HoloViews(pn.bind(lambda vs, b: drawn(trajectories(store, vs, b), vs),
                                                              state.param.compare, basis)))),
        pn.pane.Markdown("### Event order: each variant's first event of each kind, at its epoch (with "
                         "\"Align at the turn\": epochs from the variant's turn, negative before it)"),
        event_table(store, state),
        multiple,
        SmallMultiples(store, state, multiple).reveal,
        sizing_mode="stretch_width",
    )
