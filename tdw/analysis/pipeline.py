"""The analysis pipeline: each checkpoint loaded once, at most one forward pass, shared by all.

For every checkpoint it finds which (analyzer, table) artifacts are missing or stale, loads the
weights once, runs one `run_with_cache` over the full input grid only if some pending analyzer
needs activations (caching only the hooks they declare, by role: the family names the hook, and
computing only the answer's readout: `Family.readout_forward`; over the traced inputs alone when
only the per-input trace analyzers need it), and hands the same context to each. An analyzer
needing a role the family lacks is skipped and reported. Run-level analyzers run last over all
checkpoints. A traced artifact stale only because the run's traced probe changed is extended
rather than recomputed (`Task`).

An artifact is stale when its analyzer has a newer version or when what it depended on
(`Analyzer.depends_on`: its own checkpoint, also the final one, also the run's key frequencies, or
every checkpoint) is not what the run has now: each artifact records a fingerprint of those
checkpoints' digests (and of the keys). So analyzing a run while it trains, or after it was
extended, recomputes the key frequencies and the trajectory PCA, and the progress measures
(which read the keys) only where the keys changed; the report says what was invalidated and
why. Every file is written atomically, so a killed run resumes where it stopped.

With `workers` > 1 the checkpoints are analyzed in that many spawned processes, each with its
share of the torch threads. Why: a checkpoint's products are small (3,830 to 12,769 rows at
p=113) and split poorly over many threads, while checkpoints are independent, so processes scale
with the cores where one process's threads do not. Each worker loads the run once (data, model,
the run's facts) and writes its checkpoints' artifacts itself, distinct files, atomically; this
process, which holds the run's analyze lock, records them in the manifest as each checkpoint
finishes, so a kill loses at most the checkpoints in flight (an artifact the manifest does not
list is recomputed).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl
import torch
from tqdm.auto import tqdm

from tdw.analysis.analyzer import Analyzer
from tdw.analysis.artifacts import (
    DEPENDS_KEY,
    SETTINGS_KEY,
    TRACE_CHANGED,
    TRACE_KEY,
    artifact_path,
    file_digest,
    read_manifest,
    settings_text,
    staleness,
    stored_metadata,
    tidy,
    write_artifact,
    write_manifest,
)
from tdw.analysis.context import CheckpointContext, RunContext, RunFacts
from tdw.analyzers import get_analyzers
from tdw.atomic import sweep_temp_files
from tdw.child_processes import set_up_compute_worker, spawned_pool
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.families.base import TaskData, hook_names
from tdw.locks import exclusive
from tdw.run_dir import RunDir
from tdw.training.device import resolve_device

AUTO = "auto"
MAX_AUTO_WORKERS = 2  # what was measured (2 cores); each p=113 worker peaks near 1.8 GB: more is asked for
CHECKPOINTS_PER_WORKER = 16  # fewer, and a worker's start (imports, the run's data, ~5 s) is not repaid


def auto_workers(checkpoints: int, device: torch.device | None = None) -> int:
    """How many processes `tdw analyze` uses unless told: on a CPU one per torch thread, at most
    MAX_AUTO_WORKERS, and one per CHECKPOINTS_PER_WORKER pending checkpoints. Why processes when
    there are checkpoints enough: on 2 cores, two one-thread workers analyzed the published run
    1.26x and the demo run 1.13-1.24x faster than one two-thread process. On a GPU one: processes
    sharing one device were never measured."""
    if device is not None and device.type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), MAX_AUTO_WORKERS, checkpoints // CHECKPOINTS_PER_WORKER))


@dataclass
class AnalysisReport:
    written: list[tuple[str, int | None]] = field(default_factory=list)  # (table, epoch)
    skipped: int = 0
    invalidated: Counter = field(default_factory=Counter)  # (table, reason) -> artifacts
    # (table, inputs kept, inputs computed) -> artifacts extended to the run's changed traced probe (Task)
    extended: Counter = field(default_factory=Counter)
    bytes_written: int = 0
    forward_passes: int = 0
    checkpoint_loads: int = 0
    not_applicable: dict[str, str] = field(default_factory=dict)  # analyzer -> why it does not apply

    def summary(self) -> str:
        lines = [f"skipped {name}: {why}" for name, why in sorted(self.not_applicable.items())]
        lines += [f"invalidated {n} {table} artifact{'s' if n > 1 else ''} ({reason})"
                 for (table, reason), n in sorted(self.invalidated.items())]
        lines += [f"extended {n} {table} artifact{'s' if n > 1 else ''} to the run's traced probe ({kept:,} input"
                  f"{'s' if kept != 1 else ''} kept, {new:,} computed)" for (table, kept, new), n in sorted(self.extended.items())]
        if not self.written:
            lines.append(f"nothing to do: all {self.skipped} artifacts are up to date")
        else:
            lines.append(
                f"wrote {len(self.written)} artifacts ({self.bytes_written / 1e6:.1f} MB) from "
                f"{self.checkpoint_loads} checkpoint loads and {self.forward_passes} forward passes; "
                f"{self.skipped} already up to date"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class Task:
    """One analyzer to run on one checkpoint (or on the run). `covered`: for a traced analyzer
    whose artifact is sound but for the inputs it covers (the run's traced probe changed), the
    probe it covers; the artifact is then extended, not recomputed: its rows of inputs still
    traced are kept and only the inputs new to it are computed, on a forward pass over those
    inputs alone when nothing else of the checkpoint needs the grid. Why: "Trace this input" on the
    published run added one input to 1,027 traced ones and recomputed all 1,028 on a full-grid
    forward of each of its 118 checkpoints."""

    analyzer: Analyzer
    covered: str | None = None


def dependency_fingerprint(analyzer: Analyzer, epoch: int | None, facts: RunFacts) -> str:
    """What an artifact's values depend on, as a short digest of the checkpoints involved (and of
    the run's key frequencies, for what reads them: found here, once per pipeline run)."""
    parts = [] if epoch is None else [f"checkpoint {epoch} {facts.digest(epoch)}"]
    if analyzer.depends_on == "final_checkpoint":
        parts.append(f"final {facts.final_epoch} {facts.digest(facts.final_epoch)}")
    elif analyzer.depends_on == "key_frequencies":
        parts.append("keys " + ",".join(map(str, facts.key_frequencies)))
    elif analyzer.depends_on == "checkpoints":
        parts.append("all " + ",".join(f"{e}:{facts.digest(e)}" for e in facts.epochs))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


class AnalysisPipeline:
    def __init__(self, run_dir: str | Path, device: str = "cpu") -> None:
        self.run_dir = RunDir(run_dir)
        self.config = self.run_dir.read_config()
        self.family = get_family(self.config.family)
        self.device = resolve_device(device)

    def run(
        self,
        analyzers: list[str] | None = None,
        epochs: list[int] | None = None,
        force: bool = False,
        progress: bool = True,
        workers: int | str = 1,
    ) -> AnalysisReport:
        """Analyze what is missing or stale, holding the run's analyze lock (a second `tdw analyze`
        of the same run is refused in one line; training beside it is fine); the checkpoints in
        `workers` processes when more than one ("auto": `auto_workers`)."""
        if workers != AUTO and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise TdwError(f"--workers {workers}: must be an integer >= 1 or {AUTO}")
        chosen = get_analyzers(analyzers)
        report = AnalysisReport()
        for analyzer in list(chosen):
            missing = analyzer.missing_hooks(self.family)
            if missing:  # e.g. attention maps of a family without attention
                chosen.remove(analyzer)
                report.not_applicable[analyzer.name] = (f"family {self.family.name} has no {' or '.join(missing)} "
                                                        f"activations (it has: {', '.join(self.family.hooks) or 'none'})")
        with exclusive(self.run_dir.path, "analyze", "analyzed"):
            return self._run(chosen, epochs, force, progress, report, workers)

    def _run(self, chosen: list[Analyzer], epochs: list[int] | None, force: bool, progress: bool,
             report: AnalysisReport, workers: int | str) -> AnalysisReport:
        available = self.run_dir.checkpoint_epochs()
        if not available:
            raise TdwError(f"{self.run_dir.path}: no checkpoints to analyze")
        if epochs is not None:
            missing = sorted(set(epochs) - set(available))
            if missing:
                raise TdwError(f"--epochs: no checkpoint at epoch {missing[0]} (run has {len(available)} checkpoints, {available[0]}..{available[-1]})")
            targets = sorted(set(epochs))
        else:
            targets = available
        if self.run_dir.artifacts_dir.exists():
            sweep_temp_files(self.run_dir.artifacts_dir)

        facts = RunFacts(self.run_dir, self.config, available, self.family)
        self.manifest = read_manifest(self.run_dir.artifacts_dir)
        per_checkpoint = [a for a in chosen if a.requires != "run"]
        run_level = [a for a in chosen if a.requires == "run"]
        plan = {epoch: self._pending(per_checkpoint, epoch, facts, force, report) for epoch in targets}
        run_plan = self._pending(run_level, None, facts, force, report)
        total = sum(len(p) for p in plan.values()) + len(run_plan)
        bar = tqdm(total=total, desc=f"analyze {self.run_dir.variant}", unit="job", disable=not progress or total == 0, dynamic_ncols=True)

        checkpoints = {epoch: pending for epoch, pending in plan.items() if pending}
        if workers == AUTO:
            workers = auto_workers(round(sum(self._grid_share(tasks, facts) for tasks in checkpoints.values())), self.device)
        if workers > 1 and len(checkpoints) > 1:
            self._analyze_in_processes(checkpoints, facts, min(workers, len(checkpoints)), report, bar)
        elif checkpoints:
            data = self.family.task_data(self.config).to(self.device)
            model = self.family.build_model(self.config).to(self.device)
            for epoch, pending in checkpoints.items():
                def announce(task: Task, epoch: int = epoch) -> None:
                    bar.set_postfix(epoch=str(epoch), analyzer=task.analyzer.name, refresh=False)  # str: tqdm writes 20000 as 2e+4
                self.analyze_checkpoint(facts, epoch, pending, data, model, report, announce, bar.update)
                write_manifest(self.run_dir.artifacts_dir, self.manifest)
        if run_plan:
            run_ctx = RunContext(facts, self.family)
            for task in run_plan:
                bar.set_postfix(analyzer=task.analyzer.name, refresh=False)
                with torch.no_grad():
                    frames = task.analyzer.analyze_run(run_ctx)
                self._write(task.analyzer, frames, None, facts, report)
                bar.update(1)
            write_manifest(self.run_dir.artifacts_dir, self.manifest)
        bar.close()
        self._retire_replaced_artifacts(chosen)
        return report

    def analyze_checkpoint(self, facts: RunFacts, epoch: int, tasks: list[Task], data: TaskData,
                           model: torch.nn.Module, report: AnalysisReport,
                           before: Callable[[Task], object] | None = None,
                           after: Callable[[int], object] | None = None) -> None:
        """Load checkpoint `epoch`, run the shared forward if needed, then each task's analyzer,
        writing its artifacts (an extended one with the rows it keeps) and recording them in
        `self.manifest` (`before(task)` and `after(1)` around each: the progress bar)."""
        if all(task.covered is not None and not len(facts.inputs_to_trace(task.covered)) for task in tasks):
            ctx = None  # every task keeps what it has (a probe cut down): the checkpoint is not even loaded
        else:
            ctx = self._context(facts, epoch, tasks, data, model, report)
        for task in tasks:
            if before is not None:
                before(task)
            rows = None if task.covered is None else facts.inputs_to_trace(task.covered)
            if rows is not None and len(rows) == 0:  # every input it traces now is kept: nothing to compute
                frames = None
            else:
                with torch.no_grad():
                    frames = task.analyzer.analyze(ctx if rows is None else replace(ctx, trace_rows=rows))
            kept = None if task.covered is None else self._still_traced(task.analyzer, epoch, facts)
            self._write(task.analyzer, frames, epoch, facts, report, kept)
            if after is not None:
                after(1)

    def _analyze_in_processes(self, checkpoints: dict[int, list[Task]], facts: RunFacts, workers: int,
                              report: AnalysisReport, bar) -> None:
        threads = max(1, torch.get_num_threads() // workers)
        # the run's key frequencies, found once in planning (`dependency_fingerprint`) and handed to
        # the workers where their tasks read them (a run without an embedding gap asks its neurons:
        # a forward pass over the grid each worker would otherwise repeat)
        reads_keys = any(task.analyzer.depends_on == "key_frequencies" for tasks in checkpoints.values() for task in tasks)
        found_keys = facts.found_key_frequencies if reads_keys else None
        with spawned_pool(workers, start_checkpoint_worker,
                          (str(self.run_dir.path), str(self.device), threads, facts.epochs, found_keys)) as pool:
            futures = {pool.submit(analyze_checkpoint_in_worker, epoch, [(t.analyzer.name, t.covered) for t in tasks])
                       for epoch, tasks in checkpoints.items()}
            while futures:
                # each checkpoint as it finishes: the bar moves with the workers and the manifest
                # keeps it (2 ms a write at the published run's 1,655 artifacts). FIRST_EXCEPTION
                # waited for all of them unless one failed: a bar at 0 for 94 s of the published
                # run's 99, and a killed analysis that kept nothing
                done, futures = wait(futures, return_when=FIRST_COMPLETED)
                failures = [future.exception() for future in done if future.exception() is not None]
                for result in (future.result() for future in done if future.exception() is None):
                    self.manifest.update(result.manifest)
                    report.written += result.report.written
                    report.bytes_written += result.report.bytes_written
                    report.checkpoint_loads += result.report.checkpoint_loads
                    report.forward_passes += result.report.forward_passes
                    bar.set_postfix(epoch=str(result.epoch), refresh=False)
                    bar.update(len(checkpoints[result.epoch]))
                write_manifest(self.run_dir.artifacts_dir, self.manifest)  # what finished is kept
                if failures:
                    for future in futures:
                        future.cancel()
                    raise failures[0]

    # --- internals -----------------------------------------------------------------------
    def _retire_replaced_artifacts(self, chosen: list[Analyzer]) -> None:
        """Delete each file of a table the chosen analyzers replace (`Analyzer.replaces`) whose
        epoch the new table now has a file for (listed in the manifest), manifest entries first,
        and the old table's folder once empty. Until then `tdw index` reads the old file in the
        new table's place, so analyzing some epochs (`--epochs`) loses no other epoch's rows, and
        a kill in between leaves an old file that the new one already shadows."""
        artifacts = self.run_dir.artifacts_dir
        retired = [old_file for analyzer in chosen for old, how in analyzer.replaces.items()
                   if (artifacts / old).is_dir()
                   for old_file in sorted((artifacts / old).glob("*.parquet"))
                   if self._key(artifacts / how.into / old_file.name) in self.manifest]
        if not retired:
            return
        for old_file in retired:
            self.manifest.pop(self._key(old_file), None)
        write_manifest(artifacts, self.manifest)
        for old_file in retired:
            old_file.unlink()
        for folder in {old_file.parent for old_file in retired}:
            if not any(folder.iterdir()):
                folder.rmdir()

    def _pending(self, analyzers: list[Analyzer], epoch: int | None, facts: RunFacts, force: bool,
                 report: AnalysisReport) -> list[Task]:
        pending = []
        for analyzer in analyzers:
            depends = dependency_fingerprint(analyzer, epoch, facts)
            paths = {t: artifact_path(self.run_dir.artifacts_dir, t, epoch) for t in analyzer.tables}
            trace = facts.trace.spec if analyzer.traced else None
            settings = settings_text(facts.settings(analyzer.name))
            reasons = {t: staleness(path, analyzer, depends, self.manifest.get(self._key(path)), trace, settings)
                       for t, path in paths.items()}
            if not force and not any(reasons.values()):
                report.skipped += len(reasons)
                continue
            covered = self._covered(paths.values(), facts) if not force and set(reasons.values()) == {TRACE_CHANGED} else None
            task = Task(analyzer, covered)
            pending.append(task)
            for table, reason in reasons.items():
                if covered is not None:
                    new = len(facts.inputs_to_trace(covered))
                    report.extended[(table, len(facts.traced_rows) - new, new)] += 1
                elif reason not in (None, "missing"):
                    report.invalidated[(table, reason)] += 1
        return pending

    @staticmethod
    def _covered(paths, facts: RunFacts) -> str | None:
        """The one probe an analyzer's artifacts cover; None (recomputed whole) if they differ or
        it no longer resolves against the run."""
        covered = {(stored_metadata(path) or {}).get(TRACE_KEY) for path in paths}
        spec = covered.pop() if len(covered) == 1 else None
        if spec is None:
            return None
        try:
            facts.probe_rows(spec)
        except TdwError:
            return None
        return spec

    def _grid_share(self, tasks: list[Task], facts: RunFacts) -> float:
        """A checkpoint's work as a share of a full-grid one: 1 unless only traced analyzers run
        on it (then the share of the grid they compute), so that a few inputs added to a trace
        start no worker processes (`auto_workers`), whose start would cost more than the work."""
        if any(not task.analyzer.traced for task in tasks):
            return 1.0
        rows = [facts.inputs_to_trace(task.covered) for task in tasks]
        return len(torch.unique(torch.cat(rows))) / self.config.p ** 2

    def _still_traced(self, analyzer: Analyzer, epoch: int, facts: RunFacts) -> dict[str, pl.DataFrame]:
        """An extended artifact's rows of inputs the run still traces, by table."""
        traced, p = facts.traced_rows.numpy(), self.config.p
        kept = {}
        for table in analyzer.tables:
            rows = pl.read_parquet(artifact_path(self.run_dir.artifacts_dir, table, epoch))
            kept[table] = rows.filter((pl.col("a").cast(pl.Int64) * p + pl.col("b")).is_in(traced))
        return kept

    def _context(self, facts: RunFacts, epoch: int, tasks: list[Task], data: TaskData, model: torch.nn.Module,
                 report: AnalysisReport) -> CheckpointContext:
        """The checkpoint's context: its weights loaded, and the forward pass its analyzers need,
        over the grid, or over the traced inputs they compute when only traced analyzers need it."""
        weights = {k: v.to(self.device) for k, v in facts.weights(epoch).items()}
        report.checkpoint_loads += 1
        model.load_state_dict(weights)
        ctx = CheckpointContext(facts, self.family, data, epoch, weights, model)
        readers = [task for task in tasks if task.analyzer.requires == "activations"]
        if not readers:
            return ctx
        hooks = hook_names(self.family, {r for t in readers for r in t.analyzer.hooks + t.analyzer.optional_hooks})
        inputs = data.inputs
        if all(t.analyzer.traced for t in readers):
            rows = [facts.inputs_to_trace(t.covered) for t in readers]
            ctx.forward_rows = torch.unique(torch.cat(rows)).to(data.inputs.device)
            if len(ctx.forward_rows) == 0:
                return ctx
            inputs = data.inputs[ctx.forward_rows]
        with torch.no_grad():
            ctx.logits, ctx.cache = model.run_with_cache(inputs, names_filter=lambda name: name in hooks,
                                                         **self.family.readout_forward)
        report.forward_passes += 1
        return ctx

    def _write(self, analyzer: Analyzer, frames: dict[str, pl.DataFrame] | None, epoch: int | None, facts: RunFacts,
               report: AnalysisReport, kept: dict[str, pl.DataFrame] | None = None) -> None:
        """Write an analyzer's artifacts: its frames, tidied, with the rows an extended artifact
        keeps (`kept`; alone when `frames` is None: nothing new was computed)."""
        if frames is not None and set(frames) != set(analyzer.tables):
            raise RuntimeError(f"analyzer {analyzer.name} returned tables {sorted(frames)}, declared {sorted(analyzer.tables)}")
        extra = {DEPENDS_KEY: dependency_fingerprint(analyzer, epoch, facts)}
        if analyzer.traced:
            extra[TRACE_KEY] = facts.trace.spec
        if (settings := settings_text(facts.settings(analyzer.name))) is not None:
            extra[SETTINGS_KEY] = settings
        for table, spec in analyzer.tables.items():
            if frames is None:
                tidy_frame = kept[table]
            else:
                tidy_frame = tidy(frames[table], spec, self.config.name, epoch)
                if kept is not None:
                    tidy_frame = pl.concat([kept[table].cast(tidy_frame.schema).select(tidy_frame.columns), tidy_frame]
                                           ).sort(["epoch", *spec.keys])
            path = artifact_path(self.run_dir.artifacts_dir, table, epoch)
            row_group = getattr(analyzer, "row_group_size", None)
            report.bytes_written += write_artifact(path, tidy_frame, analyzer, table, extra, row_group)
            self.manifest[self._key(path)] = file_digest(path)
            report.written.append((table, epoch))

    def _key(self, path: Path) -> str:
        return str(path.relative_to(self.run_dir.artifacts_dir))


# --- a worker process of `workers` > 1 ----------------------------------------------------------
@dataclass
class CheckpointResult:
    """What a worker did for one checkpoint: the manifest entries of the artifacts it wrote."""

    epoch: int
    manifest: dict[str, str]
    report: AnalysisReport


WORKER: dict = {}  # this worker process's pipeline, facts, data and model, loaded once


def start_checkpoint_worker(run_dir: str, device: str, threads: int, available: list[int],
                            found_keys: tuple[list[int], str | None] | None) -> None:
    """Pool initializer: a compute worker's setup (before torch makes its threads), then the run
    (its key frequencies as the parent found them, where the tasks read them)."""
    set_up_compute_worker(threads)
    pipeline = AnalysisPipeline(run_dir, device)
    # the parent's list of checkpoints, not the run's now: a run training beside the analysis
    # may have added one, and the artifacts' dependency fingerprints must match the parent's plan
    facts = RunFacts(pipeline.run_dir, pipeline.config, available, pipeline.family)
    if found_keys is not None:
        facts.found_key_frequencies = found_keys
    WORKER.update(pipeline=pipeline, facts=facts,
                  data=pipeline.family.task_data(pipeline.config).to(pipeline.device),
                  model=pipeline.family.build_model(pipeline.config).to(pipeline.device))


def analyze_checkpoint_in_worker(epoch: int, tasks: list[tuple[str, str | None]]) -> CheckpointResult:
    """One checkpoint's tasks, given as (analyzer name, the probe an extended artifact covers)."""
    pipeline: AnalysisPipeline = WORKER["pipeline"]
    pipeline.manifest = {}
    report = AnalysisReport()
    analyzers = get_analyzers([name for name, _ in tasks])
    try:
        pipeline.analyze_checkpoint(WORKER["facts"], epoch, [Task(a, covered) for a, (_, covered) in zip(analyzers, tasks, strict=True)],
                                    WORKER["data"], WORKER["model"], report)
    except TdwError as error:  # its subclasses' constructors take other arguments: not picklable as they are
        raise TdwError(str(error)) from None
    return CheckpointResult(epoch, pipeline.manifest, report)
