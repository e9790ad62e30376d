"""tdw densify: add checkpoints inside a trained range by deterministic replay."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "densify",
        help="add checkpoints inside a trained range",
        description="Replay training from the nearest earlier checkpoint to write new ones, "
        "e.g. densely around the turn. Replays are bit-identical to the original run.",
    )
    cmd.add_argument("run", help="run directory, e.g. results/modular_addition/p113_seed999")
    cmd.add_argument("--epochs", required=True, help="epochs to add: list and start:stop:step ranges, e.g. 9000:13000:50")
    cmd.add_argument("--device", default="auto", help="auto, cpu or cuda")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    return cmd


def run(args: argparse.Namespace) -> int:
    from tdw.epoch_spec import parse_epoch_spec
    from tdw.training.densify import densify

    epochs = parse_epoch_spec(args.epochs, "--epochs")
    added = densify(args.run, epochs, device=args.device, progress=not args.quiet)
    if added:
        print(f"added {len(added)} checkpoints ({added[0]}..{added[-1]})")
    return 0
