"""Several runs of one shape trained as one model: weights stacked on a leading axis, one
forward and one backward for all of them (the family's loss `torch.func.vmap`-ed over the
stack), and AdamW applied to the stacks with each run's own lr, weight decay, betas and schedule.

Why: a p=113 step is a few dozen small kernels, so on a GPU one run leaves the device mostly
idle and S stacked runs cost little more than one. On a CPU the arithmetic dominates and
separate worker processes do as well (benchmarks/sweep_throughput.py has the figures).

Each member keeps its own run directory in the ordinary format (safetensors weights and
optimizer state, losses, metadata), so analysis, the warehouse and `tdw train` see plain runs.
Members may differ in seed, data seed, lr, weight decay, betas and schedule; everything that
sets a tensor's shape or the epoch loop must match (`stack_key`). A member's row of every
stacked matmul is computed exactly as in a stack of one, so resuming or densifying a member on
its own (a stack of one) reproduces its weights bit for bit on a CPU.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import polars as pl
import torch
from torch import Tensor
from tqdm.auto import tqdm

from tdw.config import VariantConfig
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.model.fast_forward import without_zero_biases
from tdw.run_dir import RunDir
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
    mark_diverged,
    open_run,
)
from tdw.training.optimizer import trainable_parameters

# What may differ between members of one stack; everything else must be equal.
PER_MEMBER_FIELDS = frozenset({"seed", "data_seed", "lr", "weight_decay", "betas", "lr_schedule", "name",
                               "checkpoint_epochs"})
ADAM_EPS = 1e-8  # torch.optim.AdamW's default, which the single-run trainer uses


def stack_key(config: VariantConfig) -> tuple:
    """Configs with equal keys can be trained as one stack."""
    return tuple(sorted((k, repr(v)) for k, v in config.to_dict().items() if k not in PER_MEMBER_FIELDS))


def member_column(values: list[float], device: torch.device) -> Tensor:
    return torch.tensor(values, dtype=torch.float64, device=device)


class StackedSession(EpochLoop):
    """S runs' weights, AdamW state and data splits, all at one epoch. A stack of one is how
    densify replays a stacked run with the arithmetic that wrote it (`rows`: the stack size to pad
    to on a GPU)."""

    def __init__(self, runs: list[RunDir], configs: list[VariantConfig], device: torch.device,
                 rows: int | None = None) -> None:
        """`rows` > len(runs) pads the stack with ghost copies of the first member, trained but
        never saved. On a GPU the matmul kernels depend on the stack's size, so a run resumes
        or replays bit for bit only in a stack of the size it was trained in (its metadata's
        `stack_size`); a cancelled member is then replaced by a ghost instead of shrinking it."""
        keys = {stack_key(c) for c in configs}
        if len(keys) != 1:
            raise TdwError("stacked training: the runs differ in shape or schedule length; train them separately")
        self.runs, self.configs, self.device = list(runs), list(configs), device
        self.rows = max(rows or 0, len(configs))
        self.fixed_rows = rows is not None
        row_configs = self.configs + [self.configs[0]] * (self.rows - len(self.configs))
        self.family = get_family(configs[0].family)
        models = [self.family.build_model(c) for c in row_configs]
        trainable = trainable_parameters(models[0], configs[0])
        states = [m.state_dict() for m in models]
        self.params = {name: torch.stack([s[name] for s in states]).to(device) for name in states[0]}
        self.trainable = [name for name in self.params if name in trainable]
        for name in self.trainable:
            self.params[name].requires_grad_(True)
        self.exp_avg = {n: torch.zeros_like(self.params[n]) for n in self.trainable}
        self.exp_avg_sq = {n: torch.zeros_like(self.params[n]) for n in self.trainable}
        self.step = 0
        data = [self.family.task_data(c) for c in row_configs]
        if any(not torch.equal(d.labels, data[0].labels) for d in data):
            raise TdwError("stacked training: the runs' labels differ")
        self.labels = data[0].labels.to(device)
        self.train_idx = torch.stack([d.train_idx for d in data]).to(device)
        self.test_idx = torch.stack([d.test_idx for d in data]).to(device)
        self.weight_decay = member_column([c.weight_decay for c in row_configs], device)
        self.beta1 = member_column([c.betas[0] for c in row_configs], device)
        self.beta2 = member_column([c.betas[1] for c in row_configs], device)
        self.checkpoints = [set(c.checkpoint_epochs) for c in configs]
        # [epoch, row] learning rates, on the device up front: no host-to-device copy per step
        self.lr_table = torch.tensor(
            [[c.lr * c.lr_schedule.factor(e, c.num_epochs) for c in row_configs] for e in range(configs[0].num_epochs)],
            dtype=torch.float64, device=device)
        self.epoch = 0
        # on CUDA the step reads its lr and step count from device tensors, so it can be a graph
        graphed = graphs_wanted(device)
        self.lr_now = self.lr_table[0].clone() if graphed else None
        self.step_now = torch.zeros((), dtype=torch.float64, device=device) if graphed else None
        self.graphs = EpochGraphs(self) if graphed else None
        self.host_copy: dict[str, dict[str, Tensor]] = {}  # the stacks on the host, at host_copy_epoch
        self.host_copy_epoch: int | None = None
        self.note_unread_biases()

    def note_unread_biases(self) -> None:
        """The frozen biases that are zero in every row, which the loss is not given (the fast
        forward skips adding them, bit-identically: `without_zero_biases`); redone whenever the
        stacks change (restore, keep)."""
        read = without_zero_biases(self.params, keep=frozenset(self.trainable))
        self.unread_biases = frozenset(self.params) - frozenset(read)

    @property
    def size(self) -> int:
        return len(self.runs)

    @property
    def config(self) -> VariantConfig:
        """What the members share and the loop reads (eval_every, final_epoch)."""
        return self.configs[0]

    def member_run(self, row: int) -> RunDir:
        return self.runs[row]

    def restore(self, epoch: int) -> None:
        """Every member from its checkpoint at `epoch` (epoch 0 without one: the initialization)."""
        for i, run in enumerate(self.runs):
            if epoch == 0 and not run.checkpoint_path(0).exists():
                continue
            weights = run.load_weights(epoch, self.device)
            state = run.load_optimizer(epoch, self.device)
            if state is None:
                raise TdwError(f"{run.path}: checkpoint {epoch} has no optimizer state; cannot continue from it")
            with torch.no_grad():
                for name, value in weights.items():
                    self.params[name][i].copy_(value)
                for name in self.trainable:
                    if f"{name}.exp_avg" in state:
                        self.exp_avg[name][i].copy_(state[f"{name}.exp_avg"])
                        self.exp_avg_sq[name][i].copy_(state[f"{name}.exp_avg_sq"])
        with torch.no_grad():  # ghosts copy the first member
            for table in (self.params, self.exp_avg, self.exp_avg_sq):
                for value in table.values():
                    value[len(self.runs):] = value[0]
        self.step = epoch  # one AdamW step per epoch, from the initialization
        self.host_copy_epoch = None
        self.note_unread_biases()
        if self.step_now is not None:
            self.step_now.fill_(epoch)
        self.epoch = epoch

    def checkpoint_tensors(self, i: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Host copies of member i's weights and AdamW state now. The stacks are copied to the
        host once per epoch (one transfer for all members saving at it), then sliced."""
        if self.host_copy_epoch != self.epoch:
            self.host_copy = {table: {name: value.detach().to("cpu", copy=True) for name, value in values.items()}
                              for table, values in (("w", self.params), ("m", self.exp_avg), ("v", self.exp_avg_sq))}
            self.host_copy_epoch = self.epoch
        host = self.host_copy
        weights = {name: value[i].clone() for name, value in host["w"].items()}
        state: dict[str, Tensor] = {}
        if self.step > 0:  # torch's AdamW has no state before its first step; keep the same files
            for name in self.trainable:
                state[f"{name}.step"] = torch.tensor(float(self.step))
                state[f"{name}.exp_avg"] = host["m"][name][i].clone()
                state[f"{name}.exp_avg_sq"] = host["v"][name][i].clone()
        return weights, state

    def keep(self, members: list[int]) -> None:
        """Drop every member not listed (a cancelled job); the rest train on unchanged."""
        if not members:
            self.runs, self.configs, self.checkpoints = [], [], []
            return
        rows = members + [members[0]] * (self.rows - len(members)) if self.fixed_rows else members
        self.rows = len(rows)
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        for table in (self.params, self.exp_avg, self.exp_avg_sq):
            for name in table:
                table[name] = table[name].detach().index_select(0, index).requires_grad_(
                    table is self.params and name in self.trainable)
        self.train_idx, self.test_idx = self.train_idx[index], self.test_idx[index]
        self.weight_decay, self.beta1, self.beta2 = (t[index] for t in (self.weight_decay, self.beta1, self.beta2))
        self.lr_table = self.lr_table[:, index]
        if self.lr_now is not None:
            self.lr_now = self.lr_table[self.epoch].clone()
        self.runs = [self.runs[i] for i in members]
        self.configs = [self.configs[i] for i in members]
        self.checkpoints = [self.checkpoints[i] for i in members]
        self.host_copy_epoch = None
        self.note_unread_biases()
        if self.graphs is not None:
            self.graphs.forget()  # the stacks are new tensors

    def graph_tensors(self) -> list[Tensor]:
        return [*self.params.values(), *self.exp_avg.values(), *self.exp_avg_sq.values(), self.step_now]

    def stage_epoch(self) -> None:
        if self.lr_now is not None:
            self.lr_now.copy_(self.lr_table[self.epoch])

    def advance(self) -> None:
        self.step += 1
        self.epoch += 1

    def device_step(self, with_test: bool, take_step: bool) -> Tensor:
        """[member, 4] float64 (train loss, train acc, test loss, test acc; NaN when not
        evaluated) of the current weights; then one AdamW step if asked."""
        loss = partial(self.family.loss_terms, with_test=with_test)
        params = {name: value for name, value in self.params.items() if name not in self.unread_biases}
        terms = torch.func.vmap(loss, in_dims=(0, None, 0, 0))(params, self.labels, self.train_idx, self.test_idx)
        if take_step:
            terms[0].sum().backward()  # members share no weight: each gets its own loss's gradient
            self.adamw_step(self.lr_table[self.epoch] if self.lr_now is None else self.lr_now)
        metrics = [t.detach()[: self.size] for t in terms]
        if not with_test:
            metrics += [torch.full_like(metrics[0], math.nan)] * 2
        return torch.stack(metrics, dim=1)

    @torch.no_grad()
    def adamw_step(self, lr: Tensor) -> None:
        """torch.optim.AdamW's update (decoupled weight decay, bias-corrected moments), with a
        column of hyper-parameters per member broadcast over each stacked weight. The step count
        is `self.step` + 1 (a Python number) or, on CUDA, the device counter `step_now`."""
        if self.step_now is None:
            step = self.step + 1
        else:
            step = self.step_now.add_(1)
        bias_correction1 = 1 - self.beta1**step
        bias_correction2_sqrt = (1 - self.beta2**step).sqrt()
        for name in self.trainable:
            param, grad = self.params[name], self.params[name].grad
            shape = (-1,) + (1,) * (param.dim() - 1)
            column = lambda t, dtype=param.dtype, shape=shape: t.to(dtype).view(shape)
            self.exp_avg[name].lerp_(grad, column(1 - self.beta1))
            self.exp_avg_sq[name].mul_(column(self.beta2)).addcmul_(grad, grad * column(1 - self.beta2))
            param.mul_(column(1 - lr * self.weight_decay))
            denom = (self.exp_avg_sq[name].sqrt() / column(bias_correction2_sqrt)).add_(ADAM_EPS)
            param.addcdiv_(self.exp_avg[name] * column(-lr / bias_correction1), denom)
            param.grad = None


MemberCallback = Callable[[int, int, dict], None]


def train_stacked(
    configs: list[VariantConfig],
    results: str | Path = "results",
    device: str = "auto",
    progress: bool = True,
    on_progress: MemberCallback | None = None,
    cancelled: Callable[[int], bool] | None = None,
    flush_every: int | None = None,
    fixed_rows: bool | None = None,
    extend: bool = False,
) -> list[RunDir]:
    """Train `configs` as one stack, each into its own run directory, resuming interrupted runs
    (with `extend`, training existing runs on to their configs' length).

    `on_progress(member, epoch, losses)` reports each member's epochs; on a GPU they arrive in
    batches of `flush_every` epochs (default 50), since reading a loss waits for the device.
    `cancelled(member)`, asked after each batch, drops that member; its run stays resumable
    from its last checkpoint. Complete runs are skipped; returns every member's run.
    `fixed_rows` (default: on a GPU) keeps the stack's size through drops and resumes
    (see StackedSession)."""
    torch_device = resolve_device(device)
    all_runs = [RunDir.for_config(results, c) for c in configs]
    with ExitStack() as locks:
        return train_stack_locked(configs, results, torch_device, progress, on_progress, cancelled, flush_every,
                                  fixed_rows, all_runs, locks, extend)


def train_stack_locked(configs, results, torch_device, progress, on_progress, cancelled, flush_every, fixed_rows,
                       all_runs: list[RunDir], locks: ExitStack, extend: bool = False) -> list[RunDir]:
    """train_stacked's body, with every member's run lock held on `locks`."""
    opened: list[OpenedRun] = []
    position: list[int] = []  # each opened member's index in `configs`, for the callbacks
    for index, config in enumerate(configs):
        member = open_run(config, results, False, torch_device, progress, locks, extend, trainer="stacked")
        if member is not None:
            position.append(index)
            opened.append(member)
    if not opened:
        return all_runs
    rows = None
    if torch_device.type == "cuda" if fixed_rows is None else fixed_rows:  # the size they were trained in
        rows = max([len(opened)] + [m.metadata.get("stack_size") or 0 for m in opened if m.resume_epoch is not None])
    session = StackedSession([m.run for m in opened], [m.config for m in opened], torch_device, rows)
    for member in opened:
        member.run.update_metadata(stack_size=session.rows, stacked_with=[m.config.name for m in opened])
    start = min((m.resume_epoch or 0) for m in opened)
    session.restore(start)
    for member in opened:  # a member that was ahead re-trains from `start`; keep only its earlier rows
        member.kept_losses = member.run.read_losses().filter(pl.col("epoch") < start) if start else member.kept_losses.clear()
    flush_every = flush_every or (1 if torch_device.type == "cpu" else LOSS_READ_EVERY)
    records = [LossRecords(m.config.name) for m in opened]
    bar = tqdm(total=opened[0].config.final_epoch + 1, initial=start, desc=f"stack of {len(opened)}", unit="ep",
               disable=not progress, dynamic_ncols=True)
    shown = [start - 1]  # the last epoch the bar counted
    started = time.time()

    def on_row(member: int, epoch: int, row: dict) -> bool:
        records[member].append((epoch, row))
        if on_progress is not None:
            on_progress(position[member], epoch, row)
        if epoch > shown[0]:
            shown[0] = epoch
            bar.update(1)
            if epoch % 50 == 0:
                bar.set_postfix(**loss_postfix(row), refresh=False)
        try:
            check_finite(opened[member].run, epoch, row)
        except DivergedError as error:  # this member leaves the stack; the others go on
            diverged[member] = error
            print(f"tdw train: {error}", file=sys.stderr)
            return False
        return True

    def before_checkpoint(member: int, _epoch: int) -> pl.DataFrame | None:  # its losses so far, written first
        return pl.concat([opened[member].kept_losses, records[member].frame()]) if records[member] else None

    diverged: dict[int, DivergedError] = {}
    try:
        active = session.run_to(opened[0].config.final_epoch, [m.config.checkpoint_epochs for m in opened],
                                on_row, before_checkpoint, flush_every,
                                cancelled=None if cancelled is None else (lambda member: cancelled(position[member])))
    finally:  # after run_to: its background writes of these runs are done
        for member, error in diverged.items():
            mark_diverged(opened[member].run, opened[member].kept_losses, records[member], error)
    bar.close()
    elapsed = time.time() - started
    for member in active:
        finish_run(opened[member], records[member], elapsed)
    return all_runs
