"""The trajectory analyzer on a run's checkpoints: its PCA (`tdw.analysis.pca`, an eigendecomposition
of the [N, N] Gram matrix) against the named baseline of `torch.linalg.svd` of the centred
[N, D] points (the analyzer up to session 34), on the same points, in one run.

The trajectory is the one analyzer that reads every checkpoint, so it runs again whenever a run
grows (analyzed while training, densified, extended); on the published run it was 4.4 s of every
such re-analysis. Prints, per parameter group, the median seconds of each PCA over the repeats,
their ratio and the largest coordinate difference, then the whole analyzer (flattening, PCA,
velocity) on the run. Checkpoints are loaded once, before any timing.
Usage: python benchmarks/trajectory_pca.py [--run ../shared/runs/p113_seed999] [--repeats 3]
(without a run: 118 random-walk checkpoints of the published shapes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tdw.analysis.context import RunContext, RunFacts
from tdw.analysis.pca import pca
from tdw.analyzers import all_analyzers
from tdw.analyzers.trajectory import N_COMPONENTS, group_points
from tdw.config import VariantConfig
from tdw.families import get_family
from tdw.run_dir import RunDir

PUBLISHED = Path(__file__).resolve().parents[2] / "shared" / "runs" / "p113_seed999"


def svd_pca(points: torch.Tensor, n_components: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline: the analyzer's PCA through session 34, an SVD of the centred points."""
    centered = points.double() - points.double().mean(0)
    _u, s, vt = torch.linalg.svd(centered, full_matrices=False)
    k = min(n_components, vt.shape[0])
    axes = vt[:k]
    signs = torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True))).flatten()
    signs[signs == 0] = 1
    axes = axes * signs[:, None]
    variance = s.pow(2)
    return centered @ axes.T, variance[:k] / variance.sum().clamp_min(1e-300)


def random_walk(checkpoints: int = 118) -> tuple[VariantConfig, dict[int, dict[str, torch.Tensor]]]:
    """Checkpoints of the published shapes that drift as training does: a random walk from init."""
    config = VariantConfig(p=113)
    weights = get_family(config.family).build_model(config).state_dict()
    generator = torch.Generator().manual_seed(0)
    walk = {}
    for i in range(checkpoints):
        weights = {name: w + 0.01 * torch.randn(w.shape, generator=generator) for name, w in weights.items()}
        walk[i * 100] = weights
    return config, walk


def median_seconds(action, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(PUBLISHED) if PUBLISHED.exists() else None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.run:
        run = RunDir(args.run)
        config = run.read_config()
        checkpoints = {epoch: run.load_weights(epoch) for epoch in run.checkpoint_epochs()}
        source = f"{config.name} ({args.run})"
    else:
        run = None
        config, checkpoints = random_walk()
        source = "a random walk of the published shapes"
    family = get_family(config.family)
    points = group_points(checkpoints.values(), family)
    print(f"{source}: {len(checkpoints)} checkpoints, {points['all'].shape[1]:,} parameters, "
          f"threads={torch.get_num_threads()}, median of {args.repeats}")
    print(f"{'group':<12} {'parameters':>10} {'svd (baseline) s':>17} {'gram s':>8} {'ratio':>7} {'max |coord diff|':>17}")
    total_svd = total_gram = 0.0
    for group, block in points.items():
        svd_s, (svd_coords, _) = median_seconds(lambda block=block: svd_pca(block, N_COMPONENTS), args.repeats)
        gram_s, (coords, _) = median_seconds(lambda block=block: pca(block, N_COMPONENTS), args.repeats)
        total_svd, total_gram = total_svd + svd_s, total_gram + gram_s
        print(f"{group:<12} {block.shape[1]:>10,} {svd_s:>17.3f} {gram_s:>8.3f} {svd_s / gram_s:>6.1f}x "
              f"{(svd_coords - coords).abs().max().item():>17.2e}")
    print(f"{'every group':<12} {'':>10} {total_svd:>17.3f} {total_gram:>8.3f} {total_svd / total_gram:>6.1f}x")
    epochs = sorted(checkpoints)
    facts = RunFacts(run or RunDir("unused"), config, epochs, family)
    facts.weights = checkpoints.__getitem__  # loaded above: the analyzer's own work alone is timed
    analyzer = all_analyzers()["trajectory"]
    whole_s, _ = median_seconds(lambda: analyzer.analyze_run(RunContext(facts, family)), args.repeats)
    print(f"the trajectory analyzer, whole (flatten, PCA per group, velocity): {whole_s:.2f} s; "
          f"its PCA with the baseline's SVD would add {total_svd - total_gram:.2f} s")


if __name__ == "__main__":
    main()
