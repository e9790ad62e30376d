"""Stylesheets of components added to a live page come from this server, never a CDN.

Panel points a component's stylesheets at its CDN unless the document says where its own static
files are (`dist_url`), and it patches only the models on the page when it first renders it. A
component made later, in a callback (a Variant page section built when first scrolled to), can
come out pointing at the CDN: unreachable on a closed network, and nothing should be fetched from
the network anyway. `serve_locally` re-points such a component's stylesheets before it is sent.
"""

from __future__ import annotations

import panel as pn
from panel.io.resources import patch_model_css


def serve_locally(component: pn.viewable.Viewable) -> None:
    """Point every stylesheet of the component's models (its children's included) at the
    document's own static files. A no-op outside a served session."""
    document = pn.state.curdoc
    dist_url = document._template_variables.get("dist_url") if document is not None else None
    if not dist_url:
        return
    for model, _ in list(component._models.values()):
        patch_model_css(model, dist_url=dist_url)
