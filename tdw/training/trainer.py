"""Full-batch training of one variant, checkpointing as it goes, resumable after a kill.

Epoch e means the weights after e optimizer steps: checkpoint 0 is the initialization, and
the losses recorded for epoch e are those of exactly the weights in checkpoint e (train and
test alike). The final epoch num_epochs - 1 is always checkpointed. Training is deterministic
on a given device and thread count, so resuming or replaying (densify) reproduces the
original weights bit for bit. The run's lifecycle (open, epoch loop, finish) is
`tdw.training.lifecycle`, shared with the stacked trainer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import polars as pl
import torch
from torch import Tensor
from tqdm.auto import tqdm

from tdw.config import VariantConfig
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.run_dir import RunDir
from tdw.training.arithmetic import recorded_arithmetic
from tdw.training.cuda_graph import EpochGraphs, graphs_wanted
from tdw.training.device import resolve_device
from tdw.training.lifecycle import (
    LOSS_READ_EVERY,
    DivergedError,
    EpochLoop,
    LossRecords,
    OpenedRun,
    check_finite,
    finish_run,
    loss_postfix,
    loss_rows,
    mark_diverged,
    open_run,
    trained_stacked,
)
from tdw.training.optimizer import (
    forward_parameters,
    load_optimizer_state,
    make_optimizer,
    optimizer_state_by_name,
    trainable_parameters,
)
from tdw.training.stacked import train_stacked


class TrainingSession(EpochLoop):
    """Model, optimizer and data of one run on one device, positioned at some epoch."""

    def __init__(self, run: RunDir, config: VariantConfig, device: torch.device) -> None:
        self.run, self.config, self.device = run, config, device
        self.family = get_family(config.family)
        self.arithmetic = recorded_arithmetic(run)  # resumed and densified with the one that trained it
        self.model = self.family.build_model(config).to(device)
        self.params = trainable_parameters(self.model, config)
        self.names = list(self.params)
        self.graphed = graphs_wanted(device)
        self.optimizer = make_optimizer(self.params, config, on_cuda_graph=self.graphed, arithmetic=self.arithmetic)
        # on CUDA the learning rate is a device tensor the captured step reads, set every epoch
        self.lr_now = torch.tensor(config.lr, device=device) if self.graphed else None
        self.bind_lr()
        self.data = self.family.task_data(config).to(device)
        self.all_params = forward_parameters(self.model, self.params)
        self.epoch = 0
        self.graphs = EpochGraphs(self) if self.graphed else None

    def bind_lr(self) -> None:
        """On CUDA, every param group reads the device lr tensor that `stage_epoch` sets."""
        if self.lr_now is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr_now

    def restore(self, epoch: int) -> None:
        weights = self.run.load_weights(epoch, self.device)
        self.model.load_state_dict(weights, strict=True)
        self.all_params = forward_parameters(self.model, self.params)  # a frozen bias loaded from a checkpoint need not be zero
        state = self.run.load_optimizer(epoch, self.device)
        if state is None:
            raise TdwError(f"{self.run.path}: checkpoint {epoch} has no optimizer state; cannot continue from it")
        load_optimizer_state(self.optimizer, self.names, state)
        self.bind_lr()  # loading copied the groups, the lr tensor with them
        if self.graphs is not None:
            self.graphs.forget()  # the optimizer's state tensors are new ones
        self.epoch = epoch

    def checkpoint_tensors(self, row: int = 0) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Host copies of the weights and AdamW state now (training goes on while they are written)."""
        weights = {name: value.detach().to("cpu", copy=True) for name, value in self.model.state_dict().items()}
        state = {name: value.to("cpu", copy=True)
                 for name, value in optimizer_state_by_name(self.optimizer, self.names).items()}
        return weights, state

    def member_run(self, row: int) -> RunDir:
        return self.run

    def keep(self, rows: list[int]) -> None:
        """A run of one has nothing to reshape: the loop stops when its member leaves."""

    def graph_tensors(self) -> list[Tensor]:
        state = [value for entry in self.optimizer.state.values() for value in entry.values()
                 if isinstance(value, Tensor)]
        return list(self.params.values()) + state

    def stage_epoch(self) -> None:
        lr = self.config.lr * self.config.lr_schedule.factor(self.epoch, self.config.num_epochs)
        if self.lr_now is not None:
            self.lr_now.fill_(lr)
        else:
            for group in self.optimizer.param_groups:
                group["lr"] = lr

    def device_step(self, with_test: bool, take_step: bool) -> Tensor:
        """[1, 4] metrics of the current weights, on the device (no sync); then one AdamW step."""
        data = self.data
        with_test = with_test and len(data.test_idx) > 0
        terms = self.family.loss_terms(self.all_params, data.labels, data.train_idx, data.test_idx, with_test,
                                       self.arithmetic)
        if take_step:
            terms[0].backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        metrics = [t.detach().to(torch.float64) for t in terms]
        metrics += [torch.full_like(metrics[0], math.nan)] * (4 - len(metrics))
        return torch.stack(metrics)[None]


def train(
    config: VariantConfig,
    results: str | Path = "results",
    device: str = "auto",
    force: bool = False,
    progress: bool = True,
    on_progress: Callable[[int, dict], None] | None = None,
    extend: bool = False,
) -> RunDir:
    """Train `config` into `results/<family>/<variant>/`, resuming an interrupted run.
    `on_progress(epoch, losses)` is called every epoch (on a GPU in batches of LOSS_READ_EVERY
    epochs, when the losses are read back); an exception from it stops training there, leaving
    the run resumable from its last checkpoint (how jobs are cancelled). `extend`: an existing
    run is trained on to `config`'s length (tdw/training/extend.py)."""
    if not force and trained_stacked(RunDir.for_config(results, config)):
        callback = None if on_progress is None else (lambda _member, epoch, row: on_progress(epoch, row))
        return train_stacked([config], results, device, progress=progress, on_progress=callback, extend=extend)[0]
    torch_device = resolve_device(device)
    with ExitStack() as locks:
        opened = open_run(config, results, force, torch_device, progress, locks, extend, trainer="single")
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

    records = LossRecords(config.name)
    diverged: list[DivergedError] = []
    bar = tqdm(
        total=config.num_epochs,
        initial=session.epoch,
        desc=config.name,
        unit="ep",
        disable=not progress,
        dynamic_ncols=True,
    )

    def on_row(_member: int, epoch: int, row: dict) -> bool:
        records.append((epoch, row))
        try:
            check_finite(run, epoch, row)
        except DivergedError as error:
            diverged.append(error)
            return False
        bar.update(1)
        if on_progress is not None:
            on_progress(epoch, row)
        if epoch % 50 == 0:
            bar.set_postfix(**loss_postfix(row), refresh=False)
        return True

    def before_checkpoint(_member: int, _epoch: int) -> pl.DataFrame | None:
        return pl.concat([opened.kept_losses, loss_rows(config.name, records)]) if records else None

    session.run_to(config.final_epoch, [config.checkpoint_epochs], on_row, before_checkpoint,
                   flush_every=1 if torch_device.type == "cpu" else LOSS_READ_EVERY)
    bar.close()
    if diverged:
        mark_diverged(run, opened.kept_losses, records, diverged[0])
        raise diverged[0]
    finish_run(opened, records, time.time() - started)
    return run
