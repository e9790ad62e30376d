"""The analysis pipeline: each checkpoint loaded once, at most one forward pass, shared by all.

For every checkpoint it finds which (analyzer, table) artifacts are missing or stale, loads the
weights once, runs one `run_with_cache` over the full input grid only if some pending analyzer
needs activations (caching only the hooks they declare, by role: the family names the hook, and
computing only the answer's readout: `Family.readout_forward`), and hands the same context to each. An analyzer needing a role the family lacks is skipped and reported.
Run-level analyzers run last over all checkpoints.

An artifact is stale when its analyzer has a newer version or when the checkpoints it depended on
(`Analyzer.depends_on`: its own, also the final one, or all of them) are not the ones the run has
now: each artifact records a fingerprint of those checkpoints' digests. So analyzing a run while
it trains, or after it was extended, recomputes the progress measures (which use the final key
frequencies) and the trajectory PCA, and the report says what was invalidated and why. Every file
is written atomically, so a killed run resumes where it stopped.

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
from concurrent.futures import FIRST_EXCEPTION, wait
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from tdw.analysis.analyzer import Analyzer
from tdw.analysis.artifacts import (
    DEPENDS_KEY,
    TRACE_KEY,
    artifact_path,
    file_digest,
    read_manifest,
    staleness,
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
    bytes_written: int = 0
    forward_passes: int = 0
    checkpoint_loads: int = 0
    not_applicable: dict[str, str] = field(default_factory=dict)  # analyzer -> why it does not apply

    def summary(self) -> str:
        lines = [f"skipped {name}: {why}" for name, why in sorted(self.not_applicable.items())]
        lines += [f"invalidated {n} {table} artifact{'s' if n > 1 else ''} ({reason})"
                 for (table, reason), n in sorted(self.invalidated.items())]
        if not self.written:
            lines.append(f"nothing to do: all {self.skipped} artifacts are up to date")
        else:
            lines.append(
                f"wrote {len(self.written)} artifacts ({self.bytes_written / 1e6:.1f} MB) from "
                f"{self.checkpoint_loads} checkpoint loads and {self.forward_passes} forward passes; "
                f"{self.skipped} already up to date"
            )
        return "\n".join(lines)


def dependency_fingerprint(analyzer: Analyzer, epoch: int | None, facts: RunFacts) -> str:
    """What an artifact's values depend on, as a short digest of the checkpoints involved."""
    parts = [] if epoch is None else [f"checkpoint {epoch} {facts.digest(epoch)}"]
    if analyzer.depends_on == "final_checkpoint":
        parts.append(f"final {facts.final_epoch} {facts.digest(facts.final_epoch)}")
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
            workers = auto_workers(len(checkpoints), self.device)
        if workers > 1 and len(checkpoints) > 1:
            self._analyze_in_processes(checkpoints, available, min(workers, len(checkpoints)), report, bar)
        elif checkpoints:
            data = self.family.task_data(self.config).to(self.device)
            model = self.family.build_model(self.config).to(self.device)
            for epoch, pending in checkpoints.items():
                def announce(analyzer: Analyzer, epoch: int = epoch) -> None:
                    bar.set_postfix(epoch=epoch, analyzer=analyzer.name, refresh=False)
                self.analyze_checkpoint(facts, epoch, pending, data, model, report, announce, bar.update)
                write_manifest(self.run_dir.artifacts_dir, self.manifest)
        if run_plan:
            run_ctx = RunContext(facts, self.family)
            for analyzer in run_plan:
                bar.set_postfix(analyzer=analyzer.name, refresh=False)
                with torch.no_grad():
                    frames = analyzer.analyze_run(run_ctx)
                self._write(analyzer, frames, None, facts, report)
                bar.update(1)
            write_manifest(self.run_dir.artifacts_dir, self.manifest)
        bar.close()
        self._retire_replaced_artifacts(chosen)
        return report

    def analyze_checkpoint(self, facts: RunFacts, epoch: int, pending: list[Analyzer], data: TaskData,
                           model: torch.nn.Module, report: AnalysisReport,
                           before: Callable[[Analyzer], object] | None = None,
                           after: Callable[[int], object] | None = None) -> None:
        """Load checkpoint `epoch`, run the shared forward if needed, then each pending analyzer,
        writing its artifacts and recording them in `self.manifest` (`before(analyzer)` and
        `after(1)` around each: the progress bar)."""
        ctx = self._context(facts, epoch, pending, data, model, report)
        for analyzer in pending:
            if before is not None:
                before(analyzer)
            with torch.no_grad():
                frames = analyzer.analyze(ctx)
            self._write(analyzer, frames, epoch, facts, report)
            if after is not None:
                after(1)

    def _analyze_in_processes(self, checkpoints: dict[int, list[Analyzer]], available: list[int], workers: int,
                              report: AnalysisReport, bar) -> None:
        threads = max(1, torch.get_num_threads() // workers)
        with spawned_pool(workers, start_checkpoint_worker,
                          (str(self.run_dir.path), str(self.device), threads, available)) as pool:
            futures = {pool.submit(analyze_checkpoint_in_worker, epoch, [a.name for a in pending])
                       for epoch, pending in checkpoints.items()}
            while futures:
                done, futures = wait(futures, return_when=FIRST_EXCEPTION)
                failures = [future.exception() for future in done if future.exception() is not None]
                for result in (future.result() for future in done if future.exception() is None):
                    self.manifest.update(result.manifest)
                    report.written += result.report.written
                    report.bytes_written += result.report.bytes_written
                    report.checkpoint_loads += result.report.checkpoint_loads
                    report.forward_passes += result.report.forward_passes
                    bar.set_postfix(epoch=result.epoch, refresh=False)
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
                 report: AnalysisReport) -> list[Analyzer]:
        pending = []
        for analyzer in analyzers:
            depends = dependency_fingerprint(analyzer, epoch, facts)
            paths = {t: artifact_path(self.run_dir.artifacts_dir, t, epoch) for t in analyzer.tables}
            trace = facts.trace.spec if analyzer.traced else None
            reasons = {t: staleness(path, analyzer, depends, self.manifest.get(self._key(path)), trace)
                       for t, path in paths.items()}
            if force or any(reasons.values()):
                pending.append(analyzer)
                for table, reason in reasons.items():
                    if reason not in (None, "missing"):
                        report.invalidated[(table, reason)] += 1
            else:
                report.skipped += len(reasons)
        return pending

    def _context(self, facts, epoch, pending, data, model, report) -> CheckpointContext:
        weights = {k: v.to(self.device) for k, v in facts.weights(epoch).items()}
        report.checkpoint_loads += 1
        model.load_state_dict(weights)
        ctx = CheckpointContext(facts, self.family, data, epoch, weights, model)
        roles = {r for a in pending if a.requires == "activations" for r in a.hooks + a.optional_hooks}
        hooks = hook_names(self.family, roles)
        if any(a.requires == "activations" for a in pending):
            with torch.no_grad():
                ctx.logits, ctx.cache = model.run_with_cache(data.inputs, names_filter=lambda name: name in hooks,
                                                             **self.family.readout_forward)
            report.forward_passes += 1
        return ctx

    def _write(self, analyzer, frames, epoch, facts, report) -> None:
        if set(frames) != set(analyzer.tables):
            raise RuntimeError(f"analyzer {analyzer.name} returned tables {sorted(frames)}, declared {sorted(analyzer.tables)}")
        extra = {DEPENDS_KEY: dependency_fingerprint(analyzer, epoch, facts)}
        if analyzer.traced:
            extra[TRACE_KEY] = facts.trace.spec
        for table, frame in frames.items():
            spec = analyzer.tables[table]
            tidy_frame = tidy(frame, spec, self.config.name, epoch)
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


def start_checkpoint_worker(run_dir: str, device: str, threads: int, available: list[int]) -> None:
    """Pool initializer: a compute worker's setup (before torch makes its threads), then the run."""
    set_up_compute_worker(threads)
    pipeline = AnalysisPipeline(run_dir, device)
    # the parent's list of checkpoints, not the run's now: a run training beside the analysis
    # may have added one, and the artifacts' dependency fingerprints must match the parent's plan
    WORKER.update(pipeline=pipeline, facts=RunFacts(pipeline.run_dir, pipeline.config, available, pipeline.family),
                  data=pipeline.family.task_data(pipeline.config).to(pipeline.device),
                  model=pipeline.family.build_model(pipeline.config).to(pipeline.device))


def analyze_checkpoint_in_worker(epoch: int, analyzer_names: list[str]) -> CheckpointResult:
    pipeline: AnalysisPipeline = WORKER["pipeline"]
    pipeline.manifest = {}
    report = AnalysisReport()
    try:
        pipeline.analyze_checkpoint(WORKER["facts"], epoch, get_analyzers(analyzer_names), WORKER["data"],
                                    WORKER["model"], report)
    except TdwError as error:  # its subclasses' constructors take other arguments: not picklable as they are
        raise TdwError(str(error)) from None
    return CheckpointResult(epoch, pipeline.manifest, report)
