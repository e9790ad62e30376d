"""One variant, one scrollable page: a section per topic (no tabs for summaries), each pairing the
summary over epochs with the detail at the selected epoch, so a click on one drives the other."""

from __future__ import annotations

import panel as pn

from dashboards.panes import EpochAnnotations, view_pane
from dashboards.state import WorkbenchState
from dashboards.store import WarehouseStore
from dashboards.views import all_views


def build(store: WarehouseStore, state: WorkbenchState) -> pn.Column:
    sections: dict[str, list] = {}
    for view in all_views().values():
        sections.setdefault(view.group, []).append(view)
    cards = []
    annotations = EpochAnnotations(state)
    for group, views in sections.items():
        card = pn.Card(title=group, collapsed=any(v.collapsed for v in views), sizing_mode="stretch_width", css_classes=["section-" + group.lower().replace(" ", "-")])
        card.objects = [pn.FlexBox(*[view_pane(v, store, state, card.param.collapsed, annotations) for v in views])]
        cards.append(card)
    return pn.Column(*cards, sizing_mode="stretch_width")
