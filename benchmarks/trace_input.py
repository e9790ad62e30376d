""""Trace this input" on an analyzed run: one input added to its traced probe, analyzed and
indexed, as the dashboard's button does it, against the named baseline of recomputing the traces
whole, in one run.

New (what `tdw analyze RUN --trace-add a+b --job-db DB` does): the traced analyzers' artifacts
are extended, their rows of inputs still traced kept and only the new input computed, on a
forward pass of that input alone (`tdw.analysis.pipeline.Task`); the index patches a copy of the
warehouse in the two tables that changed and the models reading them
(`tdw.warehouse.changes.changed_sources`). Baseline: the traced analyzers recomputed for every
traced input (forced; on a forward pass of the traced inputs, as this code runs them) and a full
index: an analysis that does not extend, and an index that re-copies every table of the run.

Both in this process, after the imports (a `tdw` process adds its start, ~4 s, to either). Each
repeat adds another input to a fresh copy of the run and its warehouse. Medians and the ratio.
Usage: python benchmarks/trace_input.py --results RESULTS --db DB [--variant NAME] [--repeats 3]
(the run analyzed and indexed, e.g. by `make demo`, or the published run). A run that traces
every input (auto, up to p = 64) is first given a sampled trace in the copy (`--sample`).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tdw.analysis.pipeline import AnalysisPipeline
from tdw.analyzers import all_analyzers
from tdw.commands.analyze import set_trace
from tdw.families import get_family
from tdw.probes import trace_probe
from tdw.run_dir import RunDir, find_runs
from tdw.warehouse.catalog import catalog_path
from tdw.warehouse.indexer import build_index


def untraced_rows(run: RunDir) -> np.ndarray:
    """The grid rows (a-major) of the inputs the run does not trace."""
    config = run.read_config()
    train = get_family(config.family).task_data(config).train_mask
    return np.flatnonzero(~trace_probe(run.trace_spec(), config.p).select(config.p, train))


def spread(rows: np.ndarray, count: int, p: int) -> list[str]:
    """`count` of `rows` spread over the grid, as pairs a+b."""
    return [f"{row // p}+{row % p}" for row in rows[np.linspace(0, len(rows) - 1, count).astype(int)]]


def fresh_copy(results: Path, db: Path, into: Path) -> tuple[Path, Path]:
    """The results and the warehouse (with its catalog) copied, mtimes kept; indexed there."""
    if into.exists():
        shutil.rmtree(into)
    shutil.copytree(results, into / "results")
    (into / "warehouse").mkdir(parents=True)
    copy_db = into / "warehouse" / db.name
    shutil.copy2(catalog_path(db), catalog_path(copy_db))
    shutil.copy2(db, copy_db)
    build_index(into / "results", copy_db)  # the copy's paths: a full build, before any timing
    return into / "results", copy_db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--db", type=Path, default=Path("warehouse/tdw.duckdb"))
    parser.add_argument("--variant", default=None, help="the run to trace in (default: the first)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=256, help="the sampled trace of a run that traces every input")
    args = parser.parse_args()
    runs = [r for r in find_runs(args.results) if args.variant in (None, r.variant)]
    if not runs:
        raise SystemExit(f"{args.results}: no run{' ' + args.variant if args.variant else ''}")
    traced = [name for name, analyzer in all_analyzers().items() if analyzer.traced]
    root = Path(tempfile.mkdtemp(prefix="tdw-trace-input-"))
    times: dict[str, list[tuple[float, float]]] = {"new": [], "baseline": []}
    try:
        source, source_db = fresh_copy(args.results, args.db, root / "source")
        run = RunDir(source / runs[0].path.relative_to(args.results))
        if len(untraced_rows(run)) < args.repeats:  # the whole grid traced: a sample of it first
            set_trace(str(run.path), f"sample:{args.sample}", str(source_db))
            AnalysisPipeline(run.path).run(traced, progress=False)
            build_index(source, source_db)
        pairs = spread(untraced_rows(run), args.repeats, run.read_config().p)
        print(f"{run.variant}: {len(run.checkpoint_epochs())} checkpoints, traced probe {run.trace_spec()}; "
              f"adding {', '.join(pairs)}, one per repeat")
        for pair in pairs:
            for how in ("baseline", "new"):
                results, db = fresh_copy(source, source_db, root / how)
                copy = RunDir(results / run.path.relative_to(source))
                start = time.perf_counter()
                set_trace(str(copy.path), pair, str(db), add=True)
                report = AnalysisPipeline(copy.path).run(traced, force=how == "baseline", progress=False, workers="auto")
                analyzed = time.perf_counter()
                index = build_index(results, db, force=how == "baseline")
                times[how].append((analyzed - start, time.perf_counter() - analyzed))
                print(f"  {pair} {how:<8} analysis {analyzed - start:6.2f} s, index {times[how][-1][1]:5.2f} s "
                      f"({len(report.written)} artifacts; index {'patched' if index.patched else 'built'})")
    finally:
        shutil.rmtree(root)
    medians = {how: [statistics.median(t[i] for t in runs_) for i in (0, 1)] for how, runs_ in times.items()}
    for i, step in enumerate(("analysis", "index")):
        print(f"{step:<9} median new {medians['new'][i]:6.2f} s, baseline {medians['baseline'][i]:6.2f} s "
              f"({medians['baseline'][i] / medians['new'][i]:.1f}x)")
    new, base = sum(medians["new"]), sum(medians["baseline"])
    print(f"together median new {new:6.2f} s, baseline {base:6.2f} s ({base / new:.1f}x); a tdw process adds its start to each")


if __name__ == "__main__":
    main()
