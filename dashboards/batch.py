"""One state change, one document update.

Bokeh re-walks the whole document (`DocumentModelManager.recompute`, every model of every figure on
the page) each time a frozen block ends, and HoloViews freezes around every plot update: with a
dozen figures an epoch change cost a dozen walks, 43% of the server's time. Patching a plot's
arrays, its title or a span's location never changes which models the document holds, so here the
walk is skipped unless something in the block did change the model graph (Bokeh reports that
through `invalidate`), and all events of the block leave in one message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import panel as pn
from bokeh.document import Document


@contextmanager
def one_update(doc: Document | None = None) -> Iterator[None]:
    """Hold the document's events and defer its model-graph walk to the end of the block, where it
    runs only if a model was added or removed. Nests: an inner block joins the outer one."""
    doc = doc or pn.state.curdoc
    if doc is None:  # no live document (figure export, tests without a server): nothing to batch
        yield
        return
    models = doc.models
    if "invalidate" in vars(models):  # already inside a batch: join it
        yield
        return
    roots = list(doc.roots)
    graph_changed = False

    def note_change() -> None:
        nonlocal graph_changed
        graph_changed = True

    with pn.io.hold(doc):
        models.invalidate = note_change  # an instance attribute shadows the method for the block
        try:
            with models.freeze():
                try:
                    yield
                finally:
                    # the freeze ends with a walk (`_pop_freeze` calls `recompute`); skip it unless a
                    # property pointing at models changed (Model.trigger calls invalidate) or roots moved
                    models.recompute = lambda: None
        finally:
            del models.invalidate
            del models.recompute
            if graph_changed or list(doc.roots) != roots:
                models.recompute()
