"""What the opt-in `llc` analyzer costs per checkpoint, against the default analyzers (the
baseline: what `tdw analyze RUN` spends per checkpoint), on a real run, in one process.

Usage: python benchmarks/llc_cost.py [--run RUN] [--checkpoints N]
  (default: the published p=113 run in ../shared/runs/p113_seed999, N=3 checkpoints spread over it)

Copies the chosen checkpoints into a scratch run, analyzes them with the default set, then with
`llc`, and prints seconds per checkpoint, the ratio, each checkpoint's estimates per component, and
what the LLC costs for the whole run at a stride (`--epochs 0:E:S`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tdw.analysis.pipeline import AnalysisPipeline
from tdw.run_dir import RunDir

DEFAULT_RUN = Path(__file__).resolve().parents[2] / "shared" / "runs" / "p113_seed999"


def scratch_copy(source: RunDir, epochs: list[int], root: Path) -> RunDir:
    config = source.read_config()
    run = RunDir.for_config(root, config)
    run.path.mkdir(parents=True)
    run.write_config(config)
    run.update_metadata(status="complete")
    for epoch in epochs:
        run.save_checkpoint(epoch, source.load_weights(epoch), None)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(DEFAULT_RUN))
    parser.add_argument("--checkpoints", type=int, default=3)
    args = parser.parse_args()
    source = RunDir(args.run)
    available = source.checkpoint_epochs()
    step = max(1, (len(available) - 1) // max(1, args.checkpoints - 1))
    epochs = sorted(set(available[::step][:args.checkpoints - 1] + available[-1:]))
    root = Path(tempfile.mkdtemp(prefix="tdw-llc-"))
    try:
        run = scratch_copy(source, epochs, root)
        start = time.perf_counter()
        AnalysisPipeline(run.path).run(progress=False)
        default_s = (time.perf_counter() - start) / len(epochs)
        start = time.perf_counter()
        AnalysisPipeline(run.path).run(["llc"], progress=False)
        llc_s = (time.perf_counter() - start) / len(epochs)
        config = run.read_config()
        print(f"{config.name} (p={config.p}), checkpoints {epochs}, threads={torch.get_num_threads()}")
        print(f"default analyzers: {default_s:.2f} s/checkpoint (baseline)")
        print(f"llc:               {llc_s:.2f} s/checkpoint ({llc_s / default_s:.1f}x the baseline)")
        frame = pl.concat([pl.read_parquet(f) for f in sorted((run.artifacts_dir / "llc").glob("*.parquet"))])
        wide = frame.pivot(on="statistic", index=["epoch", "component"], values="value").sort("epoch", "component")
        print(wide.select("epoch", "component", "llc", "llc_std", "init_loss", "mean_loss", "diverged"))
        stride = max(1, available[-1] // 20)
        print(f"the whole run at --epochs 0:{available[-1] + 1}:{stride} (~{len(range(0, available[-1] + 1, stride))} "
              f"checkpoints if dense): ~{len(range(0, available[-1] + 1, stride)) * llc_s / 60:.1f} min")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
