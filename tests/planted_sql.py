"""One warehouse model's own SQL run over planted tables named as the views it reads, in an
in-memory DuckDB: a mart or summary checked against hand-computed answers without training,
analyzing or indexing anything (as `tdw.warehouse.turn` runs the turn's SQL over any losses)."""

from __future__ import annotations

import duckdb
import polars as pl

from tdw.warehouse.sql_models import read_models


def run_model(model: str, tables: dict[str, tuple[str, list[tuple]]], order_by: str = "all") -> pl.DataFrame:
    """`model`'s rows over `tables`: {name: (its columns as SQL, "variant varchar, epoch integer",
    its rows)}."""
    con = duckdb.connect()
    try:
        for name, (columns, rows) in tables.items():
            con.execute(f"create table {name} ({columns})")
            if rows:
                con.executemany(f"insert into {name} values ({', '.join('?' * len(rows[0]))})", rows)
        con.execute(next(m for m in read_models() if m.name == model).text)
        return con.sql(f"select * from {model} order by {order_by}").pl()
    finally:
        con.close()
