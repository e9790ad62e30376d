"""The local learning coefficient (LLC), estimated with SGLD as Lau et al. (2023) and devinterp do.

The LLC lambda(w*) measures how many effective dimensions the loss landscape has around a trained
point w*: a regular model with d parameters has d/2; degenerate directions (redundant weights, a
circuit that does not use a part of the network) lower it. Across checkpoints it tracks how much the
model "uses", which is why developmental interpretability reads it over training (memorization
raises it, the Fourier circuit's cleanup lowers it).

Estimator: sample w from the tempered posterior localized at w*,
    p(w) ~ exp(-n_beta * L(w) - gamma/2 * ||w - w*||^2),
with SGLD, and report lambda_hat = n_beta * (mean over draws of L(w_t) - L(w*)). One SGLD step is
    w <- w - (eps/2) * (n_beta * grad L_batch(w) + gamma * (w - w*)) + sqrt(eps) * N(0, I),
the same update, in the same order of operations and noise draws, as devinterp's `SGLD` optimizer
(tests/test_llc.py runs both on one model with one noise generator and gets the same chain).
L is the family's training loss (mean cross entropy) on a batch of training pairs; n_beta
defaults to m / log(m) for a batch of m (devinterp's `default_nbeta`).

Why our own: devinterp 2.x's estimator drags in datasets, transformers, xarray and zarr (hundreds
of MB) to loop over a dataloader; what the estimate needs is the update above and a loss, and the
family's pure `loss_terms` already is one. devinterp's sampler is installed without its
dependencies for the tests, as the reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tdw.deferred_imports import torch

if TYPE_CHECKING:
    from torch import Tensor

# A chain thrown about by a step too large for the basin's sharpest directions shows it in spikes:
# a few draws far above the rest lift its mean draw loss above its median. Unsound: the mean more
# than SPIKE_NATS above the median, with a draw more than SPIKE_RATIO times the median's rise above
# the checkpoint's loss. Measured (docs/events-and-phases.md): sound chains' mean and median differ
# by at most 0.03 nat from p=23 to p=113, and by 0.11 at p=13 (n_beta 19, where the draws spread
# widely), whose largest draw rises 1.9 times the median; unstable chains' by 0.4 to 5 nats, with
# draws 3.8 to 34 times the median's rise.
SPIKE_NATS = 0.1
SPIKE_RATIO = 2.5

# (params, batch rows or None) -> mean loss; a string, since torch is imported where first used
LossFunction = Callable[[dict[str, "Tensor"], "Tensor | None"], "Tensor"]


@dataclass(frozen=True)
class SGLDSettings:
    """The sampler's hyper-parameters (documented in docs/events-and-phases.md, with how they were chosen)."""

    step_size: float = 1e-4  # epsilon
    localization: float = 100.0  # gamma
    chains: int = 2
    draws: int = 100  # SGLD steps per chain, each one a draw
    burn_in: int = 0  # steps per chain before the draws
    batch_size: int | None = None  # None: the full batch every step
    nbeta: float | None = None  # None: m / log m for a batch of m


@dataclass(frozen=True)
class LLCEstimate:
    llc: float  # mean over chains
    llc_std: float  # standard deviation across chains (NaN with one chain)
    chain_llcs: tuple[float, ...]
    init_loss: float
    mean_loss: float
    nbeta: float
    diverged: bool  # a chain is unsound (`sound_chain`): llc is NaN


def default_nbeta(batch: int) -> float:
    return batch / math.log(batch) if batch > 1 else 1.0


def estimate_llc(loss: LossFunction, center: dict[str, Tensor], sampled: list[str], n: int,
                 settings: SGLDSettings = SGLDSettings(), generator: torch.Generator | None = None) -> LLCEstimate:
    """The LLC at `center` over the parameters named in `sampled` (the others stay at `center`).
    `n` is the number of training examples; batches are drawn from range(n) with `generator`,
    which also draws the noise, so an estimate is reproducible from its seed."""
    generator = generator or torch.Generator().manual_seed(0)
    batch = n if settings.batch_size is None or settings.batch_size >= n else settings.batch_size
    nbeta = settings.nbeta if settings.nbeta is not None else default_nbeta(batch)
    fixed = {name: w for name, w in center.items() if name not in sampled}
    with torch.no_grad():
        init_loss = float(loss(center, None))
    chain_means, diverged = [], False
    dimension = sum(center[name].numel() for name in sampled)
    for _chain in range(settings.chains):
        draws = sgld_chain(loss, center, sampled, fixed, n, batch, nbeta, settings, generator)
        sound = len(draws) == settings.draws and sound_chain(draws, init_loss, nbeta, dimension)
        diverged |= not sound
        chain_means.append(float(draws.mean()) if sound else float("nan"))
    chain_llcs = tuple(nbeta * (m - init_loss) for m in chain_means)
    values = torch.tensor(chain_llcs, dtype=torch.float64)
    return LLCEstimate(llc=float(values.mean()), llc_std=float(values.std()) if len(values) > 1 else float("nan"),
                       chain_llcs=chain_llcs, init_loss=init_loss, mean_loss=float(torch.tensor(chain_means).mean()),
                       nbeta=nbeta, diverged=diverged)


def sound_chain(draws: Tensor, init_loss: float, nbeta: float, dimension: int) -> bool:
    """Whether a chain's draw losses make an estimate: all finite, no spikes (the mean above the
    median by more than SPIKE_NATS, with a draw rising SPIKE_RATIO times the median's rise), and a
    rise the `dimension` sampled parameters allow (llc <= d: twice a regular model's d / 2, the most
    any minimum has, which leaves the estimate's noise room).

    Why not a fixed rise: a sound chain rises by llc / n_beta nats, hundredths of a nat on the
    published run (n_beta 464) but 2.3 on a p=23 run (n_beta 47, llc 107), where v2's one-nat
    bound called every trained checkpoint's chains diverged."""
    if not bool(torch.isfinite(draws).all()):
        return False
    mean, median = float(draws.mean()), float(draws.median())
    spiky = mean - median > SPIKE_NATS and float(draws.max()) - init_loss > SPIKE_RATIO * (median - init_loss)
    return not spiky and nbeta * (mean - init_loss) <= dimension


def sgld_chain(loss: LossFunction, center: dict[str, Tensor], sampled: list[str], fixed: dict[str, Tensor], n: int,
               batch: int, nbeta: float, settings: SGLDSettings, generator: torch.Generator) -> Tensor:
    """One chain from `center`: the batch loss at each draw (before that draw's update)."""
    weights = {name: center[name].detach().clone().requires_grad_(True) for name in sampled}
    losses = []
    for step in range(settings.burn_in + settings.draws):
        rows = None if batch == n else torch.randperm(n, generator=generator)[:batch]
        value = loss({**fixed, **weights}, rows)
        grads = torch.autograd.grad(value, [weights[name] for name in sampled])
        value = float(value.detach())
        if step >= settings.burn_in:
            losses.append(value)
        if not math.isfinite(value):
            break
        with torch.no_grad():
            for name, grad in zip(sampled, grads, strict=True):
                w = weights[name]
                drift = grad * nbeta
                drift.add_(w - center[name], alpha=settings.localization)
                # drawn by the CPU generator on every device (one chain from one seed anywhere),
                # then moved to the weights' (a no-op on the CPU)
                noise = torch.normal(mean=0.0, std=1.0, size=drift.size(), generator=generator).to(w.device)
                w.add_(drift, alpha=-0.5 * settings.step_size)
                w.add_(noise, alpha=settings.step_size ** 0.5)
    return torch.tensor(losses, dtype=torch.float64)
