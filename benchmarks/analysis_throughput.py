"""Analysis throughput on a p=113 run: the pipeline against a naive loop, in one run.

The run has N checkpoints of the default p=113 model (random init per checkpoint: the cost of
analysis does not depend on whether the weights have grokked). Reports seconds per checkpoint
for the pipeline (one load and one shared forward pass per checkpoint) and for the naive loop
that gives every analyzer its own checkpoint load, model build and full-cache forward pass (the
seeds' earlier design), plus artifact bytes per checkpoint and the extrapolated size of a
50-checkpoint run.

Both loops do the same job: every analyzer's tables written as Parquet artifacts. Until session 17
the naive loop computed them and wrote nothing, so it was timed doing less than the pipeline; it
also prints its time without the writes, the figure earlier sessions quoted.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from tdw.analysis.artifacts import artifact_path, tidy, write_artifact
from tdw.analysis.context import CheckpointContext, RunContext, RunFacts
from tdw.analysis.pipeline import AnalysisPipeline, auto_workers
from tdw.analyzers import all_analyzers
from tdw.config import VariantConfig
from tdw.denormals import flush_denormals_to_zero
from tdw.families import get_family
from tdw.memory import reuse_freed_memory
from tdw.run_dir import RunDir


def make_run(root: Path, checkpoints: int) -> RunDir:
    config = VariantConfig(p=113, num_epochs=checkpoints * 100, checkpoint_epochs=tuple(range(0, checkpoints * 100, 100)))
    run = RunDir.for_config(root, config)
    run.path.mkdir(parents=True)
    run.write_config(config)
    family = get_family(config.family)
    for i, epoch in enumerate(config.checkpoint_epochs):
        model = family.build_model(config.replace(seed=i))
        run.save_checkpoint(epoch, model.state_dict(), None)
    return run


def write_tables(out: Path, analyzer, frames, variant: str, epoch: int | None) -> float:
    """Write an analyzer's tables as the pipeline does (tidy, zstd Parquet, atomic); seconds taken."""
    start = time.perf_counter()
    for table, frame in frames.items():
        path = artifact_path(out, table, epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_artifact(path, tidy(frame, analyzer.tables[table], variant, epoch), analyzer, table,
                       row_group_size=getattr(analyzer, "row_group_size", None))
    return time.perf_counter() - start


def naive(run: RunDir, out: Path) -> float:
    """The naive loop; returns the seconds it spent writing artifacts."""
    config = run.read_config()
    family = get_family(config.family)
    writing = 0.0
    for analyzer in (a for a in all_analyzers().values() if a.default):  # what `tdw analyze RUN` runs
        facts = RunFacts(run, config, run.checkpoint_epochs(), family)  # each analyzer on its own, as a naive loop would
        if analyzer.requires == "run":
            with torch.no_grad():
                frames = analyzer.analyze_run(RunContext(facts, family))
            writing += write_tables(out, analyzer, frames, config.name, None)
            continue
        for epoch in run.checkpoint_epochs():
            data = family.task_data(config)
            model = family.build_model(config)
            weights = run.load_weights(epoch)
            model.load_state_dict(weights)
            ctx = CheckpointContext(facts, family, data, epoch, weights, model)
            with torch.no_grad():
                ctx.logits, ctx.cache = model.run_with_cache(data.inputs)
                frames = analyzer.analyze(ctx)
            writing += write_tables(out, analyzer, frames, config.name, epoch)
    return writing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=10)
    parser.add_argument("--allocator", choices=("tdw", "default"), default="tdw",
                        help="tdw: freed memory kept for reuse, as `tdw analyze` runs (tdw.memory); default: glibc's")
    parser.add_argument("--workers", type=int, default=1,
                        help="also time the pipeline in N worker processes (`tdw analyze --workers N`, their start "
                        "included) against the pipeline in this one")
    args = parser.parse_args()
    flush_denormals_to_zero()  # as the CLI's compute commands (tdw.denormals)
    if args.allocator == "tdw":
        reuse_freed_memory()
    root = Path(tempfile.mkdtemp(prefix="tdw-bench-"))
    try:
        run = make_run(root, args.checkpoints)
        twin = root / "twin" / run.path.name  # the same checkpoints, for the worker processes
        if args.workers > 1:
            shutil.copytree(run.path, twin)
        start = time.perf_counter()
        report = AnalysisPipeline(run.path).run(progress=False)
        pipeline_s = (time.perf_counter() - start) / args.checkpoints
        if args.workers > 1:
            start = time.perf_counter()
            AnalysisPipeline(twin).run(progress=False, workers=args.workers)
            workers_s = (time.perf_counter() - start) / args.checkpoints
        size = sum(f.stat().st_size for f in run.artifacts_dir.rglob("*.parquet"))
        start = time.perf_counter()
        naive_writing_s = naive(run, root / "naive_artifacts") / args.checkpoints
        naive_s = (time.perf_counter() - start) / args.checkpoints
        print(f"p=113, {args.checkpoints} checkpoints, {sum(a.default for a in all_analyzers().values())} analyzers "
              f"(the default set), threads={torch.get_num_threads()}, allocator: {args.allocator}")
        print(f"pipeline: {pipeline_s:.2f} s/checkpoint ({report.forward_passes} forward passes)")
        print(f"naive:    {naive_s:.2f} s/checkpoint ({naive_writing_s:.2f} of it writing the same artifacts)")
        print(f"speed-up: {naive_s / pipeline_s:.2f}x "
              f"(against the naive loop without its writes, as sessions 9-16 measured: {(naive_s - naive_writing_s) / pipeline_s:.2f}x)")
        if args.workers > 1:
            print(f"pipeline in {args.workers} worker processes of {max(1, torch.get_num_threads() // args.workers)} "
                  f"thread(s): {workers_s:.2f} s/checkpoint, {pipeline_s / workers_s:.2f}x the pipeline in one process, "
                  f"{naive_s / workers_s:.2f}x the naive loop")
            print(f"(`tdw analyze` of these checkpoints takes --workers auto = {auto_workers(args.checkpoints)})")
        print(f"artifacts: {size / args.checkpoints / 1e6:.2f} MB/checkpoint; 50 checkpoints ~ {size / args.checkpoints * 50 / 1e9:.2f} GB")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
