"""Study bundles: a study's data in one folder a colleague can query with plain DuckDB, import into
their own results, or open in the dashboard.

    OUT/
      manifest.json          format, tdw and analyzer versions, git sha, every run's config, the
                             definition of every table (its SQL header), row counts, and the SHA-256
                             of every file below
      bundle.duckdb          views only: `select * from read_parquet('tables/<t>.parquet')`
      tables/<t>.parquet     the chosen warehouse relations, one file each
      runs/<family>/<variant>/   each run as tdw wrote it (config, metadata, losses, artifacts;
                             checkpoints with --with-checkpoints): what `import` and `serve --bundle`
                             index, so a bundle reproduces the warehouse rather than a copy of it

DuckDB resolves a view's relative path against the working directory or `file_search_path` (no
table function takes a computed path), so from elsewhere a reader sets `file_search_path` to the
bundle folder; the bundle's README.txt says how. bundle.duckdb is not checksummed and never read by
tdw: opening it read-write in the DuckDB shell may rewrite its bytes, and import and serve rebuild
everything from the runs and check those.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tdw.analysis.artifacts import artifact_files, stored_metadata
from tdw.errors import TdwError
from tdw.run_dir import RunDir, find_runs
from tdw.versions import git_sha, tdw_version
from tdw.warehouse.export import refuse_overwriting_inputs
from tdw.warehouse.query import open_readonly, sql_string
from tdw.warehouse.sql_models import read_models

BUNDLE_FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "bundle.duckdb"
UNCHECKED = {MANIFEST, DATABASE, DATABASE + ".wal", "README.txt"}
RUN_LEVEL_STAGING = ("variants", "losses", "checkpoints")  # staging tables a default bundle carries


@dataclass(frozen=True)
class BundleReport:
    path: Path
    variants: list[str]
    tables: dict[str, int]  # table -> rows
    bytes: int

    def summary(self) -> str:
        return (f"wrote {self.path}: {len(self.variants)} variants, {len(self.tables)} tables "
                f"({sum(self.tables.values()):,} rows), {self.bytes / 1e6:.1f} MB")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def definition(model) -> str:
    """A table's definition as its file states it: the SQL header comment, or a Python model's docstring."""
    text = model.path.read_text()
    if model.path.suffix == ".py":
        import ast

        return (ast.get_docstring(ast.parse(text)) or "").strip()
    lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return "\n".join(lines)


def default_tables() -> list[str]:
    """Everything above staging (intermediate, events, marts, summaries) and the run-level staging
    tables; the per-input and per-neuron maps (millions of rows) only when asked for."""
    return [m.name for m in read_models() if not m.layer.startswith("10_") or m.name in RUN_LEVEL_STAGING]


def choose_tables(tables: list[str] | None) -> list[str]:
    known = [m.name for m in read_models()]
    if tables is None:
        return default_tables()
    if tables == ["all"]:
        return known
    for table in tables:
        if table not in known:
            raise TdwError(f"--tables {table}: not a warehouse table; known: {', '.join(sorted(known))}, or all")
    return list(dict.fromkeys(tables))


def run_dirs(db: Path, variants: list[str] | None) -> dict[str, RunDir]:
    """The warehouse's runs by variant (the runs it was indexed from), `variants` only if given."""
    con = open_readonly(db)
    try:
        rows = con.execute("select variant, path from src_runs order by variant").fetchall()
    finally:
        con.close()
    runs = {variant: RunDir(path) for variant, path in rows}
    if variants is None:
        return runs
    for variant in variants:
        if variant not in runs:
            raise TdwError(f"--variants {variant}: not in the warehouse; known: {', '.join(runs)}")
    return {v: runs[v] for v in dict.fromkeys(variants)}


def analyzer_versions(run: RunDir) -> dict[str, dict[str, str]]:
    """{artifact table: {analyzer, version}} as recorded in the run's artifacts."""
    seen: dict[str, dict[str, str]] = {}
    for path in artifact_files(run.artifacts_dir):
        table = path.relative_to(run.artifacts_dir).parts[0]
        if table not in seen:
            meta = stored_metadata(path) or {}
            seen[table] = {"analyzer": meta.get("tdw.analyzer", ""), "version": meta.get("tdw.analyzer_version", "")}
    return seen


def copy_run(run: RunDir, target: Path, with_checkpoints: bool) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n.startswith(".tmp-")}
        if not with_checkpoints and Path(folder) == run.path:
            skipped |= {run.checkpoint_dir.name}
        return skipped

    shutil.copytree(run.path, target, ignore=ignore)


def readme(tables: list[str]) -> str:
    first = tables[0] if tables else "variants"
    return (
        "A tdw study bundle. Query it with plain DuckDB, no tdw needed:\n\n"
        f"  cd THIS_FOLDER && duckdb bundle.duckdb -c 'select * from {first}'\n\n"
        "or from any working directory (DuckDB reads a view's relative path from file_search_path):\n\n"
        "  import duckdb\n"
        "  con = duckdb.connect('PATH/bundle.duckdb', read_only=True, config={'file_search_path': 'PATH'})\n\n"
        "manifest.json holds each table's definition, every run's config, the versions that made the data,\n"
        "and the SHA-256 of every file. With tdw: `tdw bundle import THIS_FOLDER` or `tdw serve --bundle THIS_FOLDER`.\n"
    )


def export_bundle(out: str | Path, db: str | Path, variants: list[str] | None = None, tables: list[str] | None = None,
                  with_checkpoints: bool = False, force: bool = False) -> BundleReport:
    """Write the bundle to `out`, built in a temp folder beside it and renamed into place."""
    out, db = Path(out), Path(db)
    if out.exists() and not force:
        raise TdwError(f"{out}: exists; pass --force to replace it")
    if out.exists() and not (out / MANIFEST).is_file():
        raise TdwError(f"{out}: exists and is not a bundle; --force replaces only a bundle")
    if out.is_file():
        raise TdwError(f"{out}: is a file")
    refuse_overwriting_inputs(out / MANIFEST, db)
    chosen = choose_tables(tables)
    runs = run_dirs(db, variants)
    if not runs:
        raise TdwError(f"--db {db}: the warehouse has no variants to bundle")
    names = list(runs)
    models = {m.name: m for m in read_models()}

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".tmp-bundle-{uuid.uuid4().hex[:8]}"
    try:
        (tmp / "tables").mkdir(parents=True)
        rows = write_tables(db, tmp, chosen, names)
        configs, versions = {}, {}
        for variant, run in runs.items():
            config = run.read_config()
            copy_run(run, tmp / "runs" / config.family / variant, with_checkpoints)
            configs[variant] = {"family": config.family, "path": f"runs/{config.family}/{variant}", "config": config.to_dict(),
                                "metadata": run.read_metadata()}
            versions[variant] = analyzer_versions(run)
        write_database(tmp, chosen)
        (tmp / "README.txt").write_text(readme(chosen))
        files = {str(p.relative_to(tmp)): sha256(p) for p in sorted(tmp.rglob("*"))
                 if p.is_file() and str(p.relative_to(tmp)) not in UNCHECKED}
        manifest = {
            "format": BUNDLE_FORMAT,
            "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "tdw_version": tdw_version(), "git_sha": git_sha(),
            "with_checkpoints": with_checkpoints,
            "complete": sorted(chosen) == sorted(models),
            "variants": names,
            "runs": configs,
            "analyzer_versions": versions,
            "tables": {t: {"file": f"tables/{t}.parquet", "rows": rows[t], "layer": models[t].layer,
                           "grain": list(models[t].grain), "definition": definition(models[t])} for t in chosen},
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str) + "\n")
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
        size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        replace_folder(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return BundleReport(out, names, rows, size)


def write_tables(db: Path, folder: Path, tables: list[str], variants: list[str]) -> dict[str, int]:
    """COPY each table (the chosen variants' rows) to folder/tables/<t>.parquet; rows per table.
    Our own statements over a read-only attach: the user-SQL sandbox forbids COPY, rightly."""
    con = duckdb.connect(":memory:")
    rows: dict[str, int] = {}
    try:
        con.execute(f"attach {sql_string(str(db.resolve()))} as warehouse (read_only)")
        con.execute("use warehouse")
        con.execute("set parquet_metadata_cache = true")
        for table in tables:
            columns = {r[0] for r in con.execute(f"describe {table}").fetchall()}
            where = "where variant in (select unnest($variants))" if "variant" in columns else ""
            target = sql_string(str(folder / "tables" / f"{table}.parquet"))
            con.execute(f"copy (select * from {table} {where}) to {target} (format parquet, compression zstd)",
                        {"variants": variants} if where else None)
            rows[table] = con.execute(f"select count(*) from read_parquet({target})").fetchone()[0]
    except duckdb.Error as error:
        raise TdwError(f"--db {db}: cannot read it ({str(error).splitlines()[0]}); rebuild it with `tdw index --force`") from None
    finally:
        con.close()
    return rows


def write_database(folder: Path, tables: list[str]) -> None:
    con = duckdb.connect(str(folder / DATABASE))
    try:
        con.execute(f"set file_search_path = {sql_string(str(folder))}")  # the views bind their relative paths
        for table in tables:
            con.execute(f"create view {table} as select * from read_parquet({sql_string(f'tables/{table}.parquet')})")
        con.execute("checkpoint")
    finally:
        con.close()
    wal = folder / (DATABASE + ".wal")
    if wal.exists():
        wal.unlink()


def replace_folder(new: Path, target: Path) -> None:
    """Rename `new` to `target`; an existing `target` is moved aside first and removed after."""
    old = None
    if target.exists():
        old = target.parent / f".tmp-old-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old)


def read_bundle(folder: str | Path) -> dict:
    """The bundle's manifest, after checking every file against it: a missing, changed or extra
    file is one line naming it (a corrupt or tampered bundle is never read)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TdwError(f"{folder}: no such bundle folder")
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise TdwError(f"{folder}: not a bundle (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TdwError(f"{folder / MANIFEST}: unreadable ({str(error).splitlines()[0]})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT or not isinstance(manifest.get("files"), dict):
        raise TdwError(f"{folder / MANIFEST}: not a tdw bundle manifest of format {BUNDLE_FORMAT}")
    files: dict[str, str] = manifest["files"]
    for name, digest in files.items():
        path = folder / name
        if not path.resolve().is_relative_to(folder.resolve()):
            raise TdwError(f"{folder / MANIFEST}: names a file outside the bundle ({name})")
        if not path.is_file():
            raise TdwError(f"{folder}: {name} is missing (the bundle is incomplete)")
        if sha256(path) != digest:
            raise TdwError(f"{folder}: {name} does not match its checksum (the bundle is corrupt or was changed)")
    for path in folder.rglob("*"):
        name = str(path.relative_to(folder))
        if path.is_file() and name not in files and name not in UNCHECKED:
            raise TdwError(f"{folder}: {name} is not in the manifest (the bundle was changed)")
    for variant, run in manifest.get("runs", {}).items():
        if not (folder / run["path"] / "config.json").is_file():
            raise TdwError(f"{folder}: run {variant} has no config.json")
    return manifest


def import_bundle(folder: str | Path, results: str | Path, db: str | Path):
    """Copy the bundle's runs into `results` and re-index `db`. A variant already there with the
    same config is left as it is; one with a different config refuses the whole import."""
    from tdw.config import VariantConfig, config_differences
    from tdw.warehouse.indexer import build_index

    folder, results = Path(folder), Path(results)
    manifest = read_bundle(folder)
    existing = {r.read_config().name: r for r in find_runs(results)}
    todo = []
    for variant, run in manifest["runs"].items():
        incoming = VariantConfig.from_dict(json.loads((folder / run["path"] / "config.json").read_text()))
        if variant in existing:
            here = existing[variant].read_config()
            if here.to_dict() != incoming.to_dict():
                differs = config_differences(here, incoming)
                raise TdwError(f"{folder}: variant {variant} is already in {results} with a different config "
                               f"({', '.join(differs[:3]) or 'its name'}); rename or remove one of them first")
            continue
        todo.append((variant, folder / run["path"], results / run["family"] / variant))
    for _, _, target in todo:
        if target.exists():
            raise TdwError(f"{target}: exists and is not the run of that name; move it away first")
    for _, source, target in todo:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".tmp-import-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(source, tmp)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    report = build_index(results, db)
    return [v for v, _, _ in todo], report


def index_bundle(folder: str | Path, into: str | Path) -> Path:
    """A warehouse over the bundle's runs, built in `into` (the bundle itself is only read):
    what `tdw serve --bundle` opens."""
    from tdw.warehouse.indexer import build_index

    folder = Path(folder)
    read_bundle(folder)
    db = Path(into) / "tdw.duckdb"
    build_index(folder / "runs", db)
    return db
