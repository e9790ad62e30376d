"""Synthetic test-loss curves with planted turns, for the turn tests and benchmarks/turn_methods.py.

Each family returns a losses frame (the columns of `losses.parquet`: one train and one test row
per epoch) and the range of epochs in which a researcher looking at the log-scale test loss would
put the turn: from where the fall mathematically begins to where it is plain to see.
Test accuracy is derived from the test loss (>= 0.99 once the loss is below 0.01), as it is on
real runs; train accuracy is 1 from the memorization epoch on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from tdw.run_dir import LOSS_SCHEMA


@dataclass(frozen=True)
class Curve:
    name: str
    losses: pl.DataFrame
    turn_range: tuple[int, int] | None  # None: no turn to find (never groks)


def losses_frame(variant: str, epochs: np.ndarray, test_log_loss: np.ndarray, memorized_at: int,
                 test_accuracy: np.ndarray | None = None) -> pl.DataFrame:
    if test_accuracy is None:
        test_accuracy = np.where(test_log_loss < -2, 1.0, np.clip(0.9 - 0.3 * test_log_loss, 0.01, 0.98))
    train_accuracy = np.where(epochs >= memorized_at, 1.0, 0.5)
    n = len(epochs)
    frame = pl.DataFrame({
        "variant": [variant] * (2 * n),
        "epoch": np.concatenate([epochs, epochs]),
        "split": ["train"] * n + ["test"] * n,
        "loss": np.concatenate([np.full(n, 1e-4), 10.0 ** test_log_loss]),
        "accuracy": np.concatenate([train_accuracy, test_accuracy]),
    })
    return frame.cast(LOSS_SCHEMA).sort("epoch", "split")


def memorization_bump(epochs: np.ndarray, plateau: float, start: float = 0.68, rise_end: int = 300) -> np.ndarray:
    """log10 test loss rising from `start` at init to `plateau` at `rise_end` (the memorization bump)."""
    return np.where(epochs < rise_end, start + (plateau - start) * epochs / rise_end, plateau)


def plateau_then_superexponential(epochs=25_000, onset=11_000) -> Curve:
    """The published p=113 shape: a slowly drifting plateau, then a fall that keeps accelerating."""
    e = np.arange(epochs)
    log_loss = memorization_bump(e, 1.5) - 0.00002 * np.maximum(e - 300, 0)
    drop = np.maximum(e - onset, 0) / 1000.0
    log_loss = np.maximum(log_loss - 0.04 * drop ** 3.2, -6.5)
    # plain to see once the extra fall reaches 0.2 decades: 0.04 d^3.2 = 0.2 at d = 1.65 (thousand epochs)
    return Curve("plateau, super-exponential drop", losses_frame("superexp", e, log_loss, 150), (onset, onset + 1650))


def flat_then_cliff(epochs=6_000, onset=3_000) -> Curve:
    """A flat plateau, then a straight fall in log space (a knee with one obvious onset)."""
    e = np.arange(epochs)
    log_loss = memorization_bump(e, 1.2, rise_end=200)
    log_loss = np.where(e < onset, log_loss, np.maximum(1.2 - 7.0 * (e - onset) / 600, -5.8))
    return Curve("flat plateau, straight log drop", losses_frame("cliff", e, log_loss, 100), (onset - 60, onset + 60))


def sigmoid_in_linear_space(epochs=8_000, middle=4_000, scale=250.0) -> Curve:
    """Test loss L0 (1 - sigmoid((t - middle) / scale)): the shoulder is the turn."""
    e = np.arange(epochs)
    linear = 20.0 / (1.0 + np.exp((e - middle) / scale)) + 1e-5
    log_loss = np.where(e < 200, 0.68 + (np.log10(20.0) - 0.68) * e / 200, np.log10(linear))
    return Curve("sigmoid in linear space", losses_frame("sigmoid", e, log_loss, 100), (int(middle - 3 * scale), middle))


def two_stage(epochs=10_000, first=3_000, second=6_000) -> Curve:
    """Loss falls by 60% at `first` (a partial generalization), levels off, then falls to zero at
    `second`. The turn is the onset of the sustained fall that ends in grokking: the second one."""
    e = np.arange(epochs)
    linear = 20.0 * (1.0 - 0.6 / (1 + np.exp(-(e - first - 150) / 40.0)) - 0.4 / (1 + np.exp(-(e - second - 150) / 40.0)))
    linear = np.maximum(linear, 1e-6)
    log_loss = np.where(e < 200, 0.68 + (np.log10(20.0) - 0.68) * e / 200, np.log10(linear))
    return Curve("two-stage drop", losses_frame("two_stage", e, log_loss, 100), (second - 150, second + 150))


def with_noise(curve: Curve, sigma: float = 0.08, spikes: int = 12, seed: int = 0) -> Curve:
    """The same curve with log-normal noise on every epoch and a few loss spikes on the plateau."""
    rng = np.random.default_rng(seed)
    frame = curve.losses
    test = frame.filter(pl.col("split") == "test")
    log_loss = np.log10(test["loss"].to_numpy())
    log_loss = log_loss + rng.normal(0, sigma, len(log_loss))
    spike_at = rng.integers(400, int(curve.turn_range[0] * 0.9), spikes)
    log_loss[spike_at] += 0.5
    noisy = test.with_columns(pl.Series("loss", 10.0 ** log_loss))
    frame = pl.concat([frame.filter(pl.col("split") == "train"), noisy]).sort("epoch", "split")
    return Curve(curve.name + ", noisy", frame.with_columns(pl.lit("noisy_" + curve.losses["variant"][0]).alias("variant")),
                 curve.turn_range)


def never_groks(epochs=8_000) -> Curve:
    """Memorizes, then the test loss drifts down but accuracy never reaches 0.99: no turn."""
    e = np.arange(epochs)
    log_loss = memorization_bump(e, 1.4) - 0.00005 * e
    return Curve("never groks", losses_frame("never", e, log_loss, 150, np.full(epochs, 0.05)), None)


def generalizes_at_once(epochs=3_000, fall_end=400) -> Curve:
    """No memorization bump: train and test loss fall together from init; the turn is at the start."""
    e = np.arange(epochs)
    log_loss = np.maximum(0.68 - 6.5 * e / fall_end, -5.8)
    return Curve("generalizes at once", losses_frame("at_once", e, log_loss, fall_end // 2), (0, fall_end // 10))


FAMILIES: tuple[Callable[[], Curve], ...] = (
    plateau_then_superexponential, flat_then_cliff, sigmoid_in_linear_space, two_stage,
    lambda: with_noise(plateau_then_superexponential()), lambda: with_noise(flat_then_cliff(), sigma=0.05),
    never_groks, generalizes_at_once,
)


def all_curves() -> list[Curve]:
    return [family() for family in FAMILIES]


def subsampled(frame: pl.DataFrame, every: int) -> pl.DataFrame:
    """Keep every `every`-th epoch, as a run evaluated less often would have."""
    return frame.filter(pl.col("epoch") % every == 0)
