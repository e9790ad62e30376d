"""Sweep throughput: the same sweep of 8 small variants (p=53, 2000 epochs by default) run as
separate jobs on 1 and 2 workers and with the stacked trainer, in one run; variants per minute
and the speed-up over 1 worker, one variant at a time (the named baseline). Each mode trains
into its own fresh results folder through `run_sweep`, exactly as `tdw sweep` does.

It also compares the stacked runs with the separate ones: the largest relative difference of
any weight after one step (rounding: the two trainers order their sums differently), the same
at the end (such differences grow during training, as between any two arithmetic orders), and
the mean final test loss and accuracy of each mode (the outcome a researcher compares).

On a GPU machine: --device cuda --p 113 --train-frac 0.3 (one at a time vs one stack of 8); add
--variants 32 --modes "one stack, 1 worker" for how the stack scales.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from tdw.config import VariantConfig
from tdw.jobs.sweep import run_sweep
from tdw.run_dir import RunDir

MODES = {  # name -> (workers, stack)
    "1 worker": (1, 1),
    "2 workers": (2, 1),
    "stack of 8, 1 worker": (1, 8),
    "2 stacks of 4, 2 workers": (2, 4),
    "one stack, 1 worker": (1, 0),  # all variants in one stack (0: no limit)
}
CPU_MODES = ("1 worker", "2 workers", "stack of 8, 1 worker", "2 stacks of 4, 2 workers")
GPU_MODES = ("1 worker", "stack of 8, 1 worker")


def configs(args) -> list[VariantConfig]:
    every = max(1, args.epochs // 10)
    return [VariantConfig(p=args.p, seed=seed, num_epochs=args.epochs, train_frac=args.train_frac, lr=3e-3,
                          checkpoint_epochs=(1, *range(0, args.epochs, every))) for seed in range(args.variants)]


def run_mode(name: str, args, root: Path) -> tuple[float, Path]:
    workers, stack = MODES[name]
    stack = min(stack or args.variants, args.variants)
    folder = root / name.replace(" ", "_").replace(",", "")
    started = time.perf_counter()
    report = run_sweep(configs(args), folder / "results", folder / "warehouse" / "tdw.duckdb", workers=workers,
                       index=False, device=args.device, stack=stack)
    elapsed = time.perf_counter() - started
    assert not report.failed, report.summary()
    return elapsed, folder / "results"


def largest_relative_difference(a: Path, b: Path, config: VariantConfig, epoch: int) -> float:
    wa = RunDir.for_config(a, config).load_weights(epoch)
    wb = RunDir.for_config(b, config).load_weights(epoch)
    return max(((wa[k] - wb[k]).norm() / wb[k].norm()).item() for k in wa if wb[k].norm() > 0)


def replay_is_exact(results: Path, config: VariantConfig, args_device: str) -> bool:
    """Remove a stacked member's middle checkpoint and densify it back (a stack of one)."""
    from tdw.training.densify import densify

    run = RunDir.for_config(results, config)
    epoch = run.checkpoint_epochs()[len(run.checkpoint_epochs()) // 2]
    original = run.load_weights(epoch)
    run.checkpoint_path(epoch).unlink()
    run.optimizer_path(epoch).unlink(missing_ok=True)
    densify(run.path, [epoch], device=args_device, progress=False)
    replayed = run.load_weights(epoch)
    return all(torch.equal(original[k], replayed[k]) for k in original)


def final_test(results: Path, config: VariantConfig) -> tuple[float, float]:
    losses = RunDir.for_config(results, config).read_losses()
    last = losses.filter((losses["split"] == "test") & (losses["epoch"] == config.final_epoch))
    return last["loss"][0], last["accuracy"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--p", type=int, default=53)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--train-frac", type=float, default=0.5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", default=None, help=f"semicolon-separated subset of: {'; '.join(MODES)}")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(";")] if args.modes else list(GPU_MODES if args.device == "cuda" else CPU_MODES)
    root = Path(tempfile.mkdtemp(prefix="tdw-sweep-bench-"))
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads here"
    try:
        print(f"{args.variants} variants, p={args.p}, {args.epochs} epochs, device {args.device} ({device_name}); "
              f"1 torch thread per worker", flush=True)
        baseline, folders = None, {}
        for name in modes:
            elapsed, folders[name] = run_mode(name, args, root)
            baseline = baseline or elapsed
            outcomes = [final_test(folders[name], c) for c in configs(args)]
            print(f"  {name:26s} {elapsed:7.1f} s  {args.variants / elapsed * 60:6.2f} variants/min  "
                  f"speed-up {baseline / elapsed:.2f}x  final test loss {sum(o[0] for o in outcomes) / len(outcomes):.3g}"
                  f" acc {sum(o[1] for o in outcomes) / len(outcomes):.3f} (means)", flush=True)
        separate = next((folders[m] for m in modes if MODES[m][1] == 1), None)
        stacked = next((folders[m] for m in modes if MODES[m][1] != 1), None)
        if separate and stacked:
            for epoch, when in ((1, "after 1 step"), (args.epochs - 1, f"after {args.epochs} epochs")):
                worst = max(largest_relative_difference(stacked, separate, c, epoch) for c in configs(args))
                print(f"  stacked vs separate weights {when}: largest relative difference {worst:.1e}", flush=True)
        if stacked:
            print(f"  a stacked member's checkpoint replayed alone (densify) is bit-identical: "
                  f"{replay_is_exact(stacked, configs(args)[-1], args.device)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
