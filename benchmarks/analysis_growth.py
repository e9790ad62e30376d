"""Re-analysis after a run grows by one checkpoint: what the key-frequency dependency recomputes,
against the named baseline of the final-checkpoint dependency (tdw through session 38), in one run.

A run analyzed while it trains is analyzed again as checkpoints arrive (`tdw analyze` by hand, a
sweep's `--analyze`). The progress measures (restricted and excluded loss) and the answers'
frequency split read the run's key frequencies, which are found on its final checkpoint. Until
session 39 they depended on that checkpoint, so every new checkpoint recomputed them at every
earlier checkpoint, each with a forward pass over the grid. They now depend on the keys, which
stay put once a run has grokked, so a new checkpoint costs its own artifacts and the keys.

The run is copied without its artifacts, its last checkpoint set aside, and the analyzers that
read the keys (with `key_frequencies`) run on the rest. Then, per repeat: the last checkpoint
comes back and `AnalysisPipeline.run` is timed (what tdw does now), and it is set aside again.
The baseline adds what the final-checkpoint dependency recomputed on top: the same analyzers
forced on every earlier checkpoint, timed once (their work does not depend on the repeat).
Usage: python benchmarks/analysis_growth.py [--run ../shared/runs/p113_seed999] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tdw.analysis.artifacts import artifact_path
from tdw.analysis.context import RunFacts
from tdw.analysis.pipeline import AnalysisPipeline
from tdw.analyzers import all_analyzers
from tdw.families import get_family
from tdw.run_dir import RunDir

PUBLISHED = Path(__file__).resolve().parents[2] / "shared" / "runs" / "p113_seed999"
READS_KEYS = sorted(name for name, analyzer in all_analyzers().items() if analyzer.depends_on == "key_frequencies")
ANALYZERS = ["key_frequencies", *READS_KEYS]


def timed(pipeline: AnalysisPipeline, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    report = pipeline.run(ANALYZERS, progress=False, workers=1, **kwargs)
    return time.perf_counter() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=PUBLISHED)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "results" / "modular_addition" / args.run.name
        shutil.copytree(args.run, copy, ignore=shutil.ignore_patterns("artifacts"))
        run = RunDir(copy)
        epochs = run.checkpoint_epochs()
        last = [path for path in (run.checkpoint_path(epochs[-1]), run.optimizer_path(epochs[-1])) if path.exists()]
        aside = Path(tmp) / "aside"
        aside.mkdir()

        def set_aside() -> None:
            """The run before it grew: its last checkpoint, and what was computed on it, gone."""
            for path in last:
                path.rename(aside / path.name)
            for name in READS_KEYS:
                for table in all_analyzers()[name].tables:
                    artifact_path(run.artifacts_dir, table, epochs[-1]).unlink(missing_ok=True)

        def bring_back() -> None:
            for path in last:
                (aside / path.name).rename(path)

        config, family = run.read_config(), get_family(run.read_config().family)
        keys_before = RunFacts(run, config, epochs[:-1], family).found_key_frequencies
        keys_after = RunFacts(run, config, epochs, family).found_key_frequencies
        print(f"run {args.run.name}: {len(epochs)} checkpoints, grows from {epochs[-2]} to {epochs[-1]}; "
              f"analyzers {', '.join(ANALYZERS)}")
        print(f"key frequencies at {epochs[-2]}: {keys_before[0]} ({keys_before[1]}); at {epochs[-1]}: {keys_after[0]} ({keys_after[1]})")
        pipeline = AnalysisPipeline(copy)
        set_aside()
        first, _ = timed(pipeline)
        print(f"first analysis of {len(epochs) - 1} checkpoints: {first:.1f} s")
        grown = []
        for _ in range(args.repeats):
            bring_back()
            seconds, report = timed(pipeline)
            grown.append(seconds)
            invalidated = ", ".join(f"{n} {table} ({why})" for (table, why), n in sorted(report.invalidated.items()))
            print(f"  grown: {seconds:.2f} s, {len(report.written)} artifacts written; invalidated: {invalidated or 'nothing'}")
            set_aside()
            timed(pipeline)  # back to the run before it grew (its final checkpoint's keys again)
        bring_back()
        redone, _ = timed(pipeline, epochs=epochs[:-1], force=True)
        now = statistics.median(grown)
        baseline = now + redone
        print(f"what the final-checkpoint dependency also recomputed (the {len(epochs) - 1} earlier checkpoints): {redone:.1f} s")
        print(f"re-analysis after growing by one checkpoint: {now:.2f} s (median of {args.repeats}) against "
              f"{baseline:.1f} s for the final-checkpoint dependency: {now / baseline:.2f}x the time, {baseline / now:.1f}x faster")


if __name__ == "__main__":
    main()
