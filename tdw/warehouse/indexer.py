"""`tdw index`: build the warehouse aside, then swap it in atomically.

Artifact tables are copied into DuckDB (run by run, in epoch order, so zone maps make a
(variant, epoch) slice read a few blocks); a run's rows of a table whose files are unchanged
since the last index are copied from the previous warehouse rather than re-read from Parquet,
and when only runs changed the previous warehouse is patched where they did (`changed_sources`,
`models_to_refresh`). The very large tables
(per-neuron and per-head p x p maps) stay in Parquet behind a view with one branch per run.
Layers declared `materialized = "table"` in `sql/layers.toml` become tables. Measured in
benchmarks/warehouse_scale.py: over 3,300 files a view pays for opening every file on each
query, a table does not. The new file is built under a temp name in the same folder and renamed over the
old one, so a reader holding the old file keeps reading it undisturbed and a new reader gets
the complete new one; a killed indexer leaves the old warehouse intact. Nothing changed since
the last index (run and catalog fingerprints and sql/ unchanged) means nothing is done.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from tdw import atomic
from tdw.analysis.analyzer import TableSpec
from tdw.analysis.artifacts import EPOCH_FILE_PATTERN, read_manifest, tidy, verify_artifact
from tdw.analysis.artifacts import artifact_files as all_artifact_files
from tdw.analysis.interventions import SPEC as INTERVENTION_SPEC
from tdw.analysis.interventions import TABLE as INTERVENTIONS
from tdw.analysis.shared_basis import SPEC as TRAJECTORY_BASIS_SPEC
from tdw.analysis.shared_basis import TABLE as TRAJECTORY_BASIS
from tdw.analyzers import all_analyzers
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.locks import exclusive
from tdw.parameters import variant_row, variant_schema
from tdw.probes import parse_probe
from tdw.run_dir import LOSS_SCHEMA, RunDir, find_runs
from tdw.warehouse.catalog import Catalog, NamedSchedule, catalog_path
from tdw.warehouse.query import sql_string
from tdw.warehouse.sql_models import SQL_DIR, SqlModel, read_models

DEFAULT_DB = Path("warehouse/tdw.duckdb")


@dataclass
class IndexReport:
    runs: int
    changed: list[str]
    seconds: float
    rebuilt: bool
    problems: list[str] = field(default_factory=list)  # one line each: runs left out, a rebuilt warehouse
    parts: dict[str, list[str]] = field(default_factory=dict)  # variant -> what of it changed (`changed_parts`)
    patched: bool = False  # a copy of the previous warehouse patched where it changed, not a full build
    refreshed: dict[str, list[str]] = field(default_factory=dict)  # a patch's recomputed model tables -> variants

    def summary(self) -> str:
        lines = list(self.problems)
        if not self.rebuilt:
            lines.append(f"warehouse up to date ({self.runs} runs); nothing to do")
        else:
            what = ""
            if len(self.changed) == 1 and ALL_PARTS not in self.parts.get(self.changed[0], [ALL_PARTS]):
                what = f": {self.changed[0]}'s " + ", ".join(self.parts[self.changed[0]])
            lines.append(f"indexed {self.runs} runs ({len(self.changed)} new or changed{what}) in {self.seconds:.2f} s")
        return "\n".join(lines)


RUN_PART = "run"  # a run's fingerprint part of its own files (config, metadata, losses, checkpoints)
TRACE_PART = "trace"  # ... and of its traced probe, which changes with analysis, not with the run


def run_fingerprint(run: RunDir) -> str:
    """A digest per part of the run the warehouse reads, as JSON: `RUN_PART` (its config,
    metadata, losses and checkpoints), `TRACE_PART` and each artifact folder, from where the run
    is and the name, size and mtime of every file. Per part, so that an index replaces only what
    changed: tracing one more input rewrites two tables of a run, and re-copying its 20 others
    was most of the index's time. Where, because the warehouse's views name the run's files by
    path: a results folder copied or moved keeps every mtime, and its runs must still be
    re-listed. Walked with os.scandir: a run of 300 checkpoints has thousands of artifact files,
    and Path.rglob plus a stat each took ~0.1 s per run, most of an incremental index's fixed cost."""
    Entry = tuple[tuple[str, ...], int, int]  # (path parts, size, mtime)

    def walk(folder: str, parts: tuple[str, ...], keep: Callable[[str], bool], into: list[Entry]) -> list[Entry]:
        try:
            listing = list(os.scandir(folder))
        except FileNotFoundError:
            return into
        for entry in listing:
            if entry.is_dir(follow_symlinks=False):
                walk(entry.path, (*parts, entry.name), keep, into)
            elif keep(entry.name) and ".tmp-" not in entry.name:
                stat = entry.stat()
                into.append(((*parts, entry.name), stat.st_size, stat.st_mtime_ns))
        return into

    def files(*paths: Path) -> list[Entry]:
        entries = []
        for path in paths:
            if path.exists():
                stat = path.stat()
                entries.append(((path.name,), stat.st_size, stat.st_mtime_ns))
        return entries

    own = files(run.config_path, run.metadata_path, run.losses_path)
    parts = {RUN_PART: walk(str(run.checkpoint_dir), (run.checkpoint_dir.name,), lambda n: n.startswith("checkpoint_"), own),
             TRACE_PART: files(run.trace_path)}
    with os.scandir(run.artifacts_dir) if run.artifacts_dir.is_dir() else nullcontext([]) as folders:
        for folder in folders:
            if folder.is_dir(follow_symlinks=False):
                parts[folder.name] = walk(folder.path, (), lambda n: n.endswith(".parquet"), [])
    where = str(run.path.resolve())
    digests = {}
    for part, entries in parts.items():
        digest = hashlib.sha1(where.encode())
        for names, size, mtime in sorted(entries):
            digest.update(f"{'/'.join(names)}:{size}:{mtime}\n".encode())
        digests[part] = digest.hexdigest()
    return json.dumps(digests, sort_keys=True)


def sql_fingerprint(models: list[SqlModel]) -> str:
    """The SQL project as built: every file's text and how its layer is kept."""
    layers = (SQL_DIR / "layers.toml").read_bytes()
    return hashlib.sha1(layers + b"".join(m.text.encode() for m in models)).hexdigest()


def schema_fingerprint() -> str:
    """The artifact tables and their types, and how replaced tables read as them: rows copied from
    the previous warehouse must match, and a changed reading must rebuild the views."""
    specs = sorted((table, repr(spec)) for table, spec in artifact_tables().items())
    return hashlib.sha1(repr((specs, sorted(replaced_tables().items()))).encode()).hexdigest()


def artifact_tables() -> dict[str, TableSpec]:
    """Every tidy table runs hold as Parquet: the analyzers', the interventions' and the shared
    trajectory bases'."""
    tables = {table: spec for analyzer in all_analyzers().values() for table, spec in analyzer.tables.items()}
    return {**tables, INTERVENTIONS: INTERVENTION_SPEC, TRAJECTORY_BASIS: TRAJECTORY_BASIS_SPEC}


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
    folder = run.artifacts_dir / table
    return sorted(str(f.resolve()) for f in folder.glob("*.parquet") if ".tmp-" not in f.name) if folder.exists() else []


def replaced_tables() -> dict[str, list[tuple[str, str]]]:
    """{table: [(a table an earlier analyzer version wrote instead, the select list reading its
    files as this table)]} (`Analyzer.replaces`)."""
    replaced: dict[str, list[tuple[str, str]]] = {}
    for analyzer in all_analyzers().values():
        for old, how in analyzer.replaces.items():
            replaced.setdefault(how.into, []).append((old, how.select))
    return replaced


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


def sql_list(items: list[str]) -> str:
    return "[" + ", ".join(sql_string(item) for item in items) + "]"


def in_list(names: set[str]) -> str:
    """('a', 'b') for `variant in ...`; ('') when empty, which matches no variant."""
    return "(" + ", ".join(sql_string(n) for n in sorted(names) or [""]) + ")"


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


RUN_SOURCES = ("src_runs", "src_checkpoints", "src_losses", "src_traced_probes", "catalog_schedules", "catalog_jobs",
               "catalog_probes", "src_probe_pairs")


def create_run_sources(con: duckdb.DuckDBPyConnection, runs: list[RunDir], catalog: Catalog) -> None:
    """The small sources, rebuilt whole every time: runs, checkpoints, losses, the catalog's tables."""
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
    con.register("probe_pairs_frame", probe_pairs(runs, named).to_arrow())
    con.execute("create table src_probe_pairs as select * from probe_pairs_frame order by probe, variant, a, b")


def probe_pairs(runs: list[RunDir], named: dict[str, str]) -> pl.DataFrame:
    """`src_probe_pairs`: every named probe resolved against every run (its p and split). A probe
    that does not fit a run (a pair beyond its p) selects nothing there."""
    frames = [pl.DataFrame(schema={"probe": pl.Utf8, "variant": pl.Utf8, "a": pl.Int16, "b": pl.Int16, "split": pl.Utf8})]
    for run in runs:
        config = run.read_config()
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


def update_sources(con: duckdb.DuckDBPyConnection, runs: list[RunDir], catalog: Catalog,
                   stale: dict[str, set[str]]) -> None:
    """Bring a copy of the previous warehouse up to date: the small sources rebuilt, and in each
    artifact table the rows of the variants `stale` in it (`changed_sources`: changed, new or gone)
    replaced by their runs' current Parquet; the other rows are left where they are."""
    for source in RUN_SOURCES:
        con.execute(f"drop table if exists {source}")
    create_run_sources(con, runs, catalog)
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


def insert_python_rows(con: duckdb.DuckDBPyConnection, model: SqlModel, variants: list[str]) -> None:
    """A Python model's rows for `variants`, appended to its table."""
    frame = model.function(con, variants)
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
                frame = model.function(con, None)
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


def build_index(results: str | Path = "results", db: str | Path = DEFAULT_DB, force: bool = False) -> IndexReport:
    """Index `results` into `db`, one indexer at a time (a second one waits for the lock)."""
    db = Path(db)
    if db.is_dir():
        raise TdwError(f"--db {db}: is a directory; name the warehouse file, e.g. {db / 'tdw.duckdb'}")
    if not Path(results).is_dir():  # before the warehouse's folder and lock are made: bad input changes nothing
        raise TdwError(f"--results {results}: no such directory")
    db.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(db, "index", "indexed", wait=True):
        return build_index_locked(results, db, force)


MAX_FREE_SHARE = 0.5  # of the warehouse file free (blocks), beyond which an index is a full build (which compacts)


def free_share(db: Path) -> float:
    """The share of the warehouse file's blocks that are free (1.0 if it cannot be read)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"attach {sql_string(str(db.resolve()))} as w (read_only)")
        free, total = con.execute("select free_blocks, total_blocks from pragma_database_size() "
                                  "where database_name = 'w'").fetchone()
    except duckdb.Error:
        return 1.0
    finally:
        con.close()
    return free / total if total else 0.0


def warehouse_problem(db: Path) -> str | None:
    """None when `db` opens and holds a tdw warehouse; otherwise what is wrong with it."""
    if not db.exists():
        return "missing"
    try:
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"attach {sql_string(str(db.resolve()))} as w (read_only)")
            con.execute("select count(*) from w.src_runs").fetchone()
            con.execute("select count(*) from w.variant_summary").fetchone()
        finally:
            con.close()
    except duckdb.Error as error:
        return f"unreadable ({str(error).splitlines()[0][:120]})"
    return None


def readable_runs(results: Path) -> tuple[list[RunDir], list[str]]:
    """The runs whose config and metadata read, and one line for each that does not (a corrupt
    run is left out of the warehouse, never the reason the others cannot be indexed)."""
    good, problems = [], []
    for run in find_runs(results):
        try:
            run.read_config()
            run.read_metadata()
            good.append(run)
        except TdwError as error:
            problems.append(f"skipped {error}")
    return good, problems


def verify_artifacts(run: RunDir, parts: set[str]) -> None:
    """Every artifact of a run about to be copied (its folders among the changed `parts`, or all)
    matches its recorded checksum (CorruptFileError names the file and the remedy); files written
    before checksums pass as unverified."""
    if not parts:
        return
    manifest = read_manifest(run.artifacts_dir)
    for path in all_artifact_files(run.artifacts_dir):
        if ALL_PARTS in parts or path.parent.name in parts:
            verify_artifact(path, run.artifacts_dir, manifest)


def build_index_locked(results: str | Path, db: Path, force: bool) -> IndexReport:
    started = time.perf_counter()
    results = Path(results)
    for stale_file in db.parent.glob(f"{atomic.TEMP_PREFIX}*{db.suffix}*"):  # a killed indexer's (we hold the lock)
        stale_file.unlink()
    runs, problems = readable_runs(results)
    names = [r.read_config().name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TdwError(f"{results}: variant name {duplicates[0]!r} is used by two runs; rename one")
    catalog = Catalog(catalog_path(db))
    models = read_models()
    current = {r.read_config().name: run_fingerprint(r) for r in runs}
    current["__sql__"] = sql_fingerprint(models)
    current["__schema__"] = schema_fingerprint()
    current["__catalog__"] = catalog_fingerprint(catalog)
    previous = catalog.run_fingerprints()
    previous.pop("__patched__", None)  # an older tdw counted patches to decide when to compact
    problem = warehouse_problem(db)
    if problem is None and previous == current and not force:
        return IndexReport(len(runs), [], time.perf_counter() - started, rebuilt=False, problems=problems)
    if problem not in (None, "missing"):
        problems.append(f"{db}: {problem}; rebuilt from the runs")
        previous = {}
    if problem is not None or force or previous.get("__schema__") != current["__schema__"]:
        previous = {}  # nothing of the previous warehouse is reused

    parts = changed_parts(previous, current)
    stale = changed_sources(parts, names)
    for run in runs:
        verify_artifacts(run, parts.get(run.read_config().name, set()))
    # the SQL and the tables' schemas as before: patch a copy of the warehouse in proportion to
    # what changed (copying the file is a fraction of re-inserting every unchanged row), unless
    # much of the file is free blocks (replaced rows' space, which DuckDB reuses but never gives
    # back: a run removed, a large table re-copied): then a full build, which compacts
    patchable = bool(previous) and previous.get("__sql__") == current["__sql__"] and free_share(db) <= MAX_FREE_SHARE

    refresh = models_to_refresh(models, stale) if patchable else {}

    def patch(con: duckdb.DuckDBPyConnection) -> None:
        update_sources(con, runs, catalog, stale)
        refresh_sql(con, models, refresh)

    def build(con: duckdb.DuckDBPyConnection, reuse: bool) -> None:
        if reuse:
            con.execute(f"attach {sql_string(str(db.resolve()))} as previous (read_only)")
        create_sources(con, runs, catalog, stale if reuse else None)
        if reuse:
            con.execute("detach previous")
        apply_sql(con, models)

    try:
        write_warehouse(db, patch if patchable else lambda con: build(con, bool(previous)), from_copy=patchable)
        patched = patchable
    except (TdwError, duckdb.Error) as error:
        # a damaged block of the previous warehouse, met while reusing it: build from the runs alone
        if not previous or "corrupt" not in str(error).lower():
            raise
        problems.append(f"{db}: corrupt ({str(error).splitlines()[0][-80:]}); rebuilt from the runs")
        for run in runs:
            verify_artifacts(run, {ALL_PARTS})
        write_warehouse(db, lambda con: build(con, False), from_copy=False)
        patched, refresh = False, {}
    record_fingerprints(catalog, runs, current)
    return IndexReport(len(runs), sorted(set(parts) & set(names)), time.perf_counter() - started, rebuilt=True,
                       problems=problems, parts={name: sorted(changed) for name, changed in parts.items()}, patched=patched,
                       refreshed={name: sorted(variants) for name, variants in refresh.items()})


ALL_PARTS = "*"  # a variant new to the warehouse, gone from it, or recorded by an older tdw: every part changed


def fingerprint_parts(recorded: str | None) -> dict[str, str] | None:
    """A run's fingerprint parts (`run_fingerprint`); None for none, or for a single digest (as an
    older tdw recorded it)."""
    try:
        parts = json.loads(recorded) if recorded is not None else None
    except ValueError:
        return None
    return parts if isinstance(parts, dict) else None


def changed_parts(previous: dict[str, str], current: dict[str, str]) -> dict[str, set[str]]:
    """{variant: the parts of it that changed (`RUN_PART`, artifact folders; `ALL_PARTS`)} for
    every variant new, changed or gone since the previous index (`previous` empty: all of them)."""
    changed: dict[str, set[str]] = {}
    for name in sorted({*previous, *current}):
        if name.startswith("__") or previous.get(name) == current.get(name):
            continue
        before, now = fingerprint_parts(previous.get(name)), fingerprint_parts(current.get(name))
        if before is None or now is None:
            changed[name] = {ALL_PARTS}
        else:
            changed[name] = {part for part in {*before, *now} if before.get(part) != now.get(part)}
    return changed


RUN_SOURCES_BY_RUN = ("src_runs", "src_checkpoints", "src_losses", "src_probe_pairs")  # from a run's own files
CATALOG_SOURCES = ("catalog_schedules", "catalog_jobs", "catalog_probes", "src_probe_pairs")  # from the catalog


def changed_sources(parts: dict[str, set[str]], names: list[str]) -> dict[str, set[str]]:
    """{source relation: the variants whose rows in it may have changed}: a run's own sources where
    its run files changed, an artifact table where a folder it reads changed (its own, or one it
    replaces), and the catalog's copies for every variant (rebuilt each time; read only by views).
    What `update_sources` re-copies and `refresh_sql` recomputes."""
    stale: dict[str, set[str]] = {source: set(names) for source in CATALOG_SOURCES}
    replaced = replaced_tables()
    for name, changed in parts.items():
        everything = ALL_PARTS in changed
        if everything or RUN_PART in changed:
            for source in RUN_SOURCES_BY_RUN:
                stale.setdefault(source, set()).add(name)
        if everything or TRACE_PART in changed:
            stale.setdefault("src_traced_probes", set()).add(name)
        for table in artifact_tables():
            folders = {table, *(old for old, _ in replaced.get(table, []))}
            if everything or changed & folders:
                stale.setdefault(f"src_{table}", set()).add(name)
    return stale


def catalog_fingerprint(catalog: Catalog) -> str:
    """What the warehouse copies from the catalog (schedules, probes, jobs): a probe named since the
    last index is indexed by the next one, though no run changed."""
    rows = [catalog.rows(NamedSchedule), catalog.probes(), catalog.jobs()]
    return hashlib.sha1(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()


def write_warehouse(db: Path, fill: Callable[[duckdb.DuckDBPyConnection], None], from_copy: bool) -> None:
    """The next warehouse, built beside `db` and swapped in atomically (readers of the old file keep
    their snapshot): a copy of `db` that `fill` patches, or a new file that `fill` fills."""
    with atomic.atomic_path(db) as tmp:
        if from_copy:
            shutil.copyfile(db, tmp)
        else:
            tmp.unlink()  # DuckDB wants to create the file itself
        con = duckdb.connect(str(tmp))
        try:
            fill(con)
            con.execute("checkpoint")
        finally:
            con.close()
        remove_wal(tmp)


def remove_wal(db_file: Path) -> None:
    """A cleanly closed DuckDB file has checkpointed its WAL; a leftover one must not follow the rename."""
    wal = Path(str(db_file) + ".wal")
    if wal.exists():
        wal.unlink()


def record_fingerprints(catalog: Catalog, runs: list[RunDir], current: dict[str, str]) -> None:
    catalog.record_runs(
        [{"variant": k, "family": "", "path": "", "status": "", "fingerprint": v} for k, v in current.items() if k.startswith("__")]
        + [{"variant": r.read_config().name, "family": r.read_config().family, "path": str(r.path.resolve()),
            "status": r.read_metadata().get("status", "unknown"), "fingerprint": current[r.read_config().name]} for r in runs]
    )
    catalog.dispose()
