"""tdw sweep: train a grid of variants (primes x seeds x ...) on a local pool or Ray."""

from __future__ import annotations

import argparse
import sys

from tdw.parameters import SWEEPABLE


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "sweep", help="train a grid of variants",
        description="Expand a grid into variants, skip complete ones, run the rest as jobs, and re-index after "
        "each. Values are comma-separated (schedules '|'-separated), e.g. tdw sweep --p 97,113 --seed 1,2 --analyze; "
        "or a TOML file with a [grid] table (and optional [sweep] settings).")
    cmd.add_argument("file", nargs="?", help="sweep TOML file")
    for key, parameter in SWEEPABLE.items():
        cmd.add_argument(parameter.option, dest=key, help=f"values of {key} ({parameter.help}), "
                         f"'{parameter.separator}'-separated")
    cmd.add_argument("--checkpoints", help="checkpoint epochs for every variant (default: tdw train's)")
    cmd.add_argument("--analyze", action="store_true", default=None, help="analyze each variant after training")
    cmd.add_argument("--executor", default=None, help="local (default) or ray")
    cmd.add_argument("--workers", type=int, default=None, help="parallel jobs (default 1)")
    cmd.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    cmd.add_argument("--device", default=None, help="auto (default: cuda when there is one), cpu or cuda")
    cmd.add_argument("--stack", default=None,
                     help="train up to N same-shape variants as one stacked model (one forward for all); "
                     "auto (default): all of them on a GPU, none on a CPU, where separate workers are as fast")
    cmd.add_argument("--results", default=None, help="results directory (default results)")
    cmd.add_argument("--db", default="warehouse/tdw.duckdb", help="warehouse (its catalog.sqlite tracks the jobs)")
    cmd.add_argument("--no-index", action="store_true", help="do not re-index after each job")
    cmd.add_argument("--extend", action="store_true", default=None,
                     help="train the grid's existing runs on to --epochs (tdw extend for each, one job each); "
                     "new grid points are trained")
    return cmd


def run(args: argparse.Namespace) -> int:
    from tdw.errors import TdwError
    from tdw.jobs.grid import expand, parse_values, read_toml
    from tdw.jobs.sweep import run_sweep

    settings: dict = {}
    grid: dict[str, list] = {}
    if args.file:
        document = read_toml(args.file)
        settings = document.get("sweep", {})
        for key, raw in document["grid"].items():
            grid[key] = parse_values(key, raw)
    for key in SWEEPABLE:
        raw = getattr(args, key)
        if raw is not None:
            grid[key] = parse_values(key, raw)
    if not grid:
        raise TdwError("sweep: no grid; give values (--p 97,113 --seed 1,2) or a TOML file")
    configs = expand(grid, args.checkpoints or settings.get("checkpoints"))
    report = run_sweep(
        configs, args.results or settings.get("results", "results"), args.db,
        executor=args.executor or settings.get("executor", "local"),
        workers=args.workers if args.workers is not None else settings.get("workers", 1), address=args.address or settings.get("address"),
        analyze=bool(args.analyze if args.analyze is not None else settings.get("analyze", False)),
        index=not args.no_index,
        device=args.device or settings.get("device", "auto"), stack=args.stack or settings.get("stack", "auto"),
        extend=bool(args.extend if args.extend is not None else settings.get("extend", False)),
        on_outcome=lambda o: print(f"job {o.job_id} {o.variant}: {o.state} ({o.seconds:.0f} s)", file=sys.stderr, flush=True),
    )
    print(report.summary())
    return 1 if report.failed else 0
