"""`tdw index`: build the warehouse aside, then swap it in atomically.

One index is: what changed since the last one (`tdw.warehouse.changes`: nothing means nothing is
done), then either a copy of the previous warehouse patched where it changed (its changed source
relations re-copied, `tdw.warehouse.sources.update_sources`, and the SQL models that read them
recomputed, `tdw.warehouse.materialize.refresh_sql`), or a full build (every source, then every
model in dependency order), which also compacts. Layers declared `materialized = "table"` in
`sql/layers.toml` become tables: over 3,300 files a view pays for opening every file on each
query, a table does not (benchmarks/warehouse_scale.py). The new file is built under a temp name
in the same folder and renamed over the old one, so a reader holding the old file keeps reading
it undisturbed and a new reader gets the complete new one; a killed indexer leaves the old
warehouse intact.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from tdw import atomic
from tdw.analysis.artifacts import artifact_files as all_artifact_files
from tdw.analysis.artifacts import read_manifest, verify_artifact
from tdw.errors import TdwError
from tdw.locks import exclusive
from tdw.run_dir import RunDir, find_runs
from tdw.verify import verify_losses
from tdw.warehouse.catalog import Catalog, catalog_path, refuse_non_warehouse
from tdw.warehouse.changes import (
    ALL_PARTS,
    RUN_PART,
    catalog_fingerprint,
    changed_parts,
    changed_sources,
    run_fingerprint,
    schema_fingerprint,
)
from tdw.warehouse.materialize import apply_sql, imported_ahead, models_to_refresh, refresh_sql
from tdw.warehouse.query import sql_string
from tdw.warehouse.sources import create_sources, update_sources
from tdw.warehouse.sql_models import read_models, sql_fingerprint

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


def build_index(results: str | Path = "results", db: str | Path = DEFAULT_DB, force: bool = False) -> IndexReport:
    """Index `results` into `db`, one indexer at a time (a second one waits for the lock)."""
    db = Path(db)
    if db.is_dir():
        raise TdwError(f"--db {db}: is a directory; name the warehouse file, e.g. {db / 'tdw.duckdb'}")
    if not Path(results).is_dir():  # before the warehouse's folder and lock are made: bad input changes nothing
        raise TdwError(f"--results {results}: no such directory")
    refuse_non_warehouse(db)  # a damaged warehouse is rebuilt; a file that is none is never overwritten
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


def runs_with_corrupt_losses(runs: list[RunDir], parts: dict[str, set[str]]) -> dict[str, str]:
    """{variant: one line} for the runs whose own files changed since the last index (`parts`)
    and whose losses file does not verify (`tdw.verify.verify_losses`: it parses, and its values
    have the digest it records). Such a run is left out of the warehouse, as one whose config does
    not read: its remedy is re-training it, never a reason the other runs cannot be indexed."""
    skipped = {}
    for run in runs:
        name = run.read_config().name
        if {RUN_PART, ALL_PARTS} & parts.get(name, set()) and run.losses_path.exists():
            try:
                verify_losses(run.losses_path)
            except TdwError as error:
                skipped[name] = f"skipped {error}"
    return skipped


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
    # a killed indexer's files, named as `atomic.atomic_path` names them (we hold the lock); `*{suffix}*`
    # covers their .wal, and is no valid pattern for a name without a suffix
    for stale_file in db.parent.glob(f"{atomic.TEMP_PREFIX}*{db.suffix}*" if db.suffix else f"{atomic.TEMP_PREFIX}*"):
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
    skipped = runs_with_corrupt_losses(runs, changed_parts({} if force else previous, current))
    if skipped:
        problems += skipped.values()
        runs = [run for run in runs if run.read_config().name not in skipped]
        names = [name for name in names if name not in skipped]
        current = {name: fingerprint for name, fingerprint in current.items() if name not in skipped}
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

    # the Python models this index computes rows of (not those it only deletes a run's rows from)
    computed = [m for m in models if m.is_python and (not patchable or refresh.get(m.name, set()) & set(names))]
    try:
        with imported_ahead(computed):
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
