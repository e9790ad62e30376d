"""Sweep throughput: 8 small variants (p=53, 2000 epochs by default) with 1 worker and with 2
workers on the local pool, in one run; variants per minute and the speed-up over 1 worker (the
named baseline). On a GPU machine, pass --device cuda --p 113 for the GPU figures.

A batched trainer (stacked weights, one forward for S seeds of the same p) is not built yet; see
the README for why it is the next step on a GPU and not on this 2-core CPU.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from tdw.config import VariantConfig
from tdw.jobs.sweep import run_sweep


def one(workers: int, args, root: Path) -> float:
    configs = [VariantConfig(p=args.p, seed=seed, num_epochs=args.epochs, train_frac=0.5, lr=3e-3,
                             checkpoint_epochs=tuple(range(0, args.epochs, max(1, args.epochs // 10))))
               for seed in range(args.variants)]
    started = time.perf_counter()
    report = run_sweep(configs, root / f"w{workers}" / "results", root / f"w{workers}" / "warehouse" / "tdw.duckdb",
                       workers=workers, index=False)
    elapsed = time.perf_counter() - started
    assert not report.failed, report.summary()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--p", type=int, default=53)
    parser.add_argument("--epochs", type=int, default=2000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tdw-sweep-bench-"))
    try:
        print(f"{args.variants} variants, p={args.p}, {args.epochs} epochs, local pool, 1 torch thread per worker")
        baseline = None
        for workers in (1, 2):
            elapsed = one(workers, args, root)
            rate = args.variants / elapsed * 60
            baseline = baseline or elapsed
            print(f"  {workers} worker(s): {elapsed:6.1f} s, {rate:5.2f} variants/min, speed-up {baseline / elapsed:.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
