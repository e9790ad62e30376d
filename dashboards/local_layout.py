"""A figure of fixed size is laid out by itself, not with the whole page.

Bokeh answers any change inside a figure that may move its parts (a wider tick label, a legend of
another length, a figure shown again after `display: none`) by laying out the whole document from
its root: every figure's panels measured, every box read back from the browser, every figure
repainted where anything moved. Its own source says a localized update would be better. On the
Variant page with every section built that is ~150-290 ms, once or twice per click: most of a
click between a traced and an untraced input on the published run.

A figure whose outer width and height are fixed cannot change the page around it, so its own
layout is all that needs computing; every dashboard figure is fixed at its `PLOT_SIZE` (frame-sized
ones, the event timeline's, keep Bokeh's way). Bokeh 3.9's `PlotView` is patched in the browser,
once per page, at `document_ready`:

- `compute_layout` of such a figure lays out the figure alone, and nothing while it is hidden;
- a figure shown again by its style (`panes.SHOWN`: a live plot's kept figures) rebuilds and lays
  out its own panels, which it measured at zero while hidden.

The first layout of a figure still goes through the page (Bokeh has not placed it yet). Where the
methods this relies on are missing (another Bokeh), nothing is patched and Bokeh's way stands.
Screenshots of the Trace views after clicks across the traced/untraced boundary match a fresh load
of the last input but for the antialiasing of one pixel column (`tests/test_dashboard.py`).
"""

from __future__ import annotations

from bokeh.document import Document
from bokeh.models import CustomJS

LOCAL_LAYOUT_JS = """
const Plot = Bokeh.Models.get("Plot");
const proto = Plot && Plot.prototype.default_view && Plot.prototype.default_view.prototype;
if (proto && !proto.tdw_local_layout && proto.compute_layout && proto._apply_html_attributes
    && proto.measure_layout && proto._compute_layout && proto.after_layout && proto.update_layout) {
  proto.tdw_local_layout = true;
  const page_layout = proto.compute_layout;
  const apply_styles = proto._apply_html_attributes;
  const fixed = (view) => {
    const model = view.model;
    return view.parent != null && model.sizing_mode === "fixed" && model.width != null && model.height != null
      && model.frame_width == null && model.frame_height == null;
  };
  const lay_out_alone = (view) => {
    view.measure_layout();
    view.update_bbox();
    view._compute_layout();
    view.after_layout();
    view._layout_computed = true;
  };
  proto.compute_layout = function () {
    if (!(fixed(this) && this._layout_computed)) {
      page_layout.call(this);
    } else if (this.is_displayed) {
      lay_out_alone(this);
    }
  };
  proto._apply_html_attributes = function () {
    const hidden = this.el.style.display === "none";
    apply_styles.call(this);
    if (hidden && this.el.style.display !== "none" && fixed(this)) {
      this.update_bbox();
      this.update_layout();
      lay_out_alone(this);
    }
  };
}
"""


def lay_out_fixed_figures_alone(document: Document) -> None:
    """Install the patch in the page of `document` once it is ready."""
    document.js_on_event("document_ready", CustomJS(code=LOCAL_LAYOUT_JS))
