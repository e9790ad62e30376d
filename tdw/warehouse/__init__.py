"""The DuckDB warehouse: index runs into views (sql/), query them read-only, export results."""

from tdw.warehouse.indexer import build_index
from tdw.warehouse.query import connect, query

__all__ = ["build_index", "connect", "query"]
