"""The DuckDB warehouse: index runs into views (sql/), query them read-only, export results.

`query` and `connect` load no torch (a `tdw sql` starts in well under a second); `build_index`
reads runs, so it loads the indexer, and torch with it, only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tdw.warehouse.query import connect, query

if TYPE_CHECKING:
    from tdw.warehouse.indexer import IndexReport


def build_index(results: str | Path = "results", db: str | Path = "warehouse/tdw.duckdb",
                force: bool = False) -> IndexReport:
    """Index `results` into the warehouse `db` (see tdw.warehouse.indexer)."""
    from tdw.warehouse.indexer import build_index as build

    return build(results, db, force)


__all__ = ["build_index", "connect", "query"]
