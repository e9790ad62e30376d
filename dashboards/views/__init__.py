"""View registry. A view is one function from query results to a HoloViews element, in its own
file, registered with `@view(...)`: adding a view is adding a file. Views set only options both
HoloViews backends understand (title, labels, log axes, colors), so the same function draws the
live Bokeh plot and the exported matplotlib figure; sizes and tools belong to the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dashboards.views._common import no_data
from tdw.registry import Registry

if TYPE_CHECKING:
    import holoviews as hv

    from dashboards.state import WorkbenchState
    from dashboards.store import WarehouseStore

Need = Literal["epoch", "neuron", "head", "pair", "pinned"]


@dataclass(frozen=True)
class View:
    name: str
    title: str
    group: str  # the section of the Variant page it sits in
    render: Callable[..., hv.Element]  # render(store, variant, **needs)
    needs: tuple[Need, ...] = ()  # state beyond the variant that it depends on
    over_epochs: bool = False  # x is the epoch: gets the epoch marker, the brushed range, click-to-set-epoch
    # a click on the figure at data (x, y), shift held or not
    on_tap: Callable[[WarehouseStore, WorkbenchState, float, float, bool], None] | None = None
    caption: Callable[..., str] | None = None  # a line above the plot, from the same arguments as render
    backend: Literal["bokeh", "matplotlib"] = "bokeh"  # matplotlib only where Bokeh cannot draw it (3D)
    collapsed: bool = False  # its section starts closed (costly views nobody needs at every step)
    # activation roles its data come from (a family's hooks: "neurons", "attention"); for a variant
    # whose family lacks one, the view says it does not apply instead of "no data"
    requires: tuple[str, ...] = ()

    def not_applicable(self, store: WarehouseStore, variant: str) -> str | None:
        """Why the view does not apply to the variant's family (None when it does)."""
        info = store.variant(variant) if self.requires else {}
        missing = [role for role in self.requires if role not in (info.get("activations") or [])]
        if info and missing:
            return f"{self.title}: n/a, family {info['family']} has no {' or '.join(missing)}"
        return None

    def element(self, store: WarehouseStore, variant: str, **arguments) -> hv.Element:
        """The view of `variant`, or the line saying why it does not apply to the variant's family
        (what the page and `tdw export figure` draw)."""
        why = self.not_applicable(store, variant)
        return no_data(self.title, why) if why else self.render(store, variant, **arguments)
    order: int = 100


VIEWS: Registry[View] = Registry("view", __name__, "VIEW")


def view(name: str, title: str, group: str, **options) -> Callable:
    def decorate(render: Callable) -> Callable:
        VIEWS.register(name, View(name=name, title=title, group=group, render=render, **options))
        return render

    return decorate


def all_views() -> dict[str, View]:
    """Every view, in page order."""
    return dict(sorted(VIEWS.all().items(), key=lambda item: (item[1].order, item[0])))


def get_view(name: str) -> View:
    return VIEWS.get(name)
