"""The SQL models (`sql/`) made in a warehouse: created in dependency order on a new one, and on
a patched copy recomputed only where what they read changed.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import polars as pl

from tdw.errors import TdwError
from tdw.warehouse.query import in_list
from tdw.warehouse.sql_models import SqlModel


def models_to_refresh(models: list[SqlModel], stale: dict[str, set[str]]) -> dict[str, set[str]]:
    """{table model: the variants whose rows a patch recomputes}, in dependency order: where what
    it reads changed (`stale`: the variants stale in each source, followed through each model's
    from/join relations). A view (staging: renames and casts) and a `by_variant` table change
    where their inputs changed; a `whole` table (a cross-variant summary) may change for every
    variant, and is recomputed. A model reading nothing that changed is left as it is: an input
    traced changes the traces, not the neurons' marts."""
    stale = {source: set(variants) for source, variants in stale.items()}
    everyone = set().union(*stale.values())
    refresh = {}
    for model in models:
        affected = set().union(*(stale.get(read, set()) for read in model.reads if read != model.name))
        if not affected:
            continue
        stale[model.name] = everyone if model.materialized == "table" and model.refresh == "whole" else affected
        if model.materialized == "table":
            refresh[model.name] = stale[model.name]
    return refresh


def refresh_sql(con: duckdb.DuckDBPyConnection, models: list[SqlModel], refresh: dict[str, set[str]]) -> None:
    """The models' tables of a patched warehouse brought up to date (`models_to_refresh`), in
    dependency order: a `by_variant` layer's table gets those variants' rows recomputed (the
    view, filtered to them, computes only those), a `whole` layer's table is recomputed."""
    for model in models:
        affected = refresh.get(model.name)
        if not affected:
            continue
        try:
            if model.is_python and model.refresh == "by_variant":
                con.execute(f"delete from {model.name} where variant in {in_list(affected)}")
                insert_python_rows(con, model, sorted(affected))
            elif model.is_python:
                con.execute(f"drop table {model.name}")
                apply_sql(con, [model])
            elif model.refresh == "by_variant":
                con.execute(f"alter table {model.name} rename to {model.name}__kept")
                con.execute(model.text)
                # a literal list, which DuckDB pushes into the view (a subquery would compute every variant)
                con.execute(f"delete from {model.name}__kept where variant in {in_list(affected)}")
                con.execute(f"insert into {model.name}__kept by name select * from {model.name} "
                            f"where variant in {in_list(affected)} {model.storage_order}")
                con.execute(f"drop view {model.name}")
                con.execute(f"alter table {model.name}__kept rename to {model.name}")
            else:
                con.execute(f"drop table {model.name}")
                apply_sql(con, [model])
        except duckdb.Error as error:
            raise TdwError(f"{model.path}: {str(error).splitlines()[0]}") from None


_importing_ahead: threading.Thread | None = None  # the thread of `imported_ahead`, while it runs


def python_rows(con: duckdb.DuckDBPyConnection, model: SqlModel, variants: list[str] | None) -> pl.DataFrame:
    """A Python model's rows (for `variants`, or all), computed once the libraries imported ahead
    are in (`imported_ahead`): a module imported by two threads at once can deadlock on its
    import lock, which Python breaks by handing one thread the module half made."""
    if _importing_ahead is not None:
        _importing_ahead.join()
    return model.function(con, variants)


def insert_python_rows(con: duckdb.DuckDBPyConnection, model: SqlModel, variants: list[str]) -> None:
    """A Python model's rows for `variants`, appended to its table."""
    frame = python_rows(con, model, variants)
    if frame.height:
        con.register(f"{model.name}__frame", frame.to_arrow())
        con.execute(f"insert into {model.name} by name select * from {model.name}__frame {model.storage_order}")
        con.unregister(f"{model.name}__frame")


def apply_sql(con: duckdb.DuckDBPyConnection, models: list[SqlModel]) -> None:
    """Create each model's view, in dependency order; a model of a layer kept as tables is
    computed once here (for what the dashboard reads often)."""
    for model in models:
        try:
            if model.is_python:
                frame = python_rows(con, model, None)
                con.register(f"{model.name}__frame", frame.to_arrow())
                con.execute(f"create table {model.name} as select * from {model.name}__frame {model.storage_order}")
                con.unregister(f"{model.name}__frame")
                continue
            con.execute(model.text)
            if model.materialized == "table":
                con.execute(f"create table {model.name}__materialized as select * from {model.name} {model.storage_order}")
                con.execute(f"drop view {model.name}")
                con.execute(f"alter table {model.name}__materialized rename to {model.name}")
        except duckdb.Error as error:
            raise TdwError(f"{model.path}: {str(error).splitlines()[0]}") from None


@contextmanager
def imported_ahead(models: list[SqlModel]) -> Iterator[None]:
    """The libraries the Python models among `models` import (their IMPORTS), imported in a
    background thread while the block runs: an index copies the runs' rows first (in DuckDB, which
    releases the GIL), so the imports overlap it. A Python model is computed only once the thread
    is done (`python_rows`), so its own imports find the modules loaded; a failed import is left
    for the model's own, which reports it. The thread is joined before the block's exit."""
    names = sorted({name for model in models for name in model.imports if name not in sys.modules})
    if not names:
        yield
        return

    def import_all() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001, S110 - the model's own import raises it where it is used
                pass

    global _importing_ahead
    thread = threading.Thread(target=import_all, name="tdw-index-imports", daemon=True)
    thread.start()
    _importing_ahead = thread
    try:
        yield
    finally:
        thread.join()
        _importing_ahead = None
