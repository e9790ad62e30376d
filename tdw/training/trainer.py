"""Full-batch training of one variant, checkpointing as it goes, resumable after a kill.

Epoch e means the weights after e optimizer steps: checkpoint 0 is the initialization, and
the losses recorded for epoch e are those of exactly the weights in checkpoint e (train and
test alike). The final epoch num_epochs - 1 is always checkpointed. Training is deterministic
on a given device and thread count, so resuming or replaying (densify) reproduces the
original weights bit for bit.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import torch
from tqdm.auto import tqdm

from tdw.atomic import sweep_temp_files
from tdw.config import VariantConfig, config_differences
from tdw.errors import CorruptFileError, TdwError
from tdw.families import get_family
from tdw.locks import exclusive
from tdw.run_dir import LOSS_SCHEMA, RunDir
from tdw.training.device import resolve_device
from tdw.training.optimizer import (
    load_optimizer_state,
    make_optimizer,
    optimizer_state_by_name,
    trainable_parameters,
)
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


class TrainingSession(EpochLoop):
    """Model, optimizer and data of one run on one device, positioned at some epoch."""

    def __init__(self, run: RunDir, config: VariantConfig, device: torch.device) -> None:
        self.run, self.config, self.device = run, config, device
        self.family = get_family(config.family)
        self.model = self.family.build_model(config).to(device)
        self.params = trainable_parameters(self.model, config)
        self.names = list(self.params)
        self.optimizer = make_optimizer(self.params, config)
        self.data = self.family.task_data(config).to(device)
        self.all_params = dict(self.model.named_parameters())
        self.epoch = 0

    def restore(self, epoch: int) -> None:
        weights = self.run.load_weights(epoch, self.device)
        self.model.load_state_dict(weights, strict=True)
        state = self.run.load_optimizer(epoch, self.device)
        if state is None:
            raise TdwError(f"{self.run.path}: checkpoint {epoch} has no optimizer state; cannot continue from it")
        load_optimizer_state(self.optimizer, self.names, state)
        self.epoch = epoch

    def save(self) -> None:
        self.run.save_checkpoint(
            self.epoch, self.model.state_dict(), optimizer_state_by_name(self.optimizer, self.names)
        )

    def evaluate_and_step(self, with_test: bool, take_step: bool) -> dict[str, float | None]:
        """Losses of the current weights; then one AdamW step (epoch -> epoch + 1) if asked."""
        result = self.family.losses(self.all_params, self.data, with_test)
        if take_step:
            for group in self.optimizer.param_groups:
                group["lr"] = self.config.lr * self.config.lr_schedule.factor(self.epoch, self.config.num_epochs)
            result.train_loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        row = {
            "train_loss": result.train_loss.item(),
            "train_accuracy": result.train_accuracy,
            "test_loss": result.test_loss,
            "test_accuracy": result.test_accuracy,
        }
        if take_step:
            self.epoch += 1
        return row


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
        import shutil

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


def train(
    config: VariantConfig,
    results: str | Path = "results",
    device: str = "auto",
    force: bool = False,
    progress: bool = True,
    on_progress: Callable[[int, dict], None] | None = None,
) -> RunDir:
    """Train `config` into `results/<family>/<variant>/`, resuming an interrupted run.
    `on_progress(epoch, losses)` is called every epoch; an exception from it stops training at
    once, leaving the run resumable from its last checkpoint (how jobs are cancelled)."""
    if not force and trained_stacked(RunDir.for_config(results, config)):
        from tdw.training.stacked import train_stacked

        callback = None if on_progress is None else (lambda _member, epoch, row: on_progress(epoch, row))
        return train_stacked([config], results, device, progress=progress, on_progress=callback)[0]
    torch_device = resolve_device(device)
    with ExitStack() as locks:
        opened = open_run(config, results, force, torch_device, progress, locks, trainer="single")
        if opened is None:
            return RunDir.for_config(results, config)
        return train_opened(opened, torch_device, progress, on_progress)


def train_opened(opened: OpenedRun, torch_device: torch.device, progress: bool,
                 on_progress: Callable[[int, dict], None] | None) -> RunDir:
    run, config = opened.run, opened.config
    session = TrainingSession(run, config, torch_device)
    if opened.resume_epoch is not None:
        session.restore(opened.resume_epoch)
    started = time.time()

    records: list = []
    checkpoint_epochs = sorted(config.checkpoint_epochs)
    bar = tqdm(
        total=config.num_epochs,
        initial=session.epoch,
        desc=config.name,
        unit="ep",
        disable=not progress,
        dynamic_ncols=True,
    )

    def on_epoch(epoch: int, row: dict, is_checkpoint: bool) -> None:
        bar.update(1)
        if on_progress is not None:
            on_progress(epoch, row)
        if epoch % 50 == 0 or is_checkpoint:
            bar.set_postfix(**loss_postfix(row), refresh=False)

    def before_checkpoint(epoch: int) -> None:
        # Losses of every epoch before a checkpoint are on disk before the checkpoint exists,
        # so resuming from any checkpoint (which keeps rows < its epoch) loses no row.
        if records:
            run.write_losses(pl.concat([opened.kept_losses, loss_rows(config.name, records)]))

    try:
        session.run_to(
            config.final_epoch, checkpoint_epochs, on_epoch=on_epoch, record=records, before_checkpoint=before_checkpoint
        )
    except DivergedError as error:
        bar.close()
        mark_diverged(run, opened.kept_losses, records, error)
        raise
    bar.close()
    finish_run(opened, records, time.time() - started)
    return run


def loss_postfix(row: dict) -> dict[str, str]:
    return {
        "train": f"{row['train_loss']:.2e}",
        "test": "-" if row["test_loss"] is None else f"{row['test_loss']:.2e}",
        "test_acc": "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.3f}",
    }
