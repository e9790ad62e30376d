"""Shared trajectory bases: one PCA of the parameter trajectories of several same-shape runs, so
their paths through weight space overlay in one coordinate system.

Each run's own PCA (the `trajectory` analyzer) has its own axes, so "variant A loops and variant
B does not" compares pictures drawn in different coordinates. A shared basis fits PC1..PC3 on every
checkpoint of every member run at once (centred on the pooled mean; a run with more checkpoints
weighs more) and projects each run onto it. The result is written into each member run,
`RUN/artifacts/trajectory_basis/<name>.parquet` (rows: epoch, basis, group, component, value),
with the members in its metadata, so `tdw index` picks it up like any artifact and
`trajectory_loops` measures each run's loop in every basis it belongs to.

`tdw analyze --trajectory-basis NAME --variants A,B,...` fits (or refits) it; without
`--variants`, the members it was last fitted on are used again (after runs grew, say).

Memory: the runs' flattened checkpoints are kept as float32 ([checkpoints, parameters], once for
"all" and once split by group); the PCA (`tdw.analysis.pca`, the trajectory analyzer's) is an
eigendecomposition of the small [N, N] Gram matrix accumulated in float64 blocks, so the p=113
published run (118 checkpoints x 227k parameters) costs ~220 MB per member and no SVD workspace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from tdw.analysis.analyzer import TableSpec
from tdw.analysis.artifacts import file_digest, read_manifest, tidy, write_manifest
from tdw.analysis.pca import pooled_pca
from tdw.analyzers.trajectory import N_COMPONENTS, group_points
from tdw.atomic import write_with
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.locks import exclusive
from tdw.run_dir import RunDir, find_runs

TABLE = "trajectory_basis"
SPEC = TableSpec({"basis": pl.Utf8, "group": pl.Utf8, "component": pl.Utf8})
MEMBERS_KEY = "tdw.basis_members"
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
RESERVED = {"own"}  # trajectory_loops' name for each run's own PCA


@dataclass(frozen=True)
class BasisResult:
    name: str
    members: list[str]
    explained: dict[str, list[float]]  # group -> variance ratio of PC1..PC3 over the pooled points
    files: list[Path]


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name) or name in RESERVED:
        raise TdwError(f"--trajectory-basis {name!r}: a name of letters, digits, '_', '.', '-' starting with a letter"
                       + (" (not 'own': that is each run's own PCA)" if name in RESERVED else ""))
    return name


def basis_members(results: str | Path, name: str) -> list[RunDir]:
    """The runs holding basis `name` (what it was last fitted on)."""
    return [run for run in find_runs(results) if (run.artifacts_dir / TABLE / f"{name}.parquet").exists()]


def resolve_members(results: str | Path, name: str, variants: list[str] | None) -> list[RunDir]:
    """The runs to fit on: `variants` (names or run directories), else the basis's last members.
    Every check is made here, before anything is read or written."""
    runs = find_runs(results)
    if variants is None:
        members = basis_members(results, name)
        if not members:
            raise TdwError(f"--trajectory-basis {name}: no run under {results} holds it yet; name its runs with --variants A,B,...")
        return members
    by_name = {run.variant: run for run in runs}
    chosen: list[RunDir] = []
    for item in variants:
        run = by_name.get(item) or RunDir(item)
        if not run.exists():
            known = ", ".join(sorted(by_name)[:8]) + (", ..." if len(by_name) > 8 else "")
            raise TdwError(f"--variants: no run named {item!r} under {results} (runs: {known or 'none'})")
        if run.variant not in {c.variant for c in chosen}:
            chosen.append(run)
    if len(chosen) < 2:
        raise TdwError("--variants: a shared basis needs at least two runs")
    return chosen


def parameter_shapes(run: RunDir) -> dict[str, tuple[int, ...]]:
    epochs = run.checkpoint_epochs()
    if not epochs:
        raise TdwError(f"{run.variant}: no checkpoints to fit a trajectory basis on")
    return {name: tuple(w.shape) for name, w in run.load_weights(epochs[0]).items()}


def check_same_shape(runs: list[RunDir]) -> None:
    first, first_family = parameter_shapes(runs[0]), runs[0].read_config().family
    for run in runs[1:]:
        family = run.read_config().family
        if family != first_family:
            raise TdwError(f"--variants: {run.variant} is family {family}, {runs[0].variant} is {first_family}; "
                           "a shared basis needs runs of one shape")
        shapes = parameter_shapes(run)
        differing = sorted(n for n in set(first) | set(shapes) if first.get(n) != shapes.get(n))
        if differing:
            n = differing[0]
            raise TdwError(f"--variants: {run.variant}'s {n} is {shapes.get(n)}, {runs[0].variant}'s is {first.get(n)}; "
                           "a shared basis needs runs of one shape (same p and dimensions)")


def fit_shared_basis(name: str, runs: list[RunDir], results: str | Path | None = None) -> BasisResult:
    """Fit basis `name` on `runs` and write each run's projection (atomically, listed in its
    manifest); runs under `results` that held the basis but are no longer members lose it."""
    check_name(name)
    check_same_shape(runs)
    family = get_family(runs[0].read_config().family)
    points = {}
    for run in runs:
        points[run.variant] = {group: block.float() for group, block in
                               group_points((run.load_weights(e) for e in run.checkpoint_epochs()), family).items()}
    groups = list(points[runs[0].variant])
    frames: dict[str, list[pl.DataFrame]] = {run.variant: [] for run in runs}
    explained = {}
    for group in groups:
        coords, ratio = pooled_pca([points[run.variant][group] for run in runs], N_COMPONENTS)
        explained[group] = ratio.tolist()
        for run, block in zip(runs, coords, strict=True):
            epochs = run.checkpoint_epochs()
            for c in range(block.shape[1]):
                frames[run.variant].append(pl.DataFrame({"epoch": epochs, "basis": name, "group": group,
                                                         "component": f"pc{c + 1}", "value": block[:, c].numpy()}))
    members = ",".join(run.variant for run in runs)
    files = []
    for run in runs:
        frame = tidy(pl.concat(frames[run.variant]), SPEC, run.variant, None)
        files.append(write_basis(run, name, frame, members))
    for stale in basis_members(results, name) if results is not None else []:
        if stale.variant not in {run.variant for run in runs}:
            remove_basis(stale, name)
    return BasisResult(name, [run.variant for run in runs], explained, files)


def write_basis(run: RunDir, name: str, frame: pl.DataFrame, members: str) -> Path:
    folder = run.artifacts_dir / TABLE
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.parquet"
    arrow = frame.to_arrow()
    arrow = arrow.replace_schema_metadata({"tdw.table": TABLE, MEMBERS_KEY: members})
    with exclusive(run.path, "analyze", "analyzed"):  # the manifest is the pipeline's too
        manifest = read_manifest(run.artifacts_dir)
        write_with(path, lambda tmp: pq.write_table(arrow, tmp, compression="zstd"))
        manifest[str(path.relative_to(run.artifacts_dir))] = file_digest(path)
        write_manifest(run.artifacts_dir, manifest)
    return path


def remove_basis(run: RunDir, name: str) -> None:
    path = run.artifacts_dir / TABLE / f"{name}.parquet"
    with exclusive(run.path, "analyze", "analyzed"):
        manifest = read_manifest(run.artifacts_dir)
        manifest.pop(str(path.relative_to(run.artifacts_dir)), None)
        path.unlink(missing_ok=True)
        write_manifest(run.artifacts_dir, manifest)
