"""trajectory_loops: does a run's path through weight space loop back on itself in the PC2/PC3 plane?

-- grain: variant, basis, group
-- Question: which runs' trajectories form a self-intersecting loop (10 of 11 variants in the
--           notes, never p101/seed999), when does it close, and how large is it?
-- Columns: variant, basis ('own': the run's own PCA, the trajectory analyzer's; or the name of a
--          shared basis the run was fitted into, trajectory_basis), group (the
--          parameter group), points (checkpoints on the path), self_intersects (boolean),
--          loop_start_epoch, loop_close_epoch (the first crossing: the path's segment starting at
--          loop_start_epoch is crossed by the one ending at loop_close_epoch), loop_area (the area
--          enclosed between them, divided by the squared path length), path_length (in PC units),
--          max_excursion_from_start, max_excursion_from_end (largest distance from the first or
--          last point, divided by the path length)

Every measure is invariant to rotating, reflecting or scaling the plane, so runs whose PCAs differ by
a rotation (each run's PCA is its own) get the same values: the comparable part of "a loop" across
variants. In a shared basis the runs' paths are also drawn in one coordinate system, so their loops
can be overlaid and their positions compared (docs/events-and-phases.md).
"""

from __future__ import annotations

import numpy as np
import polars as pl

READS = ("trajectory", "trajectory_basis")
SCHEMA = {"variant": pl.Utf8, "basis": pl.Utf8, "group": pl.Utf8, "points": pl.Int32, "self_intersects": pl.Boolean,
          "loop_start_epoch": pl.Int32, "loop_close_epoch": pl.Int32, "loop_area": pl.Float64,
          "path_length": pl.Float64, "max_excursion_from_start": pl.Float64, "max_excursion_from_end": pl.Float64}


def first_crossing(points: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    """(i, j, where), i + 1 < j: the earliest-closing pair of path segments [p_i, p_i+1] and
    [p_j, p_j+1] that properly cross (the loop closes on segment j), and the crossing point; or None."""
    a, b = points[:-1], points[1:]
    n = len(a)
    for j in range(2, n):
        p, r = a[:j - 1], b[:j - 1] - a[:j - 1]  # segments 0 .. j-2
        q, s = a[j], b[j] - a[j]
        denominator = r[:, 0] * s[1] - r[:, 1] * s[0]
        offset = q - p
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (offset[:, 0] * s[1] - offset[:, 1] * s[0]) / denominator
            u = (offset[:, 0] * r[:, 1] - offset[:, 1] * r[:, 0]) / denominator
        hits = np.flatnonzero((denominator != 0) & (t > 0) & (t < 1) & (u > 0) & (u < 1))
        if len(hits):
            i = int(hits[-1])
            return i, j, p[i] + t[i] * r[i]
    return None


def shoelace(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def loop_measures(epochs: np.ndarray, points: np.ndarray) -> dict:
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    length = float(steps.sum())
    result = {"points": len(points), "self_intersects": False, "loop_start_epoch": None, "loop_close_epoch": None,
              "loop_area": None, "path_length": length, "max_excursion_from_start": None, "max_excursion_from_end": None}
    if length <= 0 or len(points) < 4:
        return result
    result["max_excursion_from_start"] = float(np.linalg.norm(points - points[0], axis=1).max()) / length
    result["max_excursion_from_end"] = float(np.linalg.norm(points - points[-1], axis=1).max()) / length
    crossing = first_crossing(points)
    if crossing is not None:
        i, j, where = crossing
        loop = np.vstack([where, points[i + 1:j + 1]])  # from the crossing, round, back to it
        result.update(self_intersects=True, loop_start_epoch=int(epochs[i]), loop_close_epoch=int(epochs[j + 1]),
                      loop_area=shoelace(loop) / length**2)
    return result


def model(con, variants: list[str] | None) -> pl.DataFrame:
    where = "" if variants is None else "and variant in (select unnest($variants))"
    params = {"variants": variants} if variants is not None else None
    frame = con.sql(f"select variant, 'own' as basis, \"group\", epoch, component, value from trajectory "
                    f"where component in ('pc2', 'pc3') {where} union all "
                    f"select variant, basis, \"group\", epoch, component, value from trajectory_basis "
                    f"where component in ('pc2', 'pc3') {where}", params=params).pl()
    rows = []
    if frame.height:
        keys = ["variant", "basis", "group"]
        wide = frame.pivot(on="component", index=[*keys, "epoch"], values="value").sort([*keys, "epoch"])
        # a path of 2 checkpoints spans one component (pc3 is never written): no plane, no row
        wide = wide.with_columns(pl.lit(None, pl.Float64).alias(pc) for pc in ("pc2", "pc3") if pc not in wide.columns)
        for (variant, basis, group), part in wide.drop_nulls().group_by(keys, maintain_order=True):
            points = part.select("pc2", "pc3").to_numpy().astype(np.float64)
            rows.append({"variant": variant, "basis": basis, "group": group,
                         **loop_measures(part["epoch"].to_numpy(), points)})
    return pl.DataFrame(rows, schema=SCHEMA)
