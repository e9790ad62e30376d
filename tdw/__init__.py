"""tdw."""


def connect(db: str = "warehouse/tdw.duckdb"):
    """A read-only DuckDB connection to the warehouse; `.sql(q).pl()` gives Polars."""
    from tdw.warehouse.query import connect as _connect

    return _connect(db)


def query(sql: str, db: str = "warehouse/tdw.duckdb"):
    """One read-only query as a Polars DataFrame."""
    from tdw.warehouse.query import query as _query

    return _query(sql, db)
