"""Which turn definition holds on real curves? Four methods side by side, in one run.

Methods (all on log10 test loss smoothed over +-0.5% of the run, in epochs):
  knee-log   the chosen one, `sql/30_marts/grokking_turn.sql` run by DuckDB: Kneedle (Satopaa et
             al. 2011) on the log test loss, the point farthest above the chord from the peak to
             grok with both axes scaled to [0, 1]
  knee-lin   the same on the test loss in linear space
  slope      slope departure: the start of the uninterrupted stretch, ending at the fastest fall,
             where the slope is steeper than 3x the plateau's median slope (and than 2% of the
             fastest, so a flat plateau's noise does not count; never more than 50% of it, so a
             run with no plateau turns at once)
  ruptures   continuous piecewise-linear fit of the log loss between peak and grok with two
             breakpoints (ruptures' dynamic programming with the `clinear` cost); the turn is the
             breakpoint after which the fitted slope is steepest relative to the one before
  curvature  the previous rule: most negative curvature of the smoothed log loss in the stretch
             of negative curvature that ends at the steepest point (a 1%-of-rows window)
Curves: the published p=113 run (../shared/runs), the embedded demo if it has been run
(results/), and the synthetic families of tests/turn_curves.py with planted turns. For each
method and curve: the turn, whether it falls in the planted turn's range (synthetic),
whether it precedes grok, and how far it moves (in % of the run) when the losses are subsampled
to every 10th epoch and when the smoothing window is doubled.

    python benchmarks/turn_methods.py [--p113 ../shared/runs/p113_seed999/losses.parquet] [--demo LOSSES]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import itertools

from tdw.warehouse.turn import grokking_turn
from tests.turn_curves import all_curves, subsampled

REPO = Path(__file__).resolve().parents[1]


def test_curve(losses: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    test = losses.filter(pl.col("split") == "test").sort("epoch")
    return test["epoch"].to_numpy(), np.log10(np.maximum(test["loss"].to_numpy(), 1e-12)), test["accuracy"].to_numpy()


def smooth(epochs: np.ndarray, values: np.ndarray, half_window: float) -> np.ndarray:
    total = np.concatenate([[0.0], np.cumsum(values)])
    lo, hi = np.searchsorted(epochs, epochs - half_window, "left"), np.searchsorted(epochs, epochs + half_window, "right")
    return (total[hi] - total[lo]) / (hi - lo)


def grok_epoch(epochs: np.ndarray, accuracy: np.ndarray) -> int | None:
    if accuracy[-1] < 0.99:
        return None
    misses = epochs[accuracy < 0.99]
    return int(epochs[epochs > (misses.max() if len(misses) else -1)].min())


def prepared(losses: pl.DataFrame, window_scale: float):
    """(epochs, smoothed log loss, slope, the mask of the stretch from the peak to grok, its peak
    epoch, grok epoch), or None when the run never groks."""
    epochs, log_loss, accuracy = test_curve(losses)
    half = max(1.0, round(epochs.max() / 200 * window_scale))
    smoothed = smooth(epochs, log_loss, half)
    slope = smooth(epochs, np.gradient(smoothed, epochs), half)
    grok = grok_epoch(epochs, accuracy)
    if grok is None:
        return None
    inside = epochs <= grok
    peak = epochs[inside][np.argmax(smoothed[inside])]
    stretch = (epochs >= peak) & (epochs <= grok)
    return epochs, smoothed, slope, stretch, peak, grok


def turn_knee_log(losses: pl.DataFrame, window_scale: float) -> int | None:
    return grokking_turn(losses, window_scale)["turn_epoch"][0]


def turn_slope_departure(losses: pl.DataFrame, window_scale: float) -> int | None:
    curve = prepared(losses, window_scale)
    if curve is None:
        return None
    epochs, _, slope, stretch, peak, grok = curve
    fastest_i = np.where(stretch)[0][np.argmin(slope[stretch])]
    threshold = max(min(3 * np.median(slope[stretch]), 0.02 * slope[fastest_i]), 0.5 * slope[fastest_i])
    i = fastest_i
    while i > 0 and epochs[i - 1] >= peak and slope[i - 1] < threshold:
        i -= 1
    return int(min(epochs[i], grok - 1))


def turn_knee_linear(losses: pl.DataFrame, window_scale: float) -> int | None:
    """Kneedle on the linear-space test loss: between the peak and grok, both axes scaled to
    [0, 1], the point farthest above the chord from the first to the last point."""
    curve = prepared(losses, window_scale)
    if curve is None:
        return None
    epochs, smoothed, _, stretch, _, _ = curve
    x = epochs[stretch]
    y = 10.0 ** smoothed[stretch]
    if len(x) < 2:
        return None
    x_scaled = (x - x[0]) / (x[-1] - x[0])
    y_scaled = (y - y.min()) / max(y.max() - y.min(), 1e-300)
    above = y_scaled - (1 + (y_scaled[-1] - 1) * x_scaled)
    return int(x[:-1][np.argmax(above[:-1])])


def turn_ruptures(losses: pl.DataFrame, window_scale: float) -> int | None:
    import ruptures

    curve = prepared(losses, window_scale)
    if curve is None:
        return None
    epochs, smoothed, _, stretch, peak, grok = curve
    x, y = epochs[stretch], smoothed[stretch]
    if len(x) < 8:
        return int(peak)
    keep = np.unique(np.linspace(0, len(x) - 1, min(len(x), 400)).astype(int))  # dynamic programming is O(n^2)
    x, y = x[keep], y[keep]
    signal = np.column_stack([y, x.astype(float)])  # clinear wants the signal and its abscissa
    breaks = ruptures.Dynp(model="clinear", min_size=3, jump=1).fit(signal).predict(n_bkps=2)[:-1]
    bounds = [0, *breaks, len(x) - 1]
    slopes = [(y[b] - y[a]) / max(x[b] - x[a], 1) for a, b in itertools.pairwise(bounds)]
    # the breakpoint where the fall steepens the most
    best = max(range(len(breaks)), key=lambda i: slopes[i] - slopes[i + 1])
    return int(min(x[breaks[best]], grok - 1))


def turn_curvature(losses: pl.DataFrame, window_scale: float) -> int | None:
    epochs, log_loss, accuracy = test_curve(losses)
    grok = grok_epoch(epochs, accuracy)
    if grok is None:
        return None
    k = max(1, int(len(epochs) // 100 * window_scale))  # the old 1%-of-rows window
    smoothed = smooth(np.arange(len(epochs)), log_loss, k)
    slope = np.gradient(smoothed, epochs)
    curvature = np.gradient(slope, epochs)
    inside = epochs <= grok
    peak_i = int(np.argmax(np.where(inside, smoothed, -np.inf)))
    search = (epochs >= epochs[peak_i]) & (epochs <= grok + (epochs.max() - grok) // 10)
    steepest_i = np.where(search)[0][np.argmin(slope[search])]
    i = steepest_i
    while i > peak_i and curvature[i - 1] < 0:
        i -= 1
    window = slice(i, steepest_i + 1)
    return int(epochs[window][np.argmin(curvature[window])])


METHODS = {"knee-log": turn_knee_log, "knee-lin": turn_knee_linear, "slope": turn_slope_departure,
           "ruptures": turn_ruptures, "curvature": turn_curvature}


def curves(p113: Path, demo: Path) -> list[tuple[str, pl.DataFrame, tuple[int, int] | None, bool]]:
    """(name, losses, the planted turn's range or None, whether a turn is expected)."""
    found = []
    if p113.exists():
        found.append(("published p=113 run", pl.read_parquet(p113), None, True))
    if demo.exists():
        found.append(("demo p=53 run", pl.read_parquet(demo), None, True))
    for c in all_curves():
        found.append((c.name, c.losses, c.turn_range, c.turn_range is not None))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p113", type=Path, default=REPO.parent / "shared/runs/p113_seed999/losses.parquet")
    parser.add_argument("--demo", type=Path, default=REPO / "results/modular_addition/p53_seed999/losses.parquet",
                        help="the embedded demo's losses (made by `make demo`)")
    args = parser.parse_args()
    rows = []
    score = {m: {"planted_hits": 0, "planted_total": 0, "before_grok": 0, "with_grok": 0, "max_shift": 0.0} for m in METHODS}
    for name, losses, planted, expected in curves(args.p113, args.demo):
        epochs = losses["epoch"]
        span = max(int(epochs.max() - epochs.min()), 1)
        grok = grokking_turn(losses)["grok_epoch"][0]
        for method, find in METHODS.items():
            turn = find(losses, 1.0)
            shift_sub = shift_win = None
            if turn is not None:
                sub, wide = find(subsampled(losses, 10), 1.0), find(losses, 2.0)
                shift_sub = abs(sub - turn) / span * 100 if sub is not None else float("inf")
                shift_win = abs(wide - turn) / span * 100 if wide is not None else float("inf")
                score[method]["max_shift"] = max(score[method]["max_shift"], shift_sub, shift_win)
            if grok is not None:
                score[method]["with_grok"] += 1
                score[method]["before_grok"] += int(turn is not None and turn < grok)
            error = ""
            if planted is not None:
                score[method]["planted_total"] += 1
                hit = turn is not None and planted[0] <= turn <= planted[1]
                score[method]["planted_hits"] += int(hit)
                error = f"{planted[0]}..{planted[1]}" + ("" if hit else " MISS")
            elif not expected:
                error = "ok" if turn is None else "MISS (no turn expected)"
            rows.append((name, method, turn, grok, error,
                         "" if shift_sub is None else f"{shift_sub:.2f}%", "" if shift_win is None else f"{shift_win:.2f}%"))
    print(f"{'curve':42s} {'method':10s} {'turn':>7s} {'grok':>7s} {'planted':>16s} {'subsample x10':>14s} {'window x2':>10s}")
    for name, method, turn, grok, error, s1, s2 in rows:
        print(f"{name:42s} {method:10s} {turn!s:>7s} {grok!s:>7s} {error:>16s} {s1:>14s} {s2:>10s}")
    print()
    print(f"{'method':10s} {'planted turns found':>20s} {'turn < grok':>12s} {'largest shift':>14s}")
    for method, s in score.items():
        print(f"{method:10s} {s['planted_hits']:>11d} of {s['planted_total']:<6d} {s['before_grok']:>5d} of {s['with_grok']:<4d} {s['max_shift']:>13.2f}%")


if __name__ == "__main__":
    main()
