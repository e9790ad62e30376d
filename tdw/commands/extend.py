"""tdw extend: train a run on past its last epoch, bit for bit as if it had been trained that long."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "extend",
        help="train a run on past its last epoch",
        description="Train a run longer (it has not grokked yet): it resumes from its last checkpoint with its own "
        "settings, and ends exactly as a run trained that long from the start would (full-batch training is "
        "deterministic). A schedule that depends on the run's length (cosine) is refused. Running it again on an "
        "interrupted extension continues it.",
    )
    cmd.add_argument("run", help="run directory, e.g. results/modular_addition/p101_seed999")
    cmd.add_argument("--epochs", required=True, type=int, help="the run's new length in epochs")
    cmd.add_argument("--checkpoints", default=None,
                     help="checkpoints past the current last epoch: a list and start:stop:step ranges "
                     "(default: the default schedule of the longer run); the last epoch is always kept")
    cmd.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    return cmd


def run(args: argparse.Namespace) -> int:
    from tdw.epoch_spec import parse_epoch_spec
    from tdw.training.extend import extend

    checkpoints = tuple(parse_epoch_spec(args.checkpoints)) if args.checkpoints else ()
    run_dir = extend(args.run, args.epochs, checkpoints, device=args.device, progress=not args.quiet)
    print(f"run: {run_dir.path}")
    return 0
