"""What changed since the last index, so that an index does work in proportion to it.

A run's fingerprint is a digest per part of it (its own files, its traced probe, each artifact
folder), recorded in the catalog by every index; the SQL project, the tables' schemas and the
catalog's rows have one each. `changed_parts` compares two records and `changed_sources` turns
the differences into the source relations, and the variants in them, that a patch must re-copy
(`tdw.warehouse.sources.update_sources`); `tdw.warehouse.materialize.models_to_refresh` follows
them through the SQL models.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from tdw.run_dir import RunDir
from tdw.warehouse.catalog import Catalog, NamedSchedule
from tdw.warehouse.sources import artifact_tables, replaced_tables

RUN_PART = "run"  # a run's fingerprint part of its own files (config, metadata, losses, checkpoints)


TRACE_PART = "trace"  # ... and of its traced probe, which changes with analysis, not with the run


ALL_PARTS = "*"  # a variant new to the warehouse, gone from it, or recorded by an older tdw: every part changed


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


def schema_fingerprint() -> str:
    """The artifact tables and their types, and how replaced tables read as them: rows copied from
    the previous warehouse must match, and a changed reading must rebuild the views."""
    specs = sorted((table, repr(spec)) for table, spec in artifact_tables().items())
    return hashlib.sha1(repr((specs, sorted(replaced_tables().items()))).encode()).hexdigest()


def catalog_fingerprint(catalog: Catalog) -> str:
    """What the warehouse copies from the catalog (schedules, probes, jobs): a probe named since the
    last index is indexed by the next one, though no run changed."""
    rows = [catalog.rows(NamedSchedule), catalog.probes(), catalog.jobs()]
    return hashlib.sha1(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()


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
