"""tdw import: convert a pickled grokking run (.pth) into a run directory, safely."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "import",
        help="import a .pth grokking run",
        description="Convert a state dict or Nanda's {'model', 'checkpoints', 'checkpoint_epochs', "
        "'train_losses', 'test_losses'} file into a run directory. Loaded with "
        "torch.load(weights_only=True); files that need arbitrary code are refused.",
    )
    cmd.add_argument("file", help="the .pth file")
    cmd.add_argument("--name", default=None, help="variant name (default: the file's stem)")
    cmd.add_argument("--seed", type=int, default=0, help="the run's init seed, if known (recorded only)")
    cmd.add_argument("--family", default="modular_addition", help="model family")
    cmd.add_argument("--results", default="results", help="results directory")
    cmd.add_argument("--force", action="store_true", help="replace an existing run of that name")
    return cmd


def run(args: argparse.Namespace) -> int:
    from tdw.training.legacy_import import import_legacy

    run_dir = import_legacy(args.file, args.results, args.family, args.name, args.seed, args.force)
    print(f"imported {len(run_dir.checkpoint_epochs())} checkpoints into {run_dir.path}")
    return 0
