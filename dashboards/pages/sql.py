"""Ad-hoc SQL: type a read-only query, see the table and a quick plot, download the result for a
paper. The same read-only checks and one-line errors as `tdw sql`."""

from __future__ import annotations

import io

import holoviews as hv
import panel as pn
import polars as pl

from dashboards.state import WorkbenchState
from dashboards.store import WarehouseStore
from dashboards.tables import float_formatters
from dashboards.views._common import with_legend
from tdw.errors import TdwError
from tdw.warehouse.export import render

DEFAULT_QUERY = "select variant, p, seed, turn_epoch, grok_epoch, turn_to_grok, specialized_fraction\nfrom variant_summary"


def quick_plot(frame: pl.DataFrame) -> hv.Element | None:
    """The first two numeric columns as a scatter (a curve if x is the epoch), one series per
    variant; none for a single row, where one point says nothing the table does not."""
    numeric = [c for c, t in frame.schema.items() if t.is_numeric()]
    if len(numeric) < 2 or frame.height < 2:
        return None
    x, y = ("epoch", next(c for c in numeric if c != "epoch")) if "epoch" in numeric else numeric[:2]
    element = hv.Curve if x == "epoch" else hv.Scatter
    if "variant" in frame.columns:
        parts = [element(part.select(x, y).to_numpy(), x, y, label=str(v)) for (v,), part in frame.group_by("variant", maintain_order=True)]
        plot = with_legend(hv.Overlay(parts), len(parts))
    else:
        plot = element(frame.select(x, y).to_numpy(), x, y)
    return plot.opts(title=f"{y} against {x}", frame_width=520, frame_height=260)


def build(store: WarehouseStore, state: WorkbenchState) -> pn.Column:
    editor = pn.widgets.TextAreaInput(value=DEFAULT_QUERY, height=120, sizing_mode="stretch_width", css_classes=["sql-editor"])
    run = pn.widgets.Button(name="Run query", button_type="primary", css_classes=["sql-run"])
    message = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["sql-error"])
    table = pn.widgets.Tabulator(pl.DataFrame().to_pandas(), disabled=True, show_index=False, pagination="local", page_size=20,
                                 sizing_mode="stretch_width", css_classes=["sql-result"])
    plot = pn.pane.HoloViews(None)
    status = pn.pane.Markdown("", css_classes=["sql-status"])
    result: dict[str, pl.DataFrame] = {"frame": pl.DataFrame()}

    def execute(_=None):
        try:
            frame = store.user_query(editor.value)
        except TdwError as error:
            message.object, message.visible = str(error), True
            return
        message.visible = False
        result["frame"] = frame
        status.object = f"{frame.height} row{'' if frame.height == 1 else 's'} x {frame.width} columns"
        flat = frame.with_columns(pl.col(c).cast(pl.List(pl.Utf8)).list.join(", ") for c, t in frame.schema.items()
                                  if isinstance(t, pl.List))
        shown = flat.to_pandas()
        table.formatters = float_formatters(shown)
        table.value = shown
        plot.object = quick_plot(frame)

    run.on_click(execute)

    def download(fmt: str) -> pn.widgets.FileDownload:
        return pn.widgets.FileDownload(callback=lambda: io.BytesIO(render(result["frame"], fmt)), filename="query." + ("tex" if fmt == "latex" else fmt),
                                       label=f"Download {fmt}", button_type="light", css_classes=[f"sql-download-{fmt}"])

    execute()
    return pn.Column(pn.pane.Markdown("### SQL over the warehouse (read-only)"), editor, pn.Row(run, status), message, table,
                     pn.Row(download("csv"), download("parquet"), download("latex")), plot, sizing_mode="stretch_width")
