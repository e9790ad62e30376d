"""tdw list: the runs under a results directory, with status and progress."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser("list", help="list runs", description="List every run under RESULTS.")
    cmd.add_argument("--results", default="results", help="results directory")
    return cmd


def run(args: argparse.Namespace) -> int:
    from tdw.errors import TdwError
    from tdw.run_dir import find_runs

    runs = find_runs(args.results)
    if not runs:
        print(f"no runs under {args.results}")
        return 0
    header = f"{'family':<18} {'variant':<28} {'status':<9} {'checkpoints':>11} {'last':>7} {'epochs':>7}"
    print(header)
    for run in runs:
        try:
            config = run.read_config()
            status = run.read_metadata().get("status", "?")
        except TdwError as error:  # one bad run is listed as such; the others still are
            print(f"{run.path.parent.name:<18} {run.variant:<28} {'corrupt':<9}")
            print(f"tdw list: {error}", file=sys.stderr)
            continue
        epochs = run.checkpoint_epochs()
        last = epochs[-1] if epochs else "-"
        print(f"{config.family:<18} {config.name:<28} {status:<9} {len(epochs):>11} {last:>7} {config.num_epochs:>7}")
    return 0
