"""Per-input traces at p=113: what the per-input analyzers cost beside the rest of the pipeline, and
how fast the warehouse answers the Trace section's questions, in one run.

1. Analyzer cost. A p=113 run of N checkpoints (random inits of the default model: the cost does
   not depend on training). Per checkpoint, the pipeline's one load and shared forward pass, then
   each analyzer timed on the same context. Reports the per-input analyzers (input_outcomes,
   logit_lens, answer_frequencies on the default trace probe, sample:1024 at p=113) against the
   others: seconds per checkpoint and artifact bytes.
2. Warehouse latency. The same run with M checkpoints analyzed by input_outcomes only (the
   whole-grid table: M x 12,769 pairs x 4 measures) and indexed; then, through the dashboard's
   store with its cache emptied before every call: one pair's trace over all epochs (the three
   queries the Trace section runs on a click), the graduation map and the margin map at one epoch.
   Medians and p90 over R calls against the issue's 50 ms target.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.analysis_throughput import make_run
from dashboards.store import WarehouseStore
from dashboards.views._common import grid_of
from tdw.analysis.context import CheckpointContext, RunFacts
from tdw.analysis.pipeline import AnalysisPipeline
from tdw.analyzers import all_analyzers
from tdw.families.base import hook_names
from tdw.warehouse import build_index

PER_INPUT = ("input_outcomes", "logit_lens", "answer_frequencies")


def analyzer_costs(run, checkpoints: int) -> dict[str, float]:
    """Seconds per checkpoint: 'load+forward' and each per-checkpoint analyzer."""
    config = run.read_config()
    facts = RunFacts(run, config, run.checkpoint_epochs(), AnalysisPipeline(run.path).family)
    family = facts.family
    data = family.task_data(config)
    model = family.build_model(config)
    analyzers = [a for a in all_analyzers().values() if a.requires != "run" and a.default and not a.missing_hooks(family)]
    roles = {r for a in analyzers for r in a.hooks + a.optional_hooks}
    costs = dict.fromkeys(["load+forward", *(a.name for a in analyzers)], 0.0)
    for epoch in run.checkpoint_epochs()[:checkpoints]:
        start = time.perf_counter()
        weights = facts.weights(epoch)
        model.load_state_dict(weights)
        ctx = CheckpointContext(facts, family, data, epoch, weights, model)
        with torch.no_grad():
            ctx.logits, ctx.cache = model.run_with_cache(data.inputs, names_filter=lambda n: n in hook_names(family, roles))
        costs["load+forward"] += time.perf_counter() - start
        for analyzer in analyzers:
            start = time.perf_counter()
            with torch.no_grad():
                analyzer.analyze(ctx)
            costs[analyzer.name] += time.perf_counter() - start
    return {name: seconds / checkpoints for name, seconds in costs.items()}


def timed(call, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=4, help="checkpoints for the analyzer costs")
    parser.add_argument("--warehouse-checkpoints", type=int, default=100, help="checkpoints in the latency warehouse")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tdw-trace-bench-"))
    try:
        run = make_run(root / "results", args.warehouse_checkpoints)
        costs = analyzer_costs(run, args.checkpoints)
        per_input = sum(costs.get(n, 0.0) for n in PER_INPUT)
        rest = sum(v for n, v in costs.items() if n not in PER_INPUT)
        print(f"p=113, threads={torch.get_num_threads()}, {args.checkpoints} checkpoints; seconds per checkpoint:")
        for name, seconds in sorted(costs.items(), key=lambda item: -item[1]):
            print(f"  {name:<22} {seconds:7.3f}" + ("  (per input)" if name in PER_INPUT else ""))
        print(f"per-input analyzers {per_input:.3f} s against {rest:.3f} s for load, forward and the others "
              f"({per_input / rest:.1%} added)")

        start = time.perf_counter()
        AnalysisPipeline(run.path).run(analyzers=list(PER_INPUT), progress=False)
        analyze_s = time.perf_counter() - start
        for table in PER_INPUT:
            size = sum(f.stat().st_size for f in (run.artifacts_dir / table).glob("*.parquet"))
            print(f"  {table:<22} {size / args.warehouse_checkpoints / 1e3:8.1f} kB per checkpoint")
        db = root / "warehouse" / "tdw.duckdb"
        start = time.perf_counter()
        build_index(root / "results", db)
        print(f"{args.warehouse_checkpoints} checkpoints: per-input analyzers {analyze_s:.1f} s, index {time.perf_counter() - start:.1f} s")

        store = WarehouseStore(db)
        variant = store.variant_names()[0]
        epochs = store.checkpoint_epochs(variant)
        pairs = [(random.randrange(113), random.randrange(113)) for _ in range(args.repeats)]
        queue = iter(pairs * 2)

        def trace() -> None:
            store._cache.clear()
            a, b = next(queue)
            store.pair_outcomes(variant, a, b)
            store.pair_lens(variant, a, b)
            store.pair_frequencies(variant, a, b)

        def graduation_map() -> None:
            store._cache.clear()
            grid_of(store.graduation(variant), "graduation_epoch", 113)

        def margin_map() -> None:
            store._cache.clear()
            grid_of(store.outcome_map(variant, random.choice(epochs)), "value", 113)

        rows = store.frame("select count(*) as n from input_outcomes")["n"][0]
        print(f"warehouse: {rows:,} input_outcomes rows ({len(epochs)} checkpoints x 12,769 pairs x 4 measures)")
        for name, call in (("one pair's trace (3 queries)", trace), ("graduation map", graduation_map),
                           ("margin map at an epoch", margin_map)):
            median, p90 = timed(call, args.repeats)
            print(f"  {name:<30} median {median:6.1f} ms, p90 {p90:6.1f} ms (target < 50 ms: {'met' if median < 50 else 'NOT met'})")
        store.close()
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
