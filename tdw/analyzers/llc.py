"""llc: the local learning coefficient at each checkpoint, for all weights and per component.

SGLD localized at the checkpoint (tdw/analysis/llc.py), on the training loss; components are
"all" (every trained tensor) and each of the family's "attention" and "mlp" groups (sampled alone,
the rest held at the checkpoint). Statistics per component: `llc` (mean over chains), `llc_std`
(across chains), `init_loss`, `mean_loss` (the chains' mean draw loss), `nbeta`, and `diverged`
(1 when a chain is unsound, `tdw.analysis.llc.sound_chain`: its loss left the finite numbers or
spiked, so the step is too large for that checkpoint, and its llc is NaN), and `step_size`.
Seeded by (variant seed, epoch, component), so reproducible.

Settings: 2 chains of 40 burn-in steps and 60 full-batch draws; step 0.029 / n_beta and
localization 2.06 n_beta (1.5e-4 and 400 at p=53; settings_for below; how they were chosen is in
docs/events-and-phases.md). A run can keep a smaller step (`tdw analyze RUN --llc-step 0.5`, or
`auto`: the largest of 1, 1/2, 1/4, 1/8 whose chains are sound at the chosen checkpoints,
`calibrate_step`), with burn-in as much longer. Cost: 600 forward-backward passes per checkpoint
for a transformer (three components), so it is opt-in: `tdw analyze RUN --analyzers llc --epochs
0:3000:250` (benchmarks/llc_cost.py measures it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analysis.llc import LLCEstimate, SGLDSettings, default_nbeta, estimate_llc
from tdw.analyzers import register
from tdw.config import VariantConfig
from tdw.deferred_imports import torch
from tdw.errors import TdwError
from tdw.families.base import Family, TaskData
from tdw.run_dir import RunDir

if TYPE_CHECKING:
    from torch import Tensor

# Step and localization scale with n_beta (the drift is eps/2 * n_beta * grad): a fixed eps = 3e-4
# left the basin at p=113 (n_beta 464) mid-training. v2's step, 0.058 / n_beta (3e-4 at p=53, where
# it was first calibrated), still left it with all weights sampled on the published run's whole
# memorization plateau (epochs 2,500-10,000); half of it stays in, and reaches the same plateau of
# the loss trace, twice as slowly (the relaxation 2 / (eps gamma) is 33 steps): hence 40 burn-in steps.
STEP_TIMES_NBETA = 0.029
LOCALIZATION_PER_NBETA = 2.06
CHAINS, DRAWS, BURN_IN = 2, 60, 40
# the training arithmetic (tdw.training.arithmetic) whose loss the chains sample, pinned: a chain
# follows its rounding as a run does. v2 sampled 2's float64 cross entropy; v3 samples 3's float32
# one-pass cross entropy, 11-15% faster, the same estimates to six digits (163.2086 against
# 163.2077 for one chain at the published run's epoch 5,000)
LOSS_ARITHMETIC = 3
COMPONENTS = ("attention", "mlp")  # besides "all", when the family has the group

# The setting a run keeps (RunDir.analysis_settings("llc")): its step as a fraction of the default.
STEP_FACTOR = "step_factor"
# `--llc-step auto` tries these, largest first: a smaller step is sounder but needs longer chains.
CALIBRATION_FACTORS = (1.0, 0.5, 0.25, 0.125)


def settings_for(n_train: int, step_factor: float = 1.0) -> SGLDSettings:
    """The sampler's settings for a run of `n_train` training pairs; a smaller `step_factor` gets
    a burn-in as much longer, since the chain relaxes as much more slowly (2 / (eps gamma) steps)."""
    nbeta = default_nbeta(n_train)
    return SGLDSettings(step_size=step_factor * STEP_TIMES_NBETA / nbeta, localization=LOCALIZATION_PER_NBETA * nbeta,
                        chains=CHAINS, draws=DRAWS, burn_in=math.ceil(BURN_IN / step_factor))


def check_step_factor(value: object, where: str) -> float:
    """A step factor (a number in (0, 1]) or one clear line saying what is wrong with it."""
    try:
        factor = float(value)
    except (TypeError, ValueError):
        raise TdwError(f"{where} {value}: expected a number in (0, 1], the step as a fraction of the default, or auto") from None
    if not 0 < factor <= 1:
        raise TdwError(f"{where} {value}: expected a number in (0, 1], the step as a fraction of the default, or auto")
    return factor


def step_factor(settings: dict, source: Path) -> float:
    """The step factor a run's llc settings hold (1, the default, when none), read from `source`."""
    return check_step_factor(settings.get(STEP_FACTOR, 1.0), f"{source}: {STEP_FACTOR}")


def training_loss(family: Family, data: TaskData) -> Callable[[dict[str, Tensor], Tensor | None], Tensor]:
    """The mean training loss the chains sample, of any weights, on all train pairs or some rows of them."""
    def loss(params: dict[str, Tensor], rows: Tensor | None) -> Tensor:
        train = data.train_idx if rows is None else data.train_idx[rows.to(data.train_idx.device)]
        return family.loss_terms(params, data.labels, train, data.test_idx, False, LOSS_ARITHMETIC)[0]
    return loss


def components_of(family: Family, config: VariantConfig, weights: dict[str, Tensor]) -> dict[str, list[str]]:
    """{component: the trained tensors it samples}: "all", then each of the family's groups it has."""
    names = sorted(n for n in weights if config.trains(n))
    groups = {n: family.parameter_group(n) for n in names}
    return {"all": names, **{c: [n for n in names if groups[n] == c] for c in COMPONENTS
                             if any(groups[n] == c for n in names)}}


def estimate_component(family: Family, config: VariantConfig, data: TaskData, weights: dict[str, Tensor], epoch: int,
                       index: int, sampled: list[str], settings: SGLDSettings) -> LLCEstimate:
    """One component's estimate at one checkpoint, seeded by (variant seed, epoch, component index)."""
    generator = torch.Generator().manual_seed((config.seed * 1_000_003 + epoch) * 8 + index)
    center = {n: w.detach() for n, w in weights.items()}
    with torch.enable_grad():  # the pipeline runs analyzers under no_grad
        return estimate_llc(training_loss(family, data), center, sampled, len(data.train_idx), settings, generator)


@dataclass(frozen=True)
class Calibration:
    """`calibrate_step`'s trials: the all-weights estimate at each (factor, epoch), NaN where a
    chain was unsound, and the largest factor sound at every epoch (None if none was)."""

    epochs: list[int]
    trials: dict[float, dict[int, float]]
    chosen: float | None


def calibrate_step(run: RunDir, epochs: list[int], factors: tuple[float, ...] = CALIBRATION_FACTORS) -> Calibration:
    """Try each step factor, largest first, at `epochs` and stop at the first whose chains are sound
    at all of them. All weights only: the other components' weights are a subset of theirs, so
    their sharpest directions are no sharper (a principal submatrix's largest eigenvalue is at
    most the matrix's)."""
    from tdw.families import get_family

    config = run.read_config()
    family = get_family(config.family)
    data = family.task_data(config)
    checkpoints = {epoch: run.load_weights(epoch) for epoch in epochs}
    sampled = components_of(family, config, checkpoints[epochs[0]])["all"]  # every checkpoint has the same tensors
    trials: dict[float, dict[int, float]] = {}
    for factor in factors:
        trials[factor], settings = {}, settings_for(len(data.train_idx), factor)
        for epoch, weights in checkpoints.items():
            estimate = estimate_component(family, config, data, weights, epoch, 0, sampled, settings)
            trials[factor][epoch] = estimate.llc  # NaN when a chain was unsound
            if estimate.diverged:
                break
        if all(not math.isnan(trials[factor].get(epoch, math.nan)) for epoch in epochs):
            return Calibration(list(epochs), trials, factor)
    return Calibration(list(epochs), trials, None)


@register
class LocalLearningCoefficient(Analyzer):
    name = "llc"
    # v2: step and localization scale with n_beta, a chain that leaves the basin flagged; v3: half
    # the step, a chain flagged by its spikes (`sound_chain`), not by a rise of one nat, and the
    # step kept per run (`tdw analyze --llc-step`)
    version = 3
    description = ("local learning coefficient (SGLD) for all weights, attention and MLP: llc, llc_std, losses, "
                   "diverged, step_size")
    requires = "weights"
    default = False
    tables = {"llc": TableSpec({"component": pl.Utf8, "statistic": pl.Utf8})}

    def analyze(self, ctx):
        factor = step_factor(ctx.facts.settings(self.name), ctx.facts.run.analysis_settings_path)
        settings = settings_for(len(ctx.data.train_idx), factor)
        rows = []
        for index, (component, sampled) in enumerate(components_of(ctx.family, ctx.config, ctx.weights).items()):
            estimate = estimate_component(ctx.family, ctx.config, ctx.data, ctx.weights, ctx.epoch, index, sampled, settings)
            stats = {"llc": estimate.llc, "llc_std": estimate.llc_std, "init_loss": estimate.init_loss,
                     "mean_loss": estimate.mean_loss, "nbeta": estimate.nbeta, "diverged": float(estimate.diverged),
                     "step_size": settings.step_size}
            rows += [(component, statistic, value) for statistic, value in stats.items()]
        return {"llc": pl.DataFrame(rows, schema=["component", "statistic", "value"], orient="row")}
