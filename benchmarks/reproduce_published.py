"""Reproduce the published grokking run and print tdw's figures beside the known published ones.

The configuration is `tdw train`'s default: p=113, seed 999, data seed 598, 30% train, 25,000
epochs, AdamW lr 1e-3, wd 1.0, betas (0.9, 0.98). The script trains it on the fastest device
present, as `tdw train` does (freed memory kept for reuse: `tdw.memory`), analyzes and indexes it,
and prints:
- the losses the TransformerLens Grokking demo printed for this seed (initial 4.735 / 4.733;
  epoch 1399 train 4.2e-7, test 34.1) beside tdw's;
- tdw's memorization, turn and grok epochs, key frequencies, neuron clusters and specialized
  fraction, and the progress measures at a few epochs, for the record.

    python benchmarks/reproduce_published.py                          # train, analyze, index
    python benchmarks/reproduce_published.py --run ../shared/runs/p113_seed999   # an existing run

End to end it took 95 s on an H100 and 20 minutes on this 2-core CPU (session 14, on a fast hour;
the README has both runs' figures).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

from tdw.analysis.pipeline import AnalysisPipeline
from tdw.config import VariantConfig
from tdw.denormals import flush_denormals_to_zero
from tdw.memory import reuse_freed_memory
from tdw.training.trainer import train
from tdw.warehouse import build_index, query

PUBLISHED = {  # the TransformerLens Grokking demo's printout for this configuration
    (0, "train"): 4.735, (0, "test"): 4.733, (1399, "train"): 4.2e-7, (1399, "test"): 34.1,
}
# what the figures need: every checkpoint for the progress measures and key frequencies; the
# neuron frequencies, embedding and spectra for the clusters, the summary and PR at the turn
ANALYZERS = ["key_frequencies", "progress", "neuron_freq", "embedding_fourier", "singular_values"]


def linked_copy(run: Path, root: Path) -> Path:
    """A writable run directory whose checkpoints are the original's (never written)."""
    target = root / "results" / "modular_addition" / run.name
    target.mkdir(parents=True)
    for name in ("config.json", "metadata.json", "losses.parquet"):
        shutil.copy(run / name, target / name)
    (target / "checkpoints").symlink_to((run / "checkpoints").resolve(), target_is_directory=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing run of the configuration (skip training)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (training)")
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    flush_denormals_to_zero()  # as the CLI's compute commands (tdw.denormals)
    reuse_freed_memory()  # as the CLI's compute commands: a CPU epoch otherwise page-faults ~3,000 times
    root = args.keep or Path(tempfile.mkdtemp(prefix="tdw-reproduce-"))
    started = time.perf_counter()
    if args.run:
        run = linked_copy(args.run, root)
        trained = "(given)"
    else:
        run = train(VariantConfig(), root / "results", device=args.device).path
        trained = f"{time.perf_counter() - started:.0f} s"
    analysis_started = time.perf_counter()
    AnalysisPipeline(run).run(ANALYZERS)
    analyzed = time.perf_counter() - analysis_started
    db = root / "warehouse" / "tdw.duckdb"
    index_started = time.perf_counter()
    build_index(root / "results", db)
    indexed = time.perf_counter() - index_started

    losses = pl.read_parquet(run / "losses.parquet")
    device = json.loads((run / "metadata.json").read_text()).get("device", "?")
    print(f"\nrun {run} (trained {trained} on {device}, analyzed in {analyzed:.0f} s, indexed in {indexed:.0f} s)\n")
    print(f"{'epoch':>6} {'split':>6} {'published':>10} {'tdw':>12}")
    for (epoch, split), published in PUBLISHED.items():
        ours = losses.filter(epoch=epoch, split=split)["loss"].item()
        print(f"{epoch:>6} {split:>6} {published:>10.4g} {ours:>12.4g}")
    summary = query("select memorization_epoch, turn_epoch, grok_epoch, turn_to_grok, key_frequencies, key_frequency_rule, "
                    "specialized_fraction, pr_w_in_at_turn from variant_summary", db).row(0, named=True)
    turn = query("select peak_epoch, steepest_epoch, cleanup_end_epoch from grokking_turn", db).row(0, named=True)
    clusters = query("select frequency, neurons from neuron_clusters where epoch = (select max(epoch) from "
                     "neuron_clusters) order by neurons desc", db)
    print()
    for key, value in {**summary, **turn}.items():
        print(f"{key:>22}: {value}")
    print(f"{'neuron clusters':>22}: " + ", ".join(f"{f}: {n}" for f, n in clusters.iter_rows()))
    progress = query("pivot (select epoch, measure, value from progress where epoch in "
                     "(0, 1500, 5000, 9000, 11000, 13000, 14000, 15000, 24999)) on measure using first(value) "
                     "order by epoch", db)
    print()
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=160):
        print(progress.select("epoch", "restricted_loss", "excluded_loss", "gini_embedding", "key_frequency_count"))
    if not args.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
