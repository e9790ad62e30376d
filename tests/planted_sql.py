"""One warehouse model's own SQL run over planted tables named as the views it reads, in an
in-memory DuckDB: a mart or summary checked against hand-computed answers without training,
analyzing or indexing anything (as `tdw.warehouse.turn` runs the turn's SQL over any losses)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from tdw.warehouse.sql_models import read_models

Tables = dict[str, tuple[str, list[tuple]]]  # {name: (its columns as SQL, "variant varchar, epoch integer", its rows)}


def create_planted(con: duckdb.DuckDBPyConnection, model: str, tables: Tables) -> None:
    for name, (columns, rows) in tables.items():
        con.execute(f"create table {name} ({columns})")
        if rows:
            con.executemany(f"insert into {name} values ({', '.join('?' * len(rows[0]))})", rows)
    con.execute(next(m for m in read_models() if m.name == model).text)


def run_model(model: str, tables: Tables, order_by: str = "all") -> pl.DataFrame:
    """`model`'s rows over `tables`."""
    con = duckdb.connect()
    try:
        create_planted(con, model, tables)
        return con.sql(f"select * from {model} order by {order_by}").pl()
    finally:
        con.close()


def planted_warehouse(path: Path, model: str, tables: Tables) -> Path:
    """A warehouse file holding `tables` and `model` over them (and an empty `src_runs`, which the
    sandboxed read-only connection reads): what the dashboard's store queries, for a view drawn on
    planted data."""
    con = duckdb.connect(str(path))
    try:
        con.execute("create table src_runs (path varchar)")
        create_planted(con, model, tables)
    finally:
        con.close()
    return path
