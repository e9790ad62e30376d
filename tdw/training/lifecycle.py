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
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import torch
from torch import Tensor

from tdw.atomic import sweep_temp_files
from tdw.config import VariantConfig, config_differences
from tdw.errors import CorruptFileError, TdwError
from tdw.locks import exclusive
from tdw.run_dir import LOSS_SCHEMA, RunDir
from tdw.training.arithmetic import new_run_arithmetic, recorded_arithmetic
from tdw.training.background_writes import BackgroundWrites
from tdw.training.cuda_graph import EpochGraphs
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


def metrics_row(values: list[float]) -> dict[str, float | None]:
    """One member's [train loss, train accuracy, test loss, test accuracy] (NaN: not evaluated)."""
    train_loss, train_accuracy, test_loss, test_accuracy = values
    return {"train_loss": train_loss, "train_accuracy": train_accuracy,
            "test_loss": None if math.isnan(test_loss) else test_loss,
            "test_accuracy": None if math.isnan(test_accuracy) else test_accuracy}


LOSS_READ_EVERY = 50  # epochs between reads of the losses on a GPU (each read waits for the device)
RowCallback = Callable[[int, int, dict], bool]  # (member, epoch, row) -> keep training the member


class EpochLoop:
    """The one epoch loop, for a session of one run (the single-run trainer) or of a stack.

    A session provides `epoch`, `config` (its eval_every and final_epoch, which stacked members
    share), `device_step(with_test, take_step)` -> [member, 4] metrics (train loss, train
    accuracy, test loss, test accuracy; NaN where not evaluated) left on its device, with
    `stage_epoch`, `advance` and, for CUDA graphs, `graph_tensors`; `checkpoint_tensors(row)`
    (host copies of a member's weights and optimizer state),
    `member_run(row)` and `keep(rows)` (go on with those rows only). The loop reads the metrics back every
    `flush_every` epochs, one device sync per batch (on a GPU a read per epoch leaves the device
    waiting; on a CPU it costs nothing and the default is every epoch), hands each row to
    `on_row`, and before a member's checkpoint is written, flushes and calls `before_checkpoint`,
    whose losses table is written before the checkpoint: resuming from any checkpoint (which
    keeps the rows before its epoch) loses no row. Files are written in the background
    (`tdw.training.background_writes`), in order per run, and all are on disk when run_to returns."""

    graphs: EpochGraphs | None = None  # the captured step, on CUDA (see tdw.training.cuda_graph)

    def stage_epoch(self) -> None:
        """Write this epoch's host-side inputs (the learning rate) where the step reads them."""

    def device_step(self, with_test: bool, take_step: bool) -> Tensor:
        """[member, 4] metrics of the current weights, then one optimizer step if asked; device
        work only (no host read), so that it can be captured in a CUDA graph."""
        raise NotImplementedError

    def advance(self) -> None:
        """The host-side counters after one step."""
        self.epoch += 1

    def evaluate_and_step(self, with_test: bool, take_step: bool) -> Tensor:
        """[member, 4] float64 (train loss, train accuracy, test loss, test accuracy; NaN where
        not evaluated) of the current weights, left on the device; then one step (epoch ->
        epoch + 1) if asked, replayed from a CUDA graph where the session has one."""
        self.stage_epoch()
        metrics = self.graphs.replay(with_test) if take_step and self.graphs is not None else None
        if metrics is None:
            metrics = self.device_step(with_test, take_step)
        if take_step:
            self.advance()
        return metrics

    def run_to(self, stop_epoch: int, checkpoints: list[Iterable[int]], on_row: RowCallback,
               before_checkpoint: Callable[[int, int], pl.DataFrame | None] | None = None, flush_every: int = 1,
               cancelled: Callable[[int], bool] | None = None) -> list[int]:
        """Train from the current epoch through `stop_epoch` (inclusive), member i saving at
        `checkpoints[i]`. A member leaves when `on_row` returns False (it diverged) or
        `cancelled(member)` says so, asked after each batch. Returns the members still training."""
        wanted = [set(c) for c in checkpoints]
        active = list(range(len(wanted)))  # member ids, in the order of the session's rows
        pending: list[tuple[int, Tensor]] = []
        config = self.config

        def flush() -> None:
            if not pending:
                return
            epochs = [epoch for epoch, _ in pending]
            table = torch.stack([metrics for _, metrics in pending]).cpu().tolist()  # one device sync
            pending.clear()
            leaving: set[int] = set()
            for epoch, values in zip(epochs, table):
                for row_index, member_values in enumerate(values):
                    member = active[row_index]
                    if member not in leaving and not on_row(member, epoch, metrics_row(member_values)):
                        leaving.add(member)
            leaving |= {m for m in active if cancelled is not None and cancelled(m)}
            if leaving:
                stay = [i for i, m in enumerate(active) if m not in leaving]
                self.keep(stay)
                active[:] = [active[i] for i in stay]

        def due(epoch: int) -> list[int]:
            return [row for row, member in enumerate(active)
                    if epoch in wanted[member] and not self.member_run(row).checkpoint_path(epoch).exists()]

        writes = BackgroundWrites()

        def save(row: int, epoch: int) -> None:
            losses = before_checkpoint(active[row], epoch) if before_checkpoint is not None else None
            run, (weights, state) = self.member_run(row), self.checkpoint_tensors(row)

            def write() -> None:
                if losses is not None:
                    run.write_losses(losses)
                run.save_checkpoint(epoch, weights, state)
            writes.submit(run.path, write)

        try:
            while active and self.epoch <= stop_epoch:
                epoch = self.epoch
                if due(epoch):
                    flush()  # may drop members, so ask again who saves
                    for row in due(epoch):
                        save(row, epoch)
                if not active:
                    break
                with_test = (epoch % config.eval_every == 0 or epoch == config.final_epoch
                             or any(epoch in wanted[m] for m in active))
                pending.append((epoch, self.evaluate_and_step(with_test, take_step=epoch < stop_epoch)))
                if len(pending) >= flush_every or epoch == stop_epoch:
                    flush()
                if epoch == stop_epoch:
                    break
            flush()
        finally:
            writes.close()  # every asked-for file is on disk before the caller writes more
        return active


class LossRecords(list):
    """One run's (epoch, metrics row) pairs, in order. Losses go to disk before every
    checkpoint, and a p=113 run has 118 checkpoints over 25,000 epochs: converting every row at
    each of them was quadratic (seconds of a 30-second GPU run), so the table is kept and grows
    by the rows added since it was last asked for."""

    def __init__(self, variant: str) -> None:
        super().__init__()
        self.variant = variant
        self.table: pl.DataFrame | None = None
        self.converted = 0

    def frame(self) -> pl.DataFrame:
        if self.table is None or self.converted < len(self):
            new = loss_rows(self.variant, self[self.converted:])
            self.table = new if self.table is None else pl.concat([self.table, new])
            self.converted = len(self)
        return self.table


def loss_rows(variant: str, records: list) -> pl.DataFrame:
    if isinstance(records, LossRecords) and records.variant == variant:
        return records.frame()
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
        longer = differences == [f"num_epochs: {existing.num_epochs!r} != {config.num_epochs!r}"] \
            and config.num_epochs > existing.num_epochs
        raise TdwError(
            f"{run.path} exists with a different config ({'; '.join(differences)}); "
            + (f"train it on with `tdw extend {run.path} --epochs {config.num_epochs}`, " if longer else "")
            + "pick another --name or pass --force to start it over"
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
             progress: bool, locks: ExitStack, extend: bool = False, **metadata_fields) -> OpenedRun | None:
    """Lock, validate, (re)create and mark the run as running; None when it is already complete.

    The run's train lock is entered on `locks` and held until the caller closes it; `force` also
    takes the analyze lock, since it deletes the run's artifacts: a run another live process is
    training or analyzing is refused in one line, never deleted under it. With `extend`, an
    existing run's config grows to `config`'s length (`VariantConfig.extended_to`) and the run
    resumes from its last checkpoint."""
    fresh_arithmetic = new_run_arithmetic()  # a bad TDW_ARITHMETIC is refused before anything is written
    target = RunDir.for_config(results, config)
    locks.enter_context(exclusive(target.path, "train", "trained"))
    if force:
        locks.enter_context(exclusive(target.path, "analyze", "analyzed"))
    for folder in (target.path, target.checkpoint_dir):  # not artifacts/: an analysis may be writing there
        if folder.exists():
            sweep_temp_files(folder, recursive=False)  # left by a killed writer of this run; we hold its lock
    if extend and target.exists() and not force:
        config = grow_run(target, config)
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
    arithmetic = fresh_arithmetic
    if resume_epoch is not None:
        kept = run.read_losses().filter(pl.col("epoch") < resume_epoch)
        arithmetic = recorded_arithmetic(run)  # continued with the rounding that trained it
        # and on the thread count that trained it, until the caller closes `locks` (a stack's
        # members resumed together take the last one's count: members of one count stay exact)
        locks.enter_context(threads_that_wrote(run, device))
    metadata = run.update_metadata(
        status="running",
        variant=config.name,
        family=config.family,
        started_at=run.read_metadata().get("started_at", now()),
        resumed_from=resume_epoch,
        device=str(device),
        torch_threads=torch.get_num_threads(),
        arithmetic=arithmetic,
        host=platform.node(),
        pid=os.getpid(),
        versions=environment_versions(),
        **metadata_fields,
    )
    return OpenedRun(run, config, resume_epoch, kept, metadata)


def grow_run(run: RunDir, config: VariantConfig) -> VariantConfig:
    """The run's config grown to `config`'s length and checkpoints, written (holding its train
    lock). The run is marked unfinished before its config grows: killed in between, it is an
    interrupted run of its old length, never a "complete" one of the new."""
    existing = run.read_config()
    grown = existing.extended_to(config.num_epochs, config.checkpoint_epochs)
    if grown != existing:
        earlier = run.read_metadata().get("extended_from", [])
        run.update_metadata(status="extending", extended_from=[*earlier, existing.num_epochs])
        run.write_config(grown)
    return grown


@contextmanager
def threads_that_wrote(run: RunDir, device: torch.device) -> Iterator[int]:
    """The block runs on the torch thread count the run was trained on (its metadata's
    `torch_threads`), on a CPU; the process's own count is restored after. Yields that count.

    Why: on a CPU the thread count is part of the arithmetic. Torch splits products' and
    reductions' sums between its threads, so a p=53 run trained 40 epochs on one thread and on two
    ends with different weights in every trained matrix (measured). A sweep's workers train on one
    thread each, `tdw train` in a shell on all of them, so a replay in another process than the
    one that trained would round differently from the run it replays."""
    current = torch.get_num_threads()
    recorded = recorded_threads(run, device)
    if recorded is None or recorded == current:
        yield current
        return
    torch.set_num_threads(recorded)
    try:
        yield recorded
    finally:
        torch.set_num_threads(current)


def recorded_threads(run: RunDir, device: torch.device) -> int | None:
    """The torch thread count `run` was trained on, as its metadata records it; None off a CPU
    (where the count is not part of the arithmetic) or when not recorded."""
    if device.type != "cpu" or not run.exists():
        return None
    recorded = run.read_metadata().get("torch_threads")
    return recorded if isinstance(recorded, int) and recorded >= 1 else None


def resume_threads(run: RunDir, resume_epoch: int | None, device: torch.device) -> int | None:
    """The thread count training `run` would take, given the epoch `prepare_run` found to resume
    from: the recorded one when it resumes an interrupted CPU run (`threads_that_wrote`), None when
    it starts afresh (on the process's own count) or the run is complete. Why: a scheduler of
    one-thread workers must give such a run the cores it will take; two threads beside a one-thread
    worker on two cores ran a p=113 step at 134 ms where two one-thread runs side by side take 71
    (measured)."""
    if resume_epoch is None or run.read_metadata().get("status") == "complete":
        return None
    return recorded_threads(run, device)


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
