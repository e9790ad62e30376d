"""The source relations the SQL models read, made from the runs and the catalog.

Artifact tables are copied into DuckDB (run by run, in epoch order, so zone maps make a
(variant, epoch) slice read a few blocks); a run's rows of a table whose files are unchanged
since the last index are copied from the previous warehouse rather than re-read from Parquet.
The very large tables (per-neuron and per-head p x p maps) stay in Parquet behind a view with
one branch per run. The small sources (runs, checkpoints, losses, traced probes, the catalog's
schedules, jobs and probes) are rebuilt whole every time. Every file is read at the version it
had when its batch began (`tdw.atomic.pinned_batches`), so a run rewriting its files meanwhile
cannot tear a read.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from tdw import atomic
from tdw.analysis.analyzer import TableSpec
from tdw.analysis.artifacts import EPOCH_FILE_PATTERN, tidy
from tdw.analysis.interventions import SPEC as INTERVENTION_SPEC
from tdw.analysis.interventions import TABLE as INTERVENTIONS
from tdw.analysis.shared_basis import SPEC as TRAJECTORY_BASIS_SPEC
from tdw.analysis.shared_basis import TABLE as TRAJECTORY_BASIS
from tdw.analyzers import all_analyzers
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.parameters import variant_row, variant_schema
from tdw.probes import parse_probe
from tdw.run_dir import LOSS_SCHEMA, RunDir
from tdw.warehouse.catalog import Catalog, NamedSchedule
from tdw.warehouse.query import in_list, sql_list


def artifact_tables() -> dict[str, TableSpec]:
    """Every tidy table runs hold as Parquet: the analyzers', the interventions' and the shared
    trajectory bases'."""
    tables = {table: spec for analyzer in all_analyzers().values() for table, spec in analyzer.tables.items()}
    return {**tables, INTERVENTIONS: INTERVENTION_SPEC, TRAJECTORY_BASIS: TRAJECTORY_BASIS_SPEC}


def replaced_tables() -> dict[str, list[tuple[str, str]]]:
    """{table: [(a table an earlier analyzer version wrote instead, the select list reading its
    files as this table)]} (`Analyzer.replaces`)."""
    replaced: dict[str, list[tuple[str, str]]] = {}
    for analyzer in all_analyzers().values():
        for old, how in analyzer.replaces.items():
            replaced.setdefault(how.into, []).append((old, how.select))
    return replaced


def run_rows(runs: list[RunDir]) -> pl.DataFrame:
    """`src_runs`: one row per run, a column per declared variant parameter (tdw/parameters.py),
    and what its family declares for the SQL and the dashboard (the share of variance that makes a
    neuron specialized; which activations it has, so a view of attention says n/a for an MLP)."""
    rows = []
    for run in runs:
        config = run.read_config()
        family = get_family(config.family)
        rows.append({**variant_row(config), "specialized_share": family.specialized_share,
                     "activations": sorted(family.hooks),
                     "status": run.read_metadata().get("status", "unknown"), "path": str(run.path.resolve())})
    schema = {**variant_schema(), "specialized_share": pl.Float64, "activations": pl.List(pl.Utf8),
              "status": pl.Utf8, "path": pl.Utf8}
    return pl.DataFrame(rows, schema=schema)


def traced_probe_rows(runs: list[RunDir]) -> pl.DataFrame:
    """`src_traced_probes`: one row per run, the probe its per-input traces cover (`tdw analyze
    --trace`). Apart from `src_runs` because it changes with analysis: an input traced then
    refreshes what reads traces, not every model that reads `variants`."""
    return pl.DataFrame({"variant": [run.read_config().name for run in runs], "trace_probe": [run.trace_spec() for run in runs]},
                        schema={"variant": pl.Utf8, "trace_probe": pl.Utf8})


def empty_table_sql(table: str, spec) -> str:
    """A typed, empty relation for an artifact table no run has produced yet."""
    frame = tidy(pl.DataFrame({k: [] for k in ["variant", "epoch", *spec.keys, spec.value_column]}), spec, "", None)
    return frame.clear()


def artifact_files(run: RunDir, table: str) -> list[str]:
    """A table's Parquet files in one run, by absolute path, in epoch order. The folder is resolved
    once, not each file: resolving a path costs a `stat` per component, and a run has thousands."""
    folder = run.artifacts_dir / table
    if not folder.is_dir():
        return []
    where = folder.resolve()
    return sorted(str(where / name) for name in os.listdir(where) if name.endswith(".parquet") and not name.startswith(atomic.TEMP_PREFIX))


def table_reads(run: RunDir, table: str) -> list[tuple[str, list[str]]]:
    """How to read one run's rows of an artifact table: [(a select list, the Parquet files it
    reads)]. The table's own files, then an earlier analyzer version's files for the epochs the
    table has no file of (a run analyzed before the change and not since), converted by the
    replacement's select list."""
    files = artifact_files(run, table)
    reads = [("*", files)] if files else []
    covered = {Path(f).name for f in files}
    for old, select in replaced_tables().get(table, []):
        old_files = [f for f in artifact_files(run, old) if Path(f).name not in covered]
        if old_files:
            reads.append((select, old_files))
        covered |= {Path(f).name for f in old_files}
    return reads


def read_sql(select: str, files: list[str]) -> str:
    return f"select {select} from read_parquet({sql_list(files)}, union_by_name = true)"


def insert_run_rows(con: duckdb.DuckDBPyConnection, source: str, run: RunDir, table: str) -> None:
    """Copy one run's rows of `table` into `source`, each file read at the version it had when
    its batch began (`atomic.pinned_batches`), so an analysis rewriting the run's files meanwhile cannot
    tear a read."""
    for select, files in table_reads(run, table):
        for names in atomic.pinned_batches(files):
            con.execute(f"insert into {source} by name {read_sql(select, names)}")


def create_artifact_table(con: duckdb.DuckDBPyConnection, table: str, spec, runs: list[RunDir],
                          reusable: set[str]) -> None:
    """Copy a table's rows into DuckDB as `src_<table>`, run by run in epoch order (so zone maps
    prune slices). Rows of the `reusable` runs (whose files of this table are unchanged since the
    previous warehouse) are copied from it instead of re-read. SQL reads the table through its
    staging view, `sql/10_staging/<table>.sql`."""
    source = f"src_{table}"
    con.register(f"empty_{table}", empty_table_sql(table, spec).to_arrow())
    con.execute(f"create table {source} as select * from empty_{table}")
    con.unregister(f"empty_{table}")
    if reusable:
        con.execute(f"insert into {source} by name select * from previous.{source} where variant in "
                    f"(select unnest($variants))", {"variants": sorted(reusable)})
    for run in runs:
        if run.read_config().name not in reusable:
            insert_run_rows(con, source, run, table)


EPOCH_FILE = re.compile(EPOCH_FILE_PATTERN)  # an artifact file of one checkpoint's rows


FILE_EPOCH_SQL = f"cast(regexp_extract(filename, '{EPOCH_FILE_PATTERN}$', 1) as integer)"


def view_branch(variant: str, select: str, files: list[str]) -> str:
    """One run's rows of a Parquet-backed table, read with the variant as a constant (a filter on
    variant drops the other runs' branches before any file is opened) and each row's epoch matched
    to its file's name (one checkpoint's rows per file), from which DuckDB derives a filter on the
    file names: a dashboard's point lookup (one epoch, one neuron) opens one file, not the run's
    118 (the published run's neuron map in the dashboard: 100 -> 33 ms). Only straight from
    `read_parquet`: through a subquery DuckDB derives no file filter, so an earlier analyzer
    version's files, read through their conversion (`table_reads`), are read as before."""
    variant = variant.replace("'", "''")
    if select != "*" or not all(EPOCH_FILE.fullmatch(Path(f).name) for f in files):
        return f"select '{variant}' as variant, * exclude (variant) from ({read_sql(select, files)})"
    return (f"select '{variant}' as variant, * exclude (variant, filename) from read_parquet({sql_list(files)}, "
            f"union_by_name = true, filename = true) where epoch = {FILE_EPOCH_SQL}")


def create_artifact_view(con: duckdb.DuckDBPyConnection, table: str, spec, runs: list[RunDir]) -> None:
    """`src_<table>`, a view over the Parquet files: one branch per run (`view_branch`)."""
    branches = []
    for run in runs:
        branches += [view_branch(run.read_config().name, select, files) for select, files in table_reads(run, table)]
    if branches:
        con.execute(f"create view src_{table} as " + "\nunion all ".join(branches))
    else:
        con.register(f"empty_{table}", empty_table_sql(table, spec).to_arrow())
        con.execute(f"create table src_{table} as select * from empty_{table}")
        con.unregister(f"empty_{table}")


def create_sources(con: duckdb.DuckDBPyConnection, runs: list[RunDir], catalog: Catalog,
                   stale: dict[str, set[str]] | None) -> None:
    """Every source relation of a new warehouse; with `stale` (`changed_sources`), an artifact
    table's rows of the variants not stale in it are copied from the previous one (`previous`)."""
    create_run_sources(con, runs, catalog)
    previous_tables = {row[0] for row in con.execute(
        "select table_name from duckdb_tables() where database_name = 'previous'").fetchall()} if stale is not None else set()
    names = {run.read_config().name for run in runs}
    for table, spec in artifact_tables().items():
        source = f"src_{table}"
        if spec.warehouse == "table":
            reusable = names - stale.get(source, set()) if stale is not None and source in previous_tables else set()
            create_artifact_table(con, table, spec, runs, reusable)
        else:
            create_artifact_view(con, table, spec, runs)


# (the runs whose probe pairs are known, their rows): a patch's pairs of runs that did not change
KnownPairs = tuple[set[str], pl.DataFrame]

RUN_SOURCES = ("src_runs", "src_checkpoints", "src_losses", "src_traced_probes", "catalog_schedules", "catalog_jobs",
               "catalog_probes", "src_probe_pairs")


def create_run_sources(con: duckdb.DuckDBPyConnection, runs: list[RunDir], catalog: Catalog,
                       known_pairs: KnownPairs | None = None) -> None:
    """The small sources, rebuilt whole every time: runs, checkpoints, losses, the catalog's tables
    (`known_pairs`: probe pairs still valid, see `probe_pairs`)."""
    runs_frame = run_rows(runs)
    con.register("runs_frame", runs_frame.to_arrow())
    con.execute("create table src_runs as select * from runs_frame")
    con.register("traced_probes_frame", traced_probe_rows(runs).to_arrow())
    con.execute("create table src_traced_probes as select * from traced_probes_frame")
    checkpoints = pl.DataFrame(
        [(name, e) for r in runs for name in (r.read_config().name,) for e in r.checkpoint_epochs()],
        schema={"variant": pl.Utf8, "epoch": pl.Int32}, orient="row",
    )
    con.register("checkpoints_frame", checkpoints.to_arrow())
    con.execute("create table src_checkpoints as select * from checkpoints_frame")
    con.register("empty_losses", pl.DataFrame(schema=LOSS_SCHEMA).to_arrow())
    con.execute("create temp table read_losses as select * from empty_losses")
    con.unregister("empty_losses")
    loss_files = [str(r.losses_path.resolve()) for r in runs if r.losses_path.exists()]
    for names in atomic.pinned_batches(loss_files):  # a training run rewrites its losses as it goes
        con.execute("insert into read_losses by name select * from read_parquet($files)", {"files": names})
    con.execute("create table src_losses as select * from read_losses order by variant, epoch, split")
    con.execute("drop table read_losses")
    schedules = catalog.rows(NamedSchedule)
    frame = pl.DataFrame({"name": [s["name"] for s in schedules], "spec": [json.dumps(s["spec"]) for s in schedules]},
                         schema={"name": pl.Utf8, "spec": pl.Utf8})
    con.register("schedules_frame", frame.to_arrow())
    con.execute("create table catalog_schedules as select * from schedules_frame")
    jobs = pl.DataFrame([{k: v for k, v in job.items() if k not in ("params", "metrics")} for job in catalog.jobs()],
                        schema={"id": pl.Int64, "kind": pl.Utf8, "variant": pl.Utf8, "sweep_id": pl.Int64, "state": pl.Utf8,
                                "progress": pl.Int64, "total": pl.Int64, "host": pl.Utf8, "pid": pl.Int64,
                                "created_at": pl.Datetime, "started_at": pl.Datetime, "heartbeat_at": pl.Datetime,
                                "finished_at": pl.Datetime, "error": pl.Utf8}, orient="row")
    con.register("jobs_frame", jobs.to_arrow())
    con.execute("create table catalog_jobs as select * from jobs_frame")
    named = catalog.probes()
    con.register("probes_frame", pl.DataFrame({"name": list(named), "spec": list(named.values())},
                                              schema={"name": pl.Utf8, "spec": pl.Utf8}).to_arrow())
    con.execute("create table catalog_probes as select * from probes_frame")
    con.register("probe_pairs_frame", probe_pairs(runs, named, known_pairs).to_arrow())
    con.execute("create table src_probe_pairs as select * from probe_pairs_frame order by probe, variant, a, b")


def probe_pairs(runs: list[RunDir], named: dict[str, str], known: KnownPairs | None = None) -> pl.DataFrame:
    """`src_probe_pairs`: every named probe resolved against every run (its p and split). A probe
    that does not fit a run (a pair beyond its p) selects nothing there. A run `known` (in the
    previous warehouse, where neither the probes nor that run's files changed since) keeps its
    rows: a run's split is drawn with torch (`Family.task_data`), which indexing imports for
    new and changed runs alone, and not at all while no probe is named."""
    frames = [pl.DataFrame(schema={"probe": pl.Utf8, "variant": pl.Utf8, "a": pl.Int16, "b": pl.Int16, "split": pl.Utf8})]
    kept, rows = known if known is not None else (set(), None)
    if rows is not None:
        frames.append(rows)
    for run in runs if named else []:
        config = run.read_config()
        if config.name in kept:
            continue
        p = config.p
        train = get_family(config.family).task_data(config).train_mask
        for name, spec in named.items():
            try:
                rows = np.flatnonzero(parse_probe(spec).select(p, train))
            except TdwError:
                continue
            frames.append(pl.DataFrame({"probe": name, "variant": config.name, "a": rows // p, "b": rows % p,
                                        "split": np.where(train[rows], "train", "test")},
                                       schema_overrides={"a": pl.Int16, "b": pl.Int16}))
    return pl.concat(frames, how="vertical_relaxed").cast({"a": pl.Int16, "b": pl.Int16})


def unchanged_probe_pairs(con: duckdb.DuckDBPyConnection, catalog: Catalog, unchanged: set[str]) -> KnownPairs | None:
    """(`unchanged`, the warehouse's probe pairs of those runs): runs whose files are as indexed,
    where the catalog names the same probes as it did then; None where it does not."""
    indexed = dict(con.execute("select name, spec from catalog_probes").fetchall())
    if indexed != catalog.probes() or not unchanged:
        return None
    return unchanged, con.sql(f"select probe, variant, a, b, split from src_probe_pairs where variant in {in_list(unchanged)}").pl()


def update_sources(con: duckdb.DuckDBPyConnection, runs: list[RunDir], catalog: Catalog,
                   stale: dict[str, set[str]]) -> None:
    """Bring a copy of the previous warehouse up to date: the small sources rebuilt, and in each
    artifact table the rows of the variants `stale` in it (`changed_sources`: changed, new or gone)
    replaced by their runs' current Parquet; the other rows are left where they are."""
    known_pairs = unchanged_probe_pairs(con, catalog, {run.read_config().name for run in runs} - stale.get("src_runs", set()))
    for source in RUN_SOURCES:
        con.execute(f"drop table if exists {source}")
    create_run_sources(con, runs, catalog, known_pairs)
    for table, spec in artifact_tables().items():
        variants = stale.get(f"src_{table}", set())
        if spec.warehouse == "table":
            if not variants:
                continue
            con.execute(f"delete from src_{table} where variant in {in_list(variants)}")
            for run in runs:
                if run.read_config().name in variants:
                    insert_run_rows(con, f"src_{table}", run, table)
        else:  # a view over the files when some run has them, else an empty table
            kind = con.execute("select 'view' from duckdb_views() where view_name = $n union all "
                               "select 'table' from duckdb_tables() where table_name = $n",
                               {"n": f"src_{table}"}).fetchall()
            for (what,) in kind:
                con.execute(f"drop {what} src_{table}")
            create_artifact_view(con, table, spec, runs)
