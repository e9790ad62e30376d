"""One variant, one scrollable page: a section per topic (no tabs for summaries), each pairing the
summary over epochs with the detail at the selected epoch, so a click on one drives the other.

A section is built the first time it is open and on screen: until then it is a card holding one
spacer of about its drawn height, so the session and the browser start with a dozen components
instead of a hundred (a section's plots, captions and their panes), and an epoch change costs what
is visible."""

from __future__ import annotations

import math

import panel as pn

from dashboards.batch import one_update
from dashboards.panes import PLOT_SIZE, EpochAnnotations, LivePlot, LivePlots
from dashboards.reveal import Reveal
from dashboards.state import WorkbenchState
from dashboards.store import WarehouseStore
from dashboards.styles import serve_locally
from dashboards.views import View, all_views

PLOTS_PER_ROW = 2  # on a 1600-pixel screen with the sidebar: what the placeholder's height assumes
CAPTION_HEIGHT = 45


def section_css(group: str) -> str:
    """The section's CSS class (tests and the benchmark find a section by it)."""
    return "section-" + group.lower().replace(" ", "-")


class Section:
    """One card of views. Its plots exist once it has been open and on screen; from then on they
    refresh while it is (the page's `LivePlots` asks `shown`)."""

    def __init__(self, group: str, views: list[View], store: WarehouseStore, state: WorkbenchState,
                 plots: LivePlots, annotations: EpochAnnotations, on_top: bool = False) -> None:
        self.group, self.views, self.store, self.state = group, views, store, state
        self.plots, self.annotations = plots, annotations
        opened = state.open_sections
        collapsed = any(v.collapsed for v in views) if opened is None else group not in opened
        rows = math.ceil(len(views) / PLOTS_PER_ROW)
        # holds the section's height, so sections below stay below the fold until scrolled to
        placeholder = pn.Spacer(height=rows * (PLOT_SIZE["height"] + CAPTION_HEIGHT), sizing_mode="stretch_width")
        self.card = pn.Card(placeholder, title=group, collapsed=collapsed, sizing_mode="stretch_width",
                            css_classes=[section_css(group)])
        self.reveal = Reveal(object=self.card, sizing_mode="stretch_width", in_view=on_top)
        self.built = False
        self.card.param.watch(self.show, "collapsed")
        self.reveal.param.watch(self.show, "in_view")
        self.show()

    def shown(self) -> bool:
        return not self.card.collapsed and self.reveal.in_view

    def show(self, *_) -> None:
        """Build the section's plots the first time it is shown; refresh what is shown."""
        if not self.shown():
            return
        if not self.built:
            self.built = True
            live = [self.plots.add(LivePlot(view, self.store, self.state, annotations=self.annotations), self.shown)
                    for view in self.views]
            with one_update():
                self.card.objects = [pn.FlexBox(*[plot.panel for plot in live])]
                self.plots.refresh()
                serve_locally(self.card)
            return
        self.plots.refresh()


def build(store: WarehouseStore, state: WorkbenchState) -> pn.Column:
    groups: dict[str, list[View]] = {}
    for view in all_views().values():
        groups.setdefault(view.group, []).append(view)
    plots = LivePlots(state)
    annotations = EpochAnnotations(state, store)
    # the top section is on screen when the page opens: drawn with the page, not a round trip later
    # (the page may also be built to be shown later, from another one: then the browser says when)
    sections = [Section(group, views, store, state, plots, annotations, on_top=i == 0 and state.page == "Variant")
                for i, (group, views) in enumerate(groups.items())]
    page = pn.Column(*[s.reveal for s in sections], sizing_mode="stretch_width")

    def opened(*_):  # the open sections go into the URL (state.open_sections), so a link reopens them
        state.open_sections = [s.group for s in sections if not s.card.collapsed]

    def follow(*_):  # ...and a URL (the back button) opens and closes them
        if state.open_sections is not None:
            for s in sections:
                s.card.collapsed = s.group not in state.open_sections

    for s in sections:
        s.card.param.watch(opened, "collapsed")
    state.param.watch(follow, "open_sections")
    return page
