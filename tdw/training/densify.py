"""Add checkpoints inside an already trained range by replaying from the nearest earlier one.

Full-batch training is deterministic, so a replayed checkpoint equals the one an original run
with that schedule would have written (tested). Typical use: densify around the turn that
`grokking_turn` found, then re-run the analysis, which only computes the new epochs.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

import polars as pl
import torch
from tqdm.auto import tqdm

from tdw.config import VariantConfig
from tdw.errors import TdwError
from tdw.locks import exclusive
from tdw.run_dir import RunDir
from tdw.training.device import resolve_device
from tdw.training.lifecycle import check_finite, loss_rows, threads_that_wrote, trained_stacked
from tdw.training.stacked import StackedSession
from tdw.training.trainer import TrainingSession


def densify(run_path: str | Path, epochs: list[int], device: str = "auto", progress: bool = True) -> list[int]:
    """Write checkpoints at `epochs` (those missing); returns the epochs added. Holds the run's
    train lock: a run being trained or densified by another process is refused in one line."""
    run = RunDir(run_path)
    run.read_config()
    with exclusive(run.path, "train", "trained"):
        return densify_locked(run, epochs, device, progress)


def densify_locked(run: RunDir, epochs: list[int], device: str, progress: bool) -> list[int]:
    config = run.read_config()
    outside = [e for e in epochs if not 0 <= e < config.num_epochs]
    if outside:
        raise TdwError(f"--epochs: epoch {outside[0]} is outside the run's [0, {config.num_epochs})")
    existing = [e for e in run.checkpoint_epochs() if run.optimizer_path(e).exists()]
    new = sorted(set(epochs) - set(run.checkpoint_epochs()))
    if not new:
        if progress:
            print(f"{run.path}: every requested checkpoint exists; nothing to do")
        return []
    if not existing:
        raise TdwError(f"{run.path}: no checkpoint with optimizer state to replay from (imported runs cannot be densified)")
    beyond = [e for e in new if e > existing[-1]]
    if beyond:
        raise TdwError(
            f"--epochs: epoch {beyond[0]} lies after the last checkpoint ({existing[-1]}); "
            f"finish training with `tdw train` first"
        )

    groups: dict[int, list[int]] = {}
    for epoch in new:
        start = existing[bisect_right(existing, epoch) - 1]
        groups.setdefault(start, []).append(epoch)

    torch_device = resolve_device(device)
    with threads_that_wrote(run, torch_device):  # the arithmetic that wrote the run, thread count included
        return replay(run, config, groups, torch_device, progress)


def replay(run: RunDir, config: VariantConfig, groups: dict[int, list[int]], torch_device: torch.device,
           progress: bool) -> list[int]:
    """Replay each group's epochs from its start checkpoint, writing their checkpoints and losses."""
    new = sorted(epoch for group in groups.values() for epoch in group)
    if trained_stacked(run):
        rows = run.read_metadata().get("stack_size") if torch_device.type == "cuda" else None
        session = StackedSession([run], [config], torch_device, rows)  # a stack of one
    else:
        session = TrainingSession(run, config, torch_device)
    total = sum(max(group) - start for start, group in groups.items())
    bar = tqdm(total=total, desc=f"densify {run.variant}", unit="ep", disable=not progress, dynamic_ncols=True)
    records: list = []

    def on_row(_member: int, epoch: int, row: dict) -> bool:
        records.append((epoch, row))
        check_finite(run, epoch, row)  # a replay that diverges stops with one line
        bar.update(1)
        return True

    for start, group in sorted(groups.items()):
        session.restore(start)
        session.run_to(max(group), [group], on_row)
        bar.update(-1)  # the restored start epoch is re-evaluated, not advanced
    bar.close()

    losses = run.read_losses()
    fresh = loss_rows(config.name, records).join(losses.select("epoch", "split"), on=["epoch", "split"], how="anti")
    if fresh.height:
        run.write_losses(pl.concat([losses, fresh.cast(dict(losses.schema))]))
    run.write_config(config.replace(checkpoint_epochs=sorted(set(config.checkpoint_epochs) | set(new))))
    return new
