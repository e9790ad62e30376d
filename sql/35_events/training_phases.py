"""training_phases: each run cut into its phases by a hidden Markov model over several measures.

-- grain: variant, phase
-- Question: when does the run memorize, form its circuit, clean up, and settle (or fail)?
-- Columns: variant, phase (memorization, circuit_formation, cleanup, plateau for a run that
--          groks; memorization, plateau for one that never turns), phase_index (0, 1, ...),
--          start_epoch, end_epoch (the checkpoints where the phase begins and ends), method

Method (hmmlearn, documented in docs/events-and-phases.md): the features are the metric_series
measures every checkpoint of the run has among FEATURES (the losses always; the restricted loss,
the PR of W_in and the specialized fraction when analyzed), interpolated onto a uniform grid of
GRID epochs and standardized. A Gaussian HMM (diagonal covariances) with a left-to-right topology
(it starts in state 0, and each state either stays or moves to the next one) is fitted by EM and
decoded by Viterbi; so each state is one contiguous phase, named by its order. It has 4 states
when the run has a grokking turn (grokking_turn), 2 when it has none. EM starts from state means
of slices of the run: for a run that grokked, cut at its own landmarks (the top of the
memorization bump, the turn, the grok epoch: grokking_turn), else equal slices. From equal slices
EM settled, for runs that grok early in a long run, on states that follow the weight measures'
slow tail and put the whole of grokking inside "memorization"; from the landmarks the states start
where the phases are defined and EM moves the boundaries to where the measures change.
Phases never visited are left out.
"""

from __future__ import annotations

import logging
from itertools import pairwise

import numpy as np
import polars as pl

logging.getLogger("hmmlearn").setLevel(logging.ERROR)  # EM's "not converging" notes on flat stretches

READS = ("metric_series", "grokking_turn")
IMPORTS = ("hmmlearn.hmm",)  # imported where used (0.6 s); an index computing this model imports it ahead
FEATURES = ("log10_train_loss", "log10_test_loss", "log10_restricted_loss", "pr_W_in", "specialized_fraction")
GRID = 200
STAY = 0.95
NAMES = {4: ("memorization", "circuit_formation", "cleanup", "plateau"), 2: ("memorization", "plateau")}
METHOD = "left-to-right Gaussian HMM (hmmlearn) over standardized metric_series"
SCHEMA = {"variant": pl.Utf8, "phase": pl.Utf8, "phase_index": pl.Int32, "start_epoch": pl.Int32, "end_epoch": pl.Int32,
          "method": pl.Utf8}


def left_to_right(n_states: int) -> np.ndarray:
    transitions = np.zeros((n_states, n_states))
    for state in range(n_states):
        transitions[state, state] = STAY if state < n_states - 1 else 1.0
        if state < n_states - 1:
            transitions[state, state + 1] = 1 - STAY
    return transitions


def segment(features: np.ndarray, n_states: int, cuts: list[int] | None = None) -> np.ndarray:
    """The decoded state of each row of `features` [time, feature] (standardized), non-decreasing;
    EM starts from the means of the slices cut at rows `cuts` (n_states - 1 of them), or of equal slices."""
    # IMPORTS: here, not at the top, since every `tdw index` reads this file
    from hmmlearn.hmm import GaussianHMM

    hmm = GaussianHMM(n_components=n_states, covariance_type="diag", n_iter=100, random_state=0,
                      init_params="c", params="mc")  # start and transitions stay left-to-right
    hmm.startprob_ = np.eye(n_states)[0]
    hmm.transmat_ = left_to_right(n_states)
    slices = np.split(features, cuts) if cuts is not None else np.array_split(features, n_states)
    hmm.means_ = np.stack([chunk.mean(axis=0) for chunk in slices])
    hmm.fit(features)
    return hmm.predict(features)


def landmark_cuts(grid: np.ndarray, landmarks: tuple | None, n_states: int) -> list[int] | None:
    """Grid rows at `landmarks` (epochs) when there is one per boundary and each slice keeps two
    rows or more; else None (equal slices)."""
    if landmarks is None or len(landmarks) != n_states - 1 or any(mark is None for mark in landmarks):
        return None
    cuts = [int(c) for c in np.searchsorted(grid, landmarks)]
    bounds = [0, *cuts, len(grid)]
    return cuts if all(b - a >= 2 for a, b in pairwise(bounds)) else None


def phases(epochs: np.ndarray, series: np.ndarray, n_states: int,
           landmarks: tuple | None = None) -> list[tuple[str, int, int, int]]:
    """(phase, index, start_epoch, end_epoch) from features [checkpoint, feature] at `epochs`;
    `landmarks`: epochs where EM's initial slices are cut (see the module's docstring)."""
    grid = np.linspace(epochs[0], epochs[-1], GRID)
    features = np.stack([np.interp(grid, epochs, column) for column in series.T], axis=1)
    scale = features.std(axis=0)
    features = (features - features.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    states = segment(features, n_states, landmark_cuts(grid, landmarks, n_states))
    names = NAMES[n_states]
    found = []
    for state in sorted(set(states.tolist())):
        where = np.flatnonzero(states == state)
        start = int(epochs[np.searchsorted(epochs, grid[where[0]])])
        end = int(epochs[min(len(epochs) - 1, np.searchsorted(epochs, grid[where[-1]]))])
        found.append((names[state], state, start, end))
    return found


def model(con, variants: list[str] | None) -> pl.DataFrame:
    where = "" if variants is None else "and variant in (select unnest($variants))"
    params = {"variants": variants} if variants is not None else None
    series = con.sql(f"select variant, metric, epoch, value from metric_series where metric in "
                     f"{tuple(FEATURES)} and isfinite(value) {where} order by variant, epoch", params=params).pl()
    marks = {variant: rest for variant, *rest in con.sql(
        "select variant, turn_epoch, peak_epoch, grok_epoch from grokking_turn").fetchall()}
    rows = []
    for (variant,), part in series.group_by(["variant"], maintain_order=True):
        wide = part.pivot(on="metric", index="epoch", values="value").sort("epoch")
        columns = [m for m in FEATURES if m in wide.columns and wide[m].null_count() == 0]
        if wide.height < 8 or not columns:
            continue
        turn, peak, grok = marks.get(variant, (None, None, None))
        n_states = 4 if turn is not None else 2
        landmarks = (peak, turn, grok) if n_states == 4 else None
        for phase, index, start, end in phases(wide["epoch"].to_numpy(), wide.select(columns).to_numpy(), n_states,
                                               landmarks):
            rows.append((variant, phase, index, start, end, f"{METHOD}: {', '.join(columns)}"))
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")
