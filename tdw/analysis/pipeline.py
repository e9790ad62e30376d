"""The analysis pipeline: each checkpoint loaded once, at most one forward pass, shared by all.

For every checkpoint it finds which (analyzer, table) artifacts are missing or stale (older
analyzer version), loads the weights once, runs one `run_with_cache` over the full input grid
only if some pending analyzer needs activations (caching only the hooks they declare), and
hands the same context to each. Trajectory analyzers run last over all checkpoints and are
recomputed when the set of checkpoints changes. Every file is written atomically, so a killed
run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from tdw.analysis.analyzer import Analyzer
from tdw.analysis.artifacts import artifact_path, is_current, tidy, write_artifact
from tdw.analysis.context import CheckpointContext, RunContext
from tdw.analyzers import get_analyzers
from tdw.atomic import sweep_temp_files
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.run_dir import RunDir


@dataclass
class AnalysisReport:
    written: list[tuple[str, int | None]] = field(default_factory=list)  # (table, epoch)
    skipped: int = 0
    bytes_written: int = 0
    forward_passes: int = 0
    checkpoint_loads: int = 0

    def summary(self) -> str:
        if not self.written:
            return f"nothing to do: all {self.skipped} artifacts are up to date"
        return (
            f"wrote {len(self.written)} artifacts ({self.bytes_written / 1e6:.1f} MB) from "
            f"{self.checkpoint_loads} checkpoint loads and {self.forward_passes} forward passes; "
            f"{self.skipped} already up to date"
        )


def epochs_fingerprint(epochs: list[int]) -> str:
    return hashlib.sha1(",".join(map(str, epochs)).encode()).hexdigest()[:16]


class AnalysisPipeline:
    def __init__(self, run_dir: str | Path, device: str = "cpu") -> None:
        self.run_dir = RunDir(run_dir)
        self.config = self.run_dir.read_config()
        self.family = get_family(self.config.family)
        self.device = torch.device(device)

    def run(
        self,
        analyzers: list[str] | None = None,
        epochs: list[int] | None = None,
        force: bool = False,
        progress: bool = True,
    ) -> AnalysisReport:
        chosen = get_analyzers(analyzers)
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

        per_checkpoint = [a for a in chosen if a.requires != "trajectory"]
        trajectory = [a for a in chosen if a.requires == "trajectory"]
        report = AnalysisReport()
        plan = {epoch: self._pending(per_checkpoint, epoch, force, report) for epoch in targets}
        trajectory_plan = [a for a in trajectory if force or not self._trajectory_current(a, available)]
        report.skipped += sum(len(a.tables) for a in trajectory) - sum(len(a.tables) for a in trajectory_plan)
        total = sum(len(p) for p in plan.values()) + len(trajectory_plan)
        bar = tqdm(total=total, desc=f"analyze {self.run_dir.variant}", unit="job", disable=not progress or total == 0, dynamic_ncols=True)

        data = self.family.task_data(self.config).to(self.device) if total else None
        model = self.family.build_model(self.config).to(self.device) if total else None
        for epoch, pending in plan.items():
            if not pending:
                continue
            ctx = self._context(epoch, pending, data, model, report)
            for analyzer in pending:
                bar.set_postfix(epoch=epoch, analyzer=analyzer.name, refresh=False)
                with torch.no_grad():
                    frames = analyzer.analyze(ctx)
                self._write(analyzer, frames, epoch, report)
                bar.update(1)
        if trajectory_plan:
            run_ctx = RunContext(self.run_dir, self.config, self.family, available)
            for analyzer in trajectory_plan:
                bar.set_postfix(analyzer=analyzer.name, refresh=False)
                with torch.no_grad():
                    frames = analyzer.analyze_run(run_ctx)
                self._write(analyzer, frames, None, report, {"tdw.epochs": epochs_fingerprint(available)})
                bar.update(1)
        bar.close()
        return report

    # --- internals -----------------------------------------------------------------------
    def _pending(self, analyzers: list[Analyzer], epoch: int, force: bool, report: AnalysisReport) -> list[Analyzer]:
        pending = []
        for analyzer in analyzers:
            paths = [artifact_path(self.run_dir.artifacts_dir, t, epoch) for t in analyzer.tables]
            if force or not all(is_current(p, analyzer) for p in paths):
                pending.append(analyzer)
            else:
                report.skipped += len(paths)
        return pending

    def _trajectory_current(self, analyzer: Analyzer, epochs: list[int]) -> bool:
        extra = {"tdw.epochs": epochs_fingerprint(epochs)}
        return all(is_current(artifact_path(self.run_dir.artifacts_dir, t, None), analyzer, extra) for t in analyzer.tables)

    def _context(self, epoch, pending, data, model, report) -> CheckpointContext:
        weights = self.run_dir.load_weights(epoch, self.device)
        report.checkpoint_loads += 1
        model.load_state_dict(weights)
        ctx = CheckpointContext(self.run_dir, self.config, self.family, data, epoch, weights, model)
        hooks = sorted({h for a in pending if a.requires == "activations" for h in a.hooks})
        if any(a.requires == "activations" for a in pending):
            with torch.no_grad():
                ctx.logits, ctx.cache = model.run_with_cache(data.inputs, names_filter=lambda name: name in hooks)
            report.forward_passes += 1
        return ctx

    def _write(self, analyzer, frames, epoch, report, extra=None) -> None:
        if set(frames) != set(analyzer.tables):
            raise RuntimeError(f"analyzer {analyzer.name} returned tables {sorted(frames)}, declared {sorted(analyzer.tables)}")
        for table, frame in frames.items():
            spec = analyzer.tables[table]
            tidy_frame = tidy(frame, spec, self.config.name, epoch)
            path = artifact_path(self.run_dir.artifacts_dir, table, epoch)
            row_group = getattr(analyzer, "row_group_size", None)
            report.bytes_written += write_artifact(path, tidy_frame, analyzer, table, extra, row_group)
            report.written.append((table, epoch))
