"""The grokking turn (sql/30_marts/grokking_turn.sql) on planted, hand-computed and real curves.

Runs the warehouse's own SQL through `tdw.warehouse.turn.grokking_turn` on a real in-memory
DuckDB. The published p=113 run's losses are read from ../shared/runs (CI has it beside the clone).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from turn_curves import (
    FAMILIES,
    flat_then_cliff,
    losses_frame,
    plateau_then_superexponential,
    subsampled,
)

from tdw.warehouse.turn import grokking_turn

PUBLISHED_LOSSES = Path(__file__).resolve().parents[2] / "shared/runs/p113_seed999/losses.parquet"


def turn_of(losses: pl.DataFrame, window_scale: float = 1.0) -> dict:
    return grokking_turn(losses, window_scale).row(0, named=True)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f().name)
def test_planted_turns_are_found_and_precede_grok(family):
    curve = family()
    row = turn_of(curve.losses)
    if curve.turn_range is None:
        assert row["turn_epoch"] is None and row["grok_epoch"] is None
        return
    low, high = curve.turn_range
    assert low <= row["turn_epoch"] <= high, row
    assert row["turn_epoch"] < row["grok_epoch"]
    assert row["turn_to_grok"] == row["grok_epoch"] - row["turn_epoch"]


def test_a_hand_computed_corner_is_the_turn():
    """log10 loss flat at 1 for epochs 0..100, then straight down to -4 at 200 and flat after.
    Grok: accuracy is 1 once the loss is below 0.01, from epoch 161 on. With a half-window of 1
    epoch, the chord from the peak (epoch 0) to grok lies furthest below the curve at the corner:
    above-chord heights 0.6149, 0.6157, 0.6109 at epochs 99, 100, 101 (by hand)."""
    epochs = np.arange(300)  # last epoch 299: half-window round(299 / 200) = 1
    log_loss = np.where(epochs <= 100, 1.0, np.maximum(1.0 - 5.0 * (epochs - 100) / 100, -4.0))
    row = turn_of(losses_frame("corner", epochs, log_loss, memorized_at=20))
    assert row["grok_epoch"] == 161 and row["peak_epoch"] == 0
    assert row["turn_epoch"] == 100


@pytest.mark.parametrize("family", [plateau_then_superexponential, flat_then_cliff], ids=["superexp", "cliff"])
def test_turn_holds_when_losses_are_subsampled_or_smoothed_twice_as_much(family):
    losses = family().losses
    span = losses["epoch"].max()
    turn = turn_of(losses)["turn_epoch"]
    assert abs(turn_of(subsampled(losses, 10))["turn_epoch"] - turn) <= 0.01 * span
    assert abs(turn_of(losses, 2.0)["turn_epoch"] - turn) <= 0.01 * span
    assert abs(turn_of(losses, 0.5)["turn_epoch"] - turn) <= 0.01 * span


def test_published_run_turns_where_the_test_loss_has_begun_to_fall():
    losses = pl.read_parquet(PUBLISHED_LOSSES)
    row = turn_of(losses)
    test = losses.filter(pl.col("split") == "test")
    at = dict(zip(test["epoch"].to_list(), test["loss"].to_list()))
    accuracy = dict(zip(test["epoch"].to_list(), test["accuracy"].to_list()))
    assert row["grok_epoch"] == 14847 and row["memorization_epoch"] < 200
    turn = row["turn_epoch"]
    assert 10_000 < turn < row["grok_epoch"] - 1000, row
    # the fall has begun: below the plateau (22.6 at 10k) and still far from generalized
    assert at[turn] < 0.8 * at[10_000] and accuracy[turn] < 0.5
    # the answer does not move with the run's length (the old rule said 14873 at 17,750 epochs)
    assert abs(turn_of(losses.filter(pl.col("epoch") <= 17_750))["turn_epoch"] - turn) <= 250
    assert abs(turn_of(subsampled(losses, 10))["turn_epoch"] - turn) <= 250
    assert abs(turn_of(losses, 2.0)["turn_epoch"] - turn) <= 250
