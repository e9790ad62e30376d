"""metric_events: where each of a run's series changes course, found by change-point detection.

-- grain: variant, metric, kind, epoch
-- Question: when does each measure start to rise or fall, and when does it peak?
-- Columns: variant, metric (a metric_series metric), kind (onset: a rise begins; collapse: a fall
--          begins; settle: a rise or fall ends; peak: the series' largest value, inside the run),
--          epoch (the checkpoint at or after the change), magnitude (the change over the segment
--          that starts there, in the metric's units; for a peak, its height above the higher end),
--          series_range (max - min of the series, to compare magnitudes across metrics)

Method (ruptures, the field's change-point library; parameters below, documented in
docs/events-and-phases.md): each series is interpolated onto a uniform grid of GRID points over
its epochs (checkpoints are denser early), scaled to unit range, and segmented by PELT with a
continuous piecewise-linear cost (`clinear`: a change point is where the slope changes; ours,
tdw/analysis/clinear_cost.py, gives ruptures' costs in O(1) per segment) and
penalty PENALTY; segments shorter than MIN_SIZE grid points are not allowed. At each change
point the next segment's rise (or fall) over the series range classifies it: more than
MIN_CHANGE up is an onset, down a collapse, less a settle. A peak is reported when the maximum
lies inside the run (not in its first or last 5%) and stands MIN_CHANGE of the range above both ends.
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

READS = ("metric_series",)
IMPORTS = ("ruptures",)  # imported where used (0.7 s); an index computing this model imports it ahead
GRID = 200
MIN_SIZE = 4
PENALTY = 0.05
MIN_CHANGE = 0.1
MIN_POINTS = 8
SCHEMA = {"variant": pl.Utf8, "metric": pl.Utf8, "kind": pl.Utf8, "epoch": pl.Int32, "magnitude": pl.Float64,
          "series_range": pl.Float64}


def events(epochs: np.ndarray, values: np.ndarray) -> list[tuple[str, int, float]]:
    """(kind, epoch, magnitude) of one series (epochs ascending, no NaN)."""
    # IMPORTS: here, not at the top, since every `tdw index` reads this file
    import ruptures

    from tdw.analysis.clinear_cost import PrefixSumCLinear

    if len(epochs) < MIN_POINTS or epochs[-1] == epochs[0]:
        return []
    low, high = float(values.min()), float(values.max())
    spread = high - low
    if spread <= 0 or not np.isfinite(spread):
        return []
    grid = np.linspace(epochs[0], epochs[-1], GRID)
    signal = (np.interp(grid, epochs, values) - low) / spread
    breaks = ruptures.Pelt(custom_cost=PrefixSumCLinear(), min_size=MIN_SIZE, jump=1).fit(signal).predict(pen=PENALTY)
    found = []
    for start, end in itertools.pairwise(breaks):  # each segment after a change point (the last break is the end)
        change = signal[min(end, GRID) - 1] - signal[start]
        kind = "onset" if change > MIN_CHANGE else "collapse" if change < -MIN_CHANGE else "settle"
        epoch = int(epochs[np.searchsorted(epochs, grid[start])])
        found.append((kind, epoch, float(change * spread)))
    top = int(np.argmax(values))
    inside = 0.05 * len(values) <= top <= 0.95 * len(values)
    height = float(values[top] - max(values[0], values[-1]))
    if inside and height > MIN_CHANGE * spread:
        found.append(("peak", int(epochs[top]), height))
    return found


def model(con, variants: list[str] | None) -> pl.DataFrame:
    where = "" if variants is None else "where variant in (select unnest($variants))"
    series = con.sql(f"select variant, metric, epoch, value from metric_series {where} order by variant, metric, epoch",
                     params={"variants": variants} if variants is not None else None).pl()
    rows = []
    for (variant, metric), part in series.filter(pl.col("value").is_finite()).group_by(["variant", "metric"],
                                                                                      maintain_order=True):
        epochs, values = part["epoch"].to_numpy(), part["value"].to_numpy().astype(np.float64)
        spread = float(values.max() - values.min()) if len(values) else 0.0
        seen = set()
        for kind, epoch, magnitude in events(epochs, values):
            if (kind, epoch) not in seen:  # two changes can snap to one checkpoint
                seen.add((kind, epoch))
                rows.append((variant, metric, kind, epoch, magnitude, spread))
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")
