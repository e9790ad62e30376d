"""One variant, one scrollable page: a section per topic (no tabs for summaries), each pairing the
summary over epochs with the detail at the selected epoch, so a click on one drives the other.

A section draws its plots the first time it is open and on screen, and refreshes them only while
it is: the session starts with no figure built, and an epoch change costs what is visible."""

from __future__ import annotations

import panel as pn

from dashboards.panes import EpochAnnotations, LivePlot, LivePlots
from dashboards.reveal import Reveal
from dashboards.state import WorkbenchState
from dashboards.store import WarehouseStore
from dashboards.views import View, all_views


def section(group: str, views: list[View], store: WarehouseStore, state: WorkbenchState, plots: LivePlots,
            annotations: EpochAnnotations, on_top: bool = False) -> Reveal:
    css = "section-" + group.lower().replace(" ", "-")
    card = pn.Card(title=group, collapsed=any(v.collapsed for v in views), sizing_mode="stretch_width", css_classes=[css])
    reveal = Reveal(object=card, sizing_mode="stretch_width", in_view=on_top)
    shown = lambda: not card.collapsed and reveal.in_view
    live = [plots.add(LivePlot(view, store, state, annotations=annotations), shown) for view in views]
    card.objects = [pn.FlexBox(*[plot.panel for plot in live])]
    card.param.watch(plots.refresh, "collapsed")
    reveal.param.watch(plots.refresh, "in_view")
    return reveal


def build(store: WarehouseStore, state: WorkbenchState) -> pn.Column:
    groups: dict[str, list[View]] = {}
    for view in all_views().values():
        groups.setdefault(view.group, []).append(view)
    plots = LivePlots(state)
    annotations = EpochAnnotations(state, store)
    # the top section is on screen when the page opens: drawn with the page, not a round trip later
    # (the page may also be built to be shown later, from another one: then the browser says when)
    page = pn.Column(*[section(group, views, store, state, plots, annotations, on_top=i == 0 and state.page == "Variant")
                       for i, (group, views) in enumerate(groups.items())], sizing_mode="stretch_width")
    plots.refresh()
    return page
