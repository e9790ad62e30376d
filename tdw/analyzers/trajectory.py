"""trajectory: PCA of the flattened parameters over all checkpoints (REQ_029/REQ_032).

Per group (all, and each parameter group the family has: embedding, attention, mlp, unembedding
for the transformer): PC1..PC3 coordinates per epoch and the explained-variance ratios (the PCA
and its sign convention: `tdw.analysis.pca`), and parameter velocity ||theta_i - theta_{i-1}|| /
(epoch_i - epoch_{i-1}), so an uneven checkpoint schedule does not create spikes.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analysis.pca import pca
from tdw.analyzers import register
from tdw.deferred_imports import torch

GROUP_ORDER = ("embedding", "attention", "mlp", "unembedding")  # the usual groups first, others after
N_COMPONENTS = 3


def velocity(points: torch.Tensor, epochs: list[int]) -> torch.Tensor:
    """Distance moved per epoch between consecutive checkpoints; the first checkpoint has none (NaN)."""
    steps = (points[1:].double() - points[:-1].double()).norm(dim=1)
    gaps = torch.tensor(epochs[1:], dtype=torch.float64) - torch.tensor(epochs[:-1], dtype=torch.float64)
    return torch.cat((torch.tensor([float("nan")], dtype=torch.float64), steps / gaps))


def group_points(checkpoints: Iterable[dict[str, torch.Tensor]], family) -> dict[str, torch.Tensor]:
    """{"all" and each parameter group the family has: [checkpoint, flattened parameters]}, the
    tensors in sorted name order (the trajectory analyzer and shared bases flatten alike)."""
    flat: dict[str, list[torch.Tensor]] = {}
    names = group_of = present = None
    for weights in checkpoints:
        if names is None:
            names = sorted(weights)
            group_of = {name: family.parameter_group(name) for name in names}
            present = sorted(set(group_of.values()), key=lambda g: (GROUP_ORDER + (g,)).index(g))
            flat = {g: [] for g in ("all", *present)}
        for group in present:
            flat[group].append(torch.cat([weights[n].flatten() for n in names if group_of[n] == group]))
        flat["all"].append(torch.cat([flat[g][-1] for g in present]))
    return {group: torch.stack(points) for group, points in flat.items()}


@register
class Trajectory(Analyzer):
    name = "trajectory"
    description = "PCA of flattened parameters over checkpoints (all and per group), explained variance, velocity"
    requires = "run"
    depends_on = "checkpoints"
    tables = {
        "trajectory": TableSpec({"group": pl.Utf8, "component": pl.Utf8}),
        "trajectory_variance": TableSpec({"group": pl.Utf8, "component": pl.Int8}),
    }

    def analyze_run(self, ctx):
        flat = group_points((ctx.weights(epoch) for epoch in ctx.epochs), ctx.family)
        rows, variance_rows = [], []
        last = ctx.epochs[-1]
        for group in list(flat):
            points = flat.pop(group).double()  # once: the PCA and the velocity both read float64
            coords, ratio = pca(points, N_COMPONENTS)
            speed = velocity(points, ctx.epochs)
            for i, epoch in enumerate(ctx.epochs):
                for c in range(coords.shape[1]):
                    rows.append((epoch, group, f"pc{c + 1}", float(coords[i, c])))
                rows.append((epoch, group, "velocity", float(speed[i])))
            variance_rows += [(last, group, c + 1, float(r)) for c, r in enumerate(ratio)]
        return {
            "trajectory": pl.DataFrame(rows, schema=["epoch", "group", "component", "value"], orient="row"),
            "trajectory_variance": pl.DataFrame(variance_rows, schema=["epoch", "group", "component", "value"], orient="row"),
        }
