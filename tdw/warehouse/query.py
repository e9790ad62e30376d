"""Read-only SQL over the warehouse, from the CLI and from notebooks."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl

from tdw.errors import TdwError
from tdw.warehouse.indexer import DEFAULT_DB

READ_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def connect(db: str | Path = DEFAULT_DB) -> duckdb.DuckDBPyConnection:
    """A read-only connection for notebooks: `tdw.connect().sql("select ...").pl()`."""
    db = Path(db)
    if not db.exists():
        raise TdwError(f"--db {db}: no warehouse there; run `tdw index` first")
    return duckdb.connect(str(db), read_only=True)


def one_line(error: duckdb.Error) -> str:
    """DuckDB's multi-line message as one line, with the position its caret points at."""
    text = str(error)
    lines = text.splitlines()
    message = lines[0]
    for i, line in enumerate(lines):
        match = re.match(r"LINE (\d+): ?", line)
        if match and i + 1 < len(lines) and "^" in lines[i + 1]:
            column = lines[i + 1].index("^") - match.end() + 1
            message += f" (line {match.group(1)}, column {column})"
            break
    return message


def query(sql: str, db: str | Path = DEFAULT_DB) -> pl.DataFrame:
    """Run one read query; writes, syntax errors and unknown views raise TdwError with one line."""
    con = connect(db)
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as error:
            raise TdwError(one_line(error)) from None
        if len(statements) != 1:
            raise TdwError(f"expected one statement, got {len(statements)}")
        kind = statements[0].type
        if kind not in READ_STATEMENTS:
            raise TdwError(f"only read queries are allowed (SELECT, WITH, EXPLAIN); this is {kind.name}")
        try:
            return con.sql(sql).pl()
        except duckdb.Error as error:
            raise TdwError(one_line(error)) from None
    finally:
        con.close()
