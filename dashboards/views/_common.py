"""Shared drawing helpers: one place for the empty-state element and grouped curves."""

from __future__ import annotations

import holoviews as hv
import polars as pl


def no_data(title: str, why: str = "no data in the warehouse for this selection") -> hv.Element:
    return hv.Text(0.5, 0.5, why).opts(title=title, xaxis=None, yaxis=None)


def curves(frame: pl.DataFrame, x: str, y: str, by: str, title: str, ylabel: str, logy: bool = False,
           labels: dict | None = None) -> hv.Overlay | hv.Element:
    """One curve per value of `by` (a tidy frame straight from a query)."""
    if frame.is_empty():
        return no_data(title)
    elements = []
    for key in frame[by].unique(maintain_order=True).to_list():
        part = frame.filter(pl.col(by) == key)
        if logy:
            part = part.filter(pl.col(y) > 0)
        label = (labels or {}).get(key, str(key))
        elements.append(hv.Curve((part[x].to_numpy(), part[y].to_numpy()), x, y, label=label))
    return hv.Overlay(elements).opts(title=title, xlabel=x, ylabel=ylabel, logy=logy, show_legend=True)
