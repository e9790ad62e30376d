"""tdw verify: check that a run's (or every run's) files read back as they were written."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "verify", help="check runs for corrupt files",
        description="Read back every checkpoint (against its recorded SHA-256), optimizer state, artifact (against "
        "artifacts/manifest.json), config, metadata and losses file. Prints one line per corrupt file with the "
        "remedy; exits 1 if any.",
    )
    cmd.add_argument("runs", nargs="*", metavar="RUN", help="run directories")
    cmd.add_argument("--all", action="store_true", help="every run under --results")
    cmd.add_argument("--results", default="results", help="results directory (with --all)")
    return cmd


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tdw.errors import TdwError
    from tdw.run_dir import RunDir, find_runs
    from tdw.verify import verify_run

    if args.all == bool(args.runs):
        raise TdwError("name RUN directories or pass --all (not both)")
    if args.all:
        if not Path(args.results).is_dir():
            raise TdwError(f"--results {args.results}: no such directory")
        runs = find_runs(args.results)
    else:
        runs = [RunDir(r) for r in args.runs]
        missing = [r for r in runs if not r.config_path.exists()]
        if missing:
            raise TdwError(f"{missing[0].path}: not a run directory (no config.json)")
    bad = 0
    for run in runs:
        health = verify_run(run)
        for problem in health.problems:
            print(problem)
        bad += len(health.problems)
        note = f", {health.unverified} written before checksums" if health.unverified else ""
        state = "ok" if not health.problems else f"{len(health.problems)} corrupt"
        print(f"{run.path}: {state} ({health.checked} files checked{note})")
    return 1 if bad else 0
