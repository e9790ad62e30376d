"""A view's caption: one line of Markdown above its figure, rewritten at nearly every epoch change.

Panel's Markdown pane sends every property of its model again when its text changes. For a pane
built in a section revealed on screen, the first such update also swaps the theme's stylesheets:
the section's models got copies of their own when they were built, and the update brings the
document's shared ones. The browser renders the caption again and lays out the whole page for each:
about 250 ms per caption, a second on the first epoch change with the Neurons section in view. A
caption's update sends its text alone.
"""

from __future__ import annotations

import panel as pn


class Caption(pn.pane.Markdown):
    def _update(self, ref: str, model) -> None:
        text = self._transform_object(self.object)["object"]
        if model.text != text:
            model.text = text
