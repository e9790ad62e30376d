"""Shared drawing helpers: one place for the empty-state element, grouped curves and where a legend goes."""

from __future__ import annotations

import textwrap

import holoviews as hv
import polars as pl

NO_DATA_LINE = 46  # characters: what a default 470 px plot's frame holds at the Text glyph's default size

# A legend inside the frame covers data: Bokeh's default top-right corner is where an over-epochs
# plot's cleanup phase is (the key frequencies' peak and fall, the Gini's rise). It goes beside the
# frame, in a compact legend, and the frame gives way to it inside the dashboard's 470 x 300 plot:
# a figure whose outer size followed its legend and tick labels (502-560 px) resized its card at
# a click on another input or run, and the browser laid out the whole page. A single curve needs
# no legend (the title names it).
LEGEND = {"label_text_font_size": "8pt", "glyph_width": 14, "padding": 4, "spacing": 0, "margin": 4}


def with_legend(overlay: hv.Overlay, entries: int) -> hv.Overlay:
    """The overlay of `entries` labelled elements with its legend placed (its style is Bokeh's
    alone: a matplotlib export keeps its own legend)."""
    if entries <= 1:
        return overlay.opts(show_legend=False)
    return overlay.opts(show_legend=True, legend_position="right").opts(backend="bokeh", legend_opts=LEGEND)


def no_data(title: str, why: str = "no data in the warehouse for this selection") -> hv.Element:
    # wrapped: one line of a long hint (a command to run) ran past both edges of the frame
    return hv.Text(0.5, 0.5, textwrap.fill(why, NO_DATA_LINE)).opts(title=title, xaxis=None, yaxis=None)


def no_data_reason(element: hv.Element) -> str | None:
    """What a `no_data` element says, on one line (None for a view that drew something): a view's
    whole element is a Text only when it has nothing to draw."""
    return " ".join(element.text.split()) if isinstance(element, hv.Text) else None


def not_traced(store, variant: str, a: int, b: int, command: bool = True) -> str:
    """Why a view of the traced input has nothing for a+b, and (`command`) the command that traces it."""
    from tdw.probes import without_auto

    probe = without_auto(store.trace_probe(variant), int(store.variant(variant)["p"]))
    why = f"{a}+{b} is not traced (probe {probe})"
    return f"{why}; tdw analyze RUN --trace-add \"{a}+{b}\" adds it" if command else why


def curves(frame: pl.DataFrame, x: str, y: str, by: str, title: str, ylabel: str, logy: bool = False,
           labels: dict | None = None) -> hv.Overlay | hv.Element:
    """One curve per value of `by` (a tidy frame straight from a query); on a log axis (`logy`)
    its positive values, and where it has none a line that says so.

    Where the positive values are one value (a run of one checkpoint, at initialization: one
    flatness median above zero), the log axis spans two decades around it: Bokeh padded the
    range of width zero linearly, below zero, and logged a warning on every draw."""
    if frame.is_empty():
        return no_data(title)
    positive = frame[y].filter(frame[y] > 0) if logy else None
    if positive is not None and positive.is_empty():
        return no_data(title, f"no positive values to draw on a log scale ({frame.height} at or below zero)")
    keys = frame[by].unique(maintain_order=True).to_list()
    legend = [(labels or {}).get(key, str(key)) for key in keys]
    # HoloViews' matplotlib backend reads a style value that names one of the element's dimensions
    # (by name or label) as that dimension's values, so a legend entry equal to a column ("velocity")
    # became a label per point and the export failed; such a dimension is renamed (the axes are
    # titled by xlabel and ylabel either way)
    x_dim, y_dim = (hv.Dimension((f"{name}_axis", f"{name} axis")) if name in legend else name for name in (x, y))
    elements = []
    for key, label in zip(keys, legend):
        part = frame.filter(pl.col(by) == key)
        if logy:
            part = part.filter(pl.col(y) > 0)
        elements.append(hv.Curve((part[x].to_numpy(), part[y].to_numpy()), x_dim, y_dim, label=label))
    overlay = hv.Overlay(elements).opts(title=title, xlabel=x, ylabel=ylabel, logy=logy)
    if positive is not None and positive.min() == positive.max():
        overlay = overlay.opts(ylim=(positive.min() / 10, positive.max() * 10))
    return with_legend(overlay, len(elements))


# The run's training events, marked on over-epochs views: (grokking_turn's column, name, colour)
TRAINING_MARKS = (("memorization_epoch", "memorized", "gray"), ("turn_epoch", "turn", "orange"),
                  ("grok_epoch", "grokked", "green"))


def training_marks(turn: dict) -> list[hv.VLines]:
    """The run's memorization, turn and grok epochs as vertical lines, one layer per event with no
    line where the run has none: a run that never turned has the same layers as one that did, so
    switching between them patches the drawn figure instead of drawing a new one (`panes.shape`; a
    VLine per known mark made the published run's and a p=17 run's loss figures differ: 0.15 s more
    server time per switch). One layer per event, not one coloured by a column: matplotlib's VLines take one
    colour. The legend lists curves only; a view's caption names the lines."""
    return [hv.VLines({"epoch": [] if turn.get(key) is None else [float(turn[key])]}, kdims=["epoch"])
            .opts(color=color) for key, _, color in TRAINING_MARKS]


def pair_image(grid, title: str, label: str, cmap: str) -> hv.Element:
    """A p x p map over the inputs, a down the side and b along the bottom: row a spans y in
    [a, a + 1), so a click at (x, y) is the pair (floor(y), floor(x)). NaN (no value) is gray.
    Hovering a cell names its pair and value before a click traces it (the pointer's floored
    position: Bokeh's own would say a = 12.81)."""
    import numpy as np
    from bokeh.models import CustomJSHover

    p = grid.shape[0]
    cell = CustomJSHover(code="return String(Math.floor(value))")  # a new one each time: a Bokeh model has one document
    return hv.Image(np.flipud(grid), bounds=(0, 0, p, p), kdims=["b", "a"], vdims=[label]).opts(
        title=title, cmap=cmap, colorbar=True, xlabel="b", ylabel="a", clipping_colors={"NaN": "lightgray"}).opts(
        backend="bokeh", tools=["hover"], hover_tooltips=[("a + b", "$y{custom} + $x{custom}"), (label, "@image{0.000}")],
        hover_formatters={"$x": cell, "$y": cell})


def grid_of(frame: pl.DataFrame, column: str, p: int):
    """A tidy (a, b, column) frame as a p x p float32 array, NaN where a pair has no row or value."""
    import numpy as np

    grid = np.full((p, p), np.nan, dtype=np.float32)
    if frame.height:
        values = frame[column].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        grid[frame["a"].to_numpy(), frame["b"].to_numpy()] = values
    return grid


def select_pair(store, state, x: float, y: float, shift: bool = False) -> None:
    """A click on a pair map traces that pair; with shift held, it is pinned beside the traced one."""
    p = store.variant(state.variant).get("p") or 0
    a, b = int(y // 1), int(x // 1)
    if not (0 <= a < p and 0 <= b < p):
        return
    pair = f"{a}+{b}"
    if shift:
        splits = {row["a"] * p + row["b"]: row["split"] for row in store.graduation(state.variant).iter_rows(named=True)}
        split_of = {f"{i // p}+{i % p}": s for i, s in splits.items()}
        state.pin(pair, split_of.get(pair, ""), split_of)
    else:
        state.pair = pair


def pair_label(store, variant: str, pair: str) -> str:
    """"4+29 (test)": the pair and its split in the variant."""
    from dashboards.state import parse_pair

    a, b = parse_pair(pair)
    rows = store.pair_outcomes(variant, a, b)
    return f"{a}+{b}" + (f" ({rows['split'][0]})" if rows.height else "")
