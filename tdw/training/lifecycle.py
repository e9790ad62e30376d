"""A run's lifecycle, shared by the single-run and the stacked trainer: open (lock, validate,
resume from the newest verified checkpoint), the one epoch loop, divergence, losses on disk, finish.

Both trainers import this module and neither imports the other's internals, so a change to how a
run starts, resumes or ends is made once.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import sys
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import torch

from tdw.atomic import sweep_temp_files
from tdw.config import VariantConfig, config_differences
from tdw.errors import CorruptFileError, TdwError
from tdw.locks import exclusive
from tdw.run_dir import LOSS_SCHEMA, RunDir
from tdw.versions import environment_versions


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class DivergedError(TdwError):
    """A loss became NaN or infinite: training stops there; the run stays resumable."""


def check_finite(run: RunDir, epoch: int, row: dict) -> None:
    for key in ("train_loss", "test_loss"):
        value = row.get(key)
        if value is not None and not math.isfinite(value):
            done = [e for e in run.checkpoint_epochs() if e <= epoch]
            where = f"checkpoint {done[-1]}" if done else "no checkpoint"
            raise DivergedError(
                f"{run.path}: {key.replace('_', ' ')} is {value} at epoch {epoch}; training stopped "
                f"({where} kept; try a smaller --lr)"
            )


def mark_diverged(run: RunDir, kept: pl.DataFrame, records: list, error: DivergedError) -> None:
    """Keep the losses up to the divergence (the NaN rows show where) and say so in the metadata."""
    run.write_losses(pl.concat([kept, loss_rows(run.read_config().name, records)]))
    run.update_metadata(status="diverged", error=str(error), finished_at=now())


class EpochLoop:
    """The epoch loop shared by the single-run session and a stack of one: a session provides
    `run`, `config`, `epoch`, `save()` and `evaluate_and_step(with_test, take_step) -> row`."""

    def run_to(
        self, stop_epoch: int, checkpoints: Iterable[int], on_epoch=None, record: list | None = None,
        before_checkpoint=None,
    ) -> None:
        """Train from the current epoch through `stop_epoch` (inclusive), saving the given checkpoints."""
        checkpoint_set = set(checkpoints)
        config = self.config
        while self.epoch <= stop_epoch:
            epoch = self.epoch
            is_checkpoint = epoch in checkpoint_set
            with_test = is_checkpoint or epoch % config.eval_every == 0 or epoch == config.final_epoch
            if is_checkpoint and not self.run.checkpoint_path(epoch).exists():
                if before_checkpoint is not None:
                    before_checkpoint(epoch)  # e.g. make the losses of epochs < epoch durable first
                self.save()
            row = self.evaluate_and_step(with_test, take_step=epoch < stop_epoch)
            if record is not None:
                record.append((epoch, row))
            check_finite(self.run, epoch, row)
            if on_epoch is not None:
                on_epoch(epoch, row, is_checkpoint)
            if epoch == stop_epoch:
                break


def loss_rows(variant: str, records: list) -> pl.DataFrame:
    rows = []
    for epoch, row in records:
        rows.append((variant, epoch, "train", row["train_loss"], row["train_accuracy"]))
        if row["test_loss"] is not None:
            rows.append((variant, epoch, "test", row["test_loss"], row["test_accuracy"]))
    return pl.DataFrame(rows, schema=LOSS_SCHEMA, orient="row")


def prepare_run(config: VariantConfig, results: str | Path, force: bool) -> tuple[RunDir, int | None]:
    """Validate against an existing run; returns the run and the epoch to resume from (or None)."""
    run = RunDir.for_config(results, config)
    if not run.exists():
        return run, None
    existing = run.read_config()
    if force:
        return run, None
    differences = config_differences(existing, config)
    if differences:
        raise TdwError(
            f"{run.path} exists with a different config ({'; '.join(differences)}); "
            "pick another --name or pass --force to start it over"
        )
    missing = sorted(set(config.checkpoint_epochs) - set(existing.checkpoint_epochs))
    if missing:
        raise TdwError(
            f"{run.path} exists with other checkpoint epochs (e.g. {missing[0]}); "
            f"add checkpoints with `tdw densify {run.path} --epochs ...`"
        )
    done = run.checkpoint_epochs()
    return run, (done[-1] if done else None)


def newest_good_checkpoint(run: RunDir) -> int | None:
    """The newest checkpoint whose weights and optimizer state read back as written. Newer ones
    that do not (a truncated or bit-flipped file) are moved to `RUN/quarantine/`, said on stderr,
    so training writes them anew."""
    for epoch in reversed(run.checkpoint_epochs()):
        try:
            run.load_weights(epoch)
            run.load_optimizer(epoch)
            return epoch
        except CorruptFileError as error:
            quarantine = run.path / "quarantine"
            quarantine.mkdir(exist_ok=True)
            for path in (run.checkpoint_path(epoch), run.optimizer_path(epoch)):
                if path.exists():
                    path.rename(quarantine / path.name)
            print(f"{error.path}: corrupt ({error.problem}); moved to {quarantine}, resuming from an earlier checkpoint",
                  file=sys.stderr)
    return None


@dataclass
class OpenedRun:
    """A run made ready to train: its config (with densify's additions), the epoch it resumes
    from (None: from the initialization) and the losses of the epochs before that."""

    run: RunDir
    config: VariantConfig
    resume_epoch: int | None
    kept_losses: pl.DataFrame
    metadata: dict


def open_run(config: VariantConfig, results: str | Path, force: bool, device: torch.device,
             progress: bool, locks: ExitStack, **metadata_fields) -> OpenedRun | None:
    """Lock, validate, (re)create and mark the run as running; None when it is already complete.

    The run's train lock is entered on `locks` and held until the caller closes it; `force` also
    takes the analyze lock, since it deletes the run's artifacts: a run another live process is
    training or analyzing is refused in one line, never deleted under it."""
    target = RunDir.for_config(results, config)
    locks.enter_context(exclusive(target.path, "train", "trained"))
    if force:
        locks.enter_context(exclusive(target.path, "analyze", "analyzed"))
    for folder in (target.path, target.checkpoint_dir):  # not artifacts/: an analysis may be writing there
        if folder.exists():
            sweep_temp_files(folder, recursive=False)  # left by a killed writer of this run; we hold its lock
    run, resume_epoch = prepare_run(config, results, force)
    if run.exists() and not force:
        config = run.read_config()  # keeps checkpoints added by densify
        if run.read_metadata().get("status") == "complete":
            if progress:
                print(f"{run.path}: already complete ({config.num_epochs} epochs); nothing to do")
            return None
    if resume_epoch is not None:  # only now, holding the lock, may broken checkpoints be moved aside
        resume_epoch = newest_good_checkpoint(run)
    if force and run.path.exists():
        shutil.rmtree(run.path)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(config)
    kept = pl.DataFrame(schema=LOSS_SCHEMA)
    if resume_epoch is not None:
        kept = run.read_losses().filter(pl.col("epoch") < resume_epoch)
    metadata = run.update_metadata(
        status="running",
        variant=config.name,
        family=config.family,
        started_at=run.read_metadata().get("started_at", now()),
        resumed_from=resume_epoch,
        device=str(device),
        torch_threads=torch.get_num_threads(),
        host=platform.node(),
        pid=os.getpid(),
        versions=environment_versions(),
        **metadata_fields,
    )
    return OpenedRun(run, config, resume_epoch, kept, metadata)


def finish_run(opened: OpenedRun, records: list, elapsed: float) -> None:
    opened.run.write_losses(pl.concat([opened.kept_losses, loss_rows(opened.config.name, records)]))
    opened.run.update_metadata(
        status="complete",
        finished_at=now(),
        train_seconds=round(opened.metadata.get("train_seconds", 0) + elapsed, 3),
        seconds_per_epoch=round(elapsed / max(len(records), 1), 6),
    )


def trained_stacked(run: RunDir) -> bool:
    """Runs trained by the stacked trainer resume and replay with it, so they stay bit-exact."""
    return run.exists() and run.read_metadata().get("trainer") == "stacked"


def loss_postfix(row: dict) -> dict[str, str]:
    return {
        "train": f"{row['train_loss']:.2e}",
        "test": "-" if row["test_loss"] is None else f"{row['test_loss']:.2e}",
        "test_acc": "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.3f}",
    }
