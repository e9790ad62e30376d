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
            annotations: EpochAnnotations, cards: dict[str, pn.Card], on_top: bool = False) -> Reveal:
    css = "section-" + group.lower().replace(" ", "-")
    opened = state.open_sections
    collapsed = any(v.collapsed for v in views) if opened is None else group not in opened
    card = pn.Card(title=group, collapsed=collapsed, sizing_mode="stretch_width", css_classes=[css])
    reveal = Reveal(object=card, sizing_mode="stretch_width", in_view=on_top)
    shown = lambda: not card.collapsed and reveal.in_view
    live = [plots.add(LivePlot(view, store, state, annotations=annotations), shown) for view in views]
    card.objects = [pn.FlexBox(*[plot.panel for plot in live])]
    card.param.watch(plots.refresh, "collapsed")
    cards[group] = card
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
    cards: dict[str, pn.Card] = {}
    page = pn.Column(*[section(group, views, store, state, plots, annotations, cards, on_top=i == 0 and state.page == "Variant")
                       for i, (group, views) in enumerate(groups.items())], sizing_mode="stretch_width")

    def opened(*_):  # the open sections go into the URL (state.open_sections), so a link reopens them
        state.open_sections = [g for g, card in cards.items() if not card.collapsed]

    def follow(*_):  # ...and a URL (the back button) opens and closes them
        if state.open_sections is not None:
            for group, card in cards.items():
                card.collapsed = group not in state.open_sections

    for card in cards.values():
        card.param.watch(opened, "collapsed")
    state.param.watch(follow, "open_sections")
    plots.refresh()
    return page
