"""Read-only SQL over the warehouse, from the CLI, notebooks and the dashboard, in a sandbox.

Two walls, each enough on its own for what it guards:
- The connection (`open_readonly`) can read the warehouse and nothing else on the machine: the
  warehouse is attached read-only, DuckDB's external access is switched off with only the runs'
  artifact folders allowed (the p x p maps are views over their Parquet), extensions are never
  loaded or installed, and the configuration is locked so a query cannot switch any of it back.
- User SQL (`query`) must be one read statement: SELECT (FROM-first included), PIVOT / UNPIVOT,
  or EXPLAIN of one of those; what EXPLAIN [ANALYZE] wraps is checked too, since EXPLAIN ANALYZE
  runs it. COPY, ATTACH, SET, INSTALL, LOAD, PRAGMA, CALL and every write are refused in one line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Self

import duckdb
import polars as pl

from tdw.errors import TdwError

DEFAULT_DB = Path("warehouse/tdw.duckdb")
LOCKED_DOWN = {"autoload_known_extensions": False, "autoinstall_known_extensions": False}


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_list(items: list[str]) -> str:
    return "[" + ", ".join(sql_string(item) for item in items) + "]"


def in_list(names: set[str]) -> str:
    """('a', 'b') for `variant in ...`; ('') when empty, which matches no variant."""
    return "(" + ", ".join(sql_string(n) for n in sorted(names) or [""]) + ")"


def open_readonly(db: str | Path) -> duckdb.DuckDBPyConnection:
    """A fresh sandboxed connection to the warehouse file as it is now.

    Attaching to a new in-memory database always opens the file anew (a plain `duckdb.connect`
    may hand back the process's cached instance of a file that `tdw index` has since swapped)."""
    db = Path(db)
    if not db.is_file():
        raise TdwError(f"--db {db}: no warehouse there; run `tdw index` first")
    con = duckdb.connect(":memory:", config=LOCKED_DOWN)
    try:
        con.execute(f"attach {sql_string(str(db.resolve()))} as warehouse (read_only)")
        con.execute("use warehouse")
        runs = [row[0] for row in con.execute("select path from src_runs").fetchall()]
    except duckdb.Error as error:
        con.close()
        raise TdwError(f"--db {db}: not a readable tdw warehouse ({one_line(error)}); "
                       "rebuild it with `tdw index --force`") from None
    con.execute("set allowed_directories = $dirs", {"dirs": [str(Path(r) / "artifacts") + "/" for r in runs]})
    con.execute("set enable_external_access = false")
    # Parquet footers are cached: the artifact views span one file per checkpoint, and a dashboard's
    # point lookups (one epoch, one neuron) would otherwise re-read every footer (p=113: 120 -> 60 ms)
    con.execute("set parquet_metadata_cache = true")
    con.execute("set lock_configuration = true")
    return con


class ReadOnlyConnection:
    """The notebook's connection: DuckDB's `sql`/`execute`, each statement checked like `tdw sql`'s,
    over a sandboxed connection. (A raw connection could still COPY into a run's artifact folder,
    which the sandbox must let it read.)"""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def sql(self, sql: str, params: object = None) -> duckdb.DuckDBPyRelation:
        check_read_only(self._con, sql)
        return self._con.sql(sql, params=params)

    def execute(self, sql: str, params: object = None) -> duckdb.DuckDBPyConnection:
        check_read_only(self._con, sql)
        return self._con.execute(sql, params)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(db: str | Path = DEFAULT_DB) -> ReadOnlyConnection:
    """A sandboxed read-only connection for notebooks: `tdw.connect().sql("select ...").pl()`."""
    return ReadOnlyConnection(open_readonly(db))


GONE_FILE = re.compile(r'No files found that match the pattern "([^"]+)"')


def one_line(error: duckdb.Error) -> str:
    """DuckDB's multi-line message as one line: its first line, the position its caret points at,
    and its hints (`Did you mean "variant_summary"?`, a missing column's candidate bindings), which
    are what a mistyped name needs. A file the warehouse's views list that is no longer there says
    what to do instead: such a view is bound whole, so one run deleted (or one old artifact retired
    by `tdw analyze`) fails every query of that table until `tdw index` lists the files anew."""
    text = str(error)
    gone = GONE_FILE.search(text)
    if gone:
        return (f"{gone.group(1)}: gone since the warehouse was indexed (a run deleted or moved, or an old "
                "artifact retired by `tdw analyze`); run `tdw index` to bring the warehouse up to date")
    lines = text.splitlines() or [error.__class__.__name__]
    message, hints = lines[0], []
    for i, line in enumerate(lines[1:], start=1):
        match = re.match(r"LINE (\d+): ?", line)
        if match and i + 1 < len(lines) and "^" in lines[i + 1]:
            column = lines[i + 1].index("^") - match.end() + 1
            message += f" (line {match.group(1)}, column {column})"
        elif line.strip() and not match and not lines[i - 1].startswith("LINE "):  # not the caret under it
            hints.append(line.strip())
    return " ".join([message, *hints])


def keywords(sql: str) -> list[tuple[str, int]]:
    """(lower-cased word, offset) of each token that is not a comment."""
    tokens = [(offset, kind) for offset, kind in duckdb.tokenize(sql) if kind != duckdb.token_type.comment]
    ends = [offset for offset, _ in tokens[1:]] + [len(sql)]
    return [(sql[offset:end].strip().lower(), offset) for (offset, _), end in zip(tokens, ends)]


def refused_kind(con: duckdb.DuckDBPyConnection, sql: str) -> str | None:
    """None when `sql` is one read statement; otherwise what it is (COPY, EXPLAIN ANALYZE COPY, ...)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as error:
        raise TdwError(one_line(error)) from None
    if len(statements) != 1:
        raise TdwError(f"expected one statement, got {len(statements)}")
    kind = statements[0].type
    words = keywords(sql)
    if kind == duckdb.StatementType.SELECT:
        return None
    if kind == duckdb.StatementType.MULTI and words and words[0][0] in ("pivot", "unpivot"):
        return None
    if kind == duckdb.StatementType.EXPLAIN:
        skip = 2 if len(words) > 1 and words[1][0] == "analyze" else 1
        if len(words) <= skip:
            return "EXPLAIN of nothing"
        inner = refused_kind(con, sql[words[skip][1]:])
        return None if inner is None else " ".join(w for w, _ in words[:skip]).upper() + " " + inner
    return kind.name


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise TdwError unless `sql` is exactly one read statement (see the module docstring)."""
    kind = refused_kind(con, sql)
    if kind is not None:
        raise TdwError(f"only read queries are allowed (SELECT, WITH, PIVOT, UNPIVOT, EXPLAIN); this is {kind}")


def query(sql: str, db: str | Path = DEFAULT_DB) -> pl.DataFrame:
    """Run one read query in the sandbox; anything else raises TdwError with one line."""
    con = open_readonly(db)
    try:
        check_read_only(con, sql)
        try:
            return con.sql(sql).pl()
        except duckdb.Error as error:
            raise TdwError(one_line(error)) from None
    finally:
        con.close()
