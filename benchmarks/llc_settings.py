"""Whether the `llc` analyzer's SGLD settings hold on a real run: at each chosen checkpoint, the LLC
of all weights with the analyzer's settings, against v2's step (twice as large, 20 burn-in steps)
and against long chains (200 burn-in steps, 200 draws: the plateau of the loss trace, the
reference), in one run.

Usage: python benchmarks/llc_settings.py [--run RUN] [--epochs 2500,5000,12500,24999]
  (default: the published p=113 run in ../shared/runs/p113_seed999)

An estimate is sound when no chain is unsound (`tdw.analysis.llc.sound_chain`; v2's step spiked
on the published run's memorization plateau: NaN) and it reads the reference's plateau within
the chains' spread;
docs/events-and-phases.md quotes what this printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tdw.analysis.llc import LLCEstimate, SGLDSettings, default_nbeta
from tdw.analyzers.llc import components_of, estimate_component, settings_for
from tdw.denormals import flush_denormals_to_zero
from tdw.families import get_family
from tdw.run_dir import RunDir

DEFAULT_RUN = Path(__file__).resolve().parents[2] / "shared" / "runs" / "p113_seed999"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(DEFAULT_RUN))
    parser.add_argument("--epochs", default="2500,5000,12500,24999")
    args = parser.parse_args()
    flush_denormals_to_zero()  # as every compute command runs
    run = RunDir(args.run)
    config = run.read_config()
    family = get_family(config.family)
    data = family.task_data(config)
    n = len(data.train_idx)
    ours = settings_for(n)
    candidates: dict[str, SGLDSettings] = {
        "v2 step": replace(ours, step_size=2 * ours.step_size, burn_in=20),
        "analyzer (v3)": ours,
        "reference": replace(ours, burn_in=200, draws=200),
    }
    print(f"{config.name}: n = {n} train pairs, n_beta {default_nbeta(n):.1f}, "
          f"step {ours.step_size:.3g}, localization {ours.localization:.3g}, {ours.chains} chains")
    print(f"{'epoch':>6} " + " ".join(f"{name:>24}" for name in candidates) + f" {'v3 / reference':>15}")
    for epoch in [int(e) for e in args.epochs.split(",")]:
        weights = run.load_weights(epoch)
        sampled = components_of(family, config, weights)["all"]
        estimates: dict[str, LLCEstimate] = {}
        cells = []
        for name, settings in candidates.items():
            start = time.perf_counter()  # the analyzer's own estimate of all weights, from its seed
            estimates[name] = estimate_component(family, config, data, weights, epoch, 0, sampled, settings)
            seconds = time.perf_counter() - start
            value = "unsound (NaN)" if estimates[name].diverged else f"{estimates[name].llc:.2f} +- {estimates[name].llc_std:.2f}"
            cells.append(f"{value} ({seconds:.0f} s)")
        ratio = estimates["analyzer (v3)"].llc / estimates["reference"].llc
        print(f"{epoch:>6} " + " ".join(f"{cell:>24}" for cell in cells) + f" {ratio:>15.3f}", flush=True)


if __name__ == "__main__":
    main()
