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
"""

from __future__ import annotations

import hashlib
from collections import Counter
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
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.families.base import hook_names
from tdw.locks import exclusive
from tdw.run_dir import RunDir
from tdw.training.device import resolve_device


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
    ) -> AnalysisReport:
        """Analyze what is missing or stale, holding the run's analyze lock (a second `tdw analyze`
        of the same run is refused in one line; training beside it is fine)."""
        chosen = get_analyzers(analyzers)
        report = AnalysisReport()
        for analyzer in list(chosen):
            missing = analyzer.missing_hooks(self.family)
            if missing:  # e.g. attention maps of a family without attention
                chosen.remove(analyzer)
                report.not_applicable[analyzer.name] = (f"family {self.family.name} has no {' or '.join(missing)} "
                                                        f"activations (it has: {', '.join(self.family.hooks) or 'none'})")
        with exclusive(self.run_dir.path, "analyze", "analyzed"):
            return self._run(chosen, epochs, force, progress, report)

    def _run(self, chosen: list[Analyzer], epochs: list[int] | None, force: bool, progress: bool,
             report: AnalysisReport) -> AnalysisReport:
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

        data = self.family.task_data(self.config).to(self.device) if total else None
        model = self.family.build_model(self.config).to(self.device) if total else None
        for epoch, pending in plan.items():
            if not pending:
                continue
            ctx = self._context(facts, epoch, pending, data, model, report)
            for analyzer in pending:
                bar.set_postfix(epoch=epoch, analyzer=analyzer.name, refresh=False)
                with torch.no_grad():
                    frames = analyzer.analyze(ctx)
                self._write(analyzer, frames, epoch, facts, report)
                bar.update(1)
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
        return report

    # --- internals -----------------------------------------------------------------------
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
