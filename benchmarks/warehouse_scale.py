"""Warehouse at the size of a real study: 11 variants x 300 checkpoints x 512 neurons x 56
frequencies (about 95 million `neuron_freq` rows), in one run.

Generates synthetic run directories (config, losses with a planted turn, placeholder checkpoint
files, and the artifact tables the views read, in the layout the analyzers write), indexes them
with `tdw index`, and reports index time, disk size and the median latency of the queries the
dashboard and a researcher run. The full-scan aggregate is compared with DuckDB reading the same
Parquet files directly (the named baseline). Latencies are medians over repeats on one long-lived
read-only connection, as the dashboard holds one.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from tdw.analysis.artifacts import artifact_path, tidy
from tdw.analyzers import get_analyzers
from tdw.config import VariantConfig
from tdw.run_dir import RunDir
from tdw.warehouse.indexer import build_index
from tdw.warehouse.query import connect

MATRICES = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "W_out", "W_U")


def write_table(run: RunDir, table: str, spec, frame: pl.DataFrame, epoch: int) -> None:
    path = artifact_path(run.artifacts_dir, table, epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    tidy(frame, spec, run.variant, epoch).write_parquet(path, compression="zstd")


def make_variant(results: Path, seed: int, checkpoints: int, neurons: int, p: int, stride: int) -> None:
    rng = np.random.default_rng(seed)
    epochs = np.arange(checkpoints) * stride
    num_epochs = int(epochs[-1]) + 1
    config = VariantConfig(p=p, seed=seed, d_mlp=neurons, num_epochs=num_epochs, checkpoint_epochs=tuple(int(e) for e in epochs))
    run = RunDir.for_config(results, config)
    run.path.mkdir(parents=True)
    run.write_config(config)
    run.update_metadata(status="complete")
    run.checkpoint_dir.mkdir()
    for epoch in epochs:
        run.checkpoint_path(int(epoch)).touch()  # the warehouse only lists checkpoints

    # losses every epoch: memorize fast, plateau, turn at a seed-dependent epoch, grok
    turn = num_epochs * (0.35 + 0.03 * (seed % 7))
    all_epochs = np.arange(num_epochs)
    test = 2.0 * np.exp(-np.clip(all_epochs - turn, 0, None) / (0.04 * num_epochs)) + 1e-3
    train = np.maximum(4.5 * np.exp(-all_epochs / 200.0), 1e-4)
    test_acc = 1 / (1 + np.exp(-(all_epochs - turn - 0.05 * num_epochs) / 100.0))
    train_acc = np.minimum(1.0, all_epochs / 300.0)
    n = num_epochs
    losses = pl.DataFrame({
        "variant": [run.variant] * (2 * n), "epoch": np.concatenate([all_epochs, all_epochs]).astype(np.int32),
        "split": ["train"] * n + ["test"] * n, "loss": np.concatenate([train, test]),
        "accuracy": np.concatenate([train_acc, test_acc]),
    })
    run.write_losses(losses)

    n_freq = p // 2
    key = rng.choice(np.arange(1, n_freq + 1), size=5, replace=False)
    specs = {name: spec for a in get_analyzers(["neuron_freq", "embedding_fourier", "singular_values"])
             for name, spec in a.tables.items()}
    neuron_ids = np.repeat(np.arange(neurons), n_freq)
    freq_ids = np.tile(np.arange(1, n_freq + 1), neurons)
    for i, epoch in enumerate(epochs):
        progress = min(1.0, i / (0.6 * checkpoints))
        fractions = rng.dirichlet(np.ones(n_freq), size=neurons).astype(np.float32)
        best = key[rng.integers(0, len(key), neurons)]
        fractions[np.arange(neurons), best - 1] += 9 * progress
        fractions /= fractions.sum(axis=1, keepdims=True)
        write_table(run, "neuron_freq", specs["neuron_freq"],
                    pl.DataFrame({"neuron": neuron_ids, "frequency": freq_ids, "value": fractions.ravel()}), int(epoch))
        best_freq = fractions.argmax(axis=1)
        write_table(run, "neuron_best_freq", specs["neuron_best_freq"],
                    pl.DataFrame({"neuron": np.arange(neurons), "frequency": best_freq + 1,
                                  "value": fractions[np.arange(neurons), best_freq]}), int(epoch))
        norms = rng.random((n_freq, 2)).astype(np.float32) * 0.1
        norms[key - 1] += progress * 3
        write_table(run, "embedding_fourier", specs["embedding_fourier"], pl.DataFrame({
            "frequency": np.repeat(np.arange(1, n_freq + 1), 2), "component": ["cos", "sin"] * n_freq,
            "value": norms.ravel()}), int(epoch))
        spectrum = np.sort(rng.random(128))[::-1].astype(np.float32) * (1 + 5 * progress)
        write_table(run, "singular_values", specs["singular_values"], pl.DataFrame({
            "matrix": np.repeat(MATRICES, 128), "head": np.full(128 * len(MATRICES), -1),
            "index": np.tile(np.arange(128), len(MATRICES)), "value": np.tile(spectrum, len(MATRICES))}), int(epoch))


GROWN_BY = 10  # checkpoints a run gains when it trains further


def grow_variant(results: Path, scratch: Path, seed: int, checkpoints: int, more: int, neurons: int, p: int):
    """Variant `seed` trained further: its config, metadata and losses rewritten and `more` new
    checkpoints' files and artifacts added (those it had are left as they were), then indexed."""
    if not scratch.exists():
        make_variant(scratch, seed, checkpoints + more, neurons, p, stride=100)
    source = next(scratch.glob("*/*"))  # <family>/<variant>
    target = results / source.parent.name / source.name
    for path in sorted(source.rglob("*")):
        destination = target / path.relative_to(source)
        if path.is_file() and (not destination.exists() or path.parent == source):
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
    return build_index(results, results.parent / "warehouse" / "tdw.duckdb")


def cli_seconds(*argv: str) -> float:
    """Wall seconds of one `tdw` command as a user runs it: a fresh process, its imports included."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tdw.cli", *argv], check=True, capture_output=True)
    return time.perf_counter() - started


def median_ms(con, sql: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        con.sql(sql).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=11)
    parser.add_argument("--checkpoints", type=int, default=300)
    parser.add_argument("--neurons", type=int, default=512)
    parser.add_argument("--p", type=int, default=113)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--cli-repeats", type=int, default=3, help="rounds of `tdw index` run as the CLI runs it")
    parser.add_argument("--keep", type=Path, help="build the study here and keep it (for the dashboard benchmark)")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="tdw-warehouse-scale-"))
    results, db = root / "results", root / "warehouse" / "tdw.duckdb"
    try:
        started = time.perf_counter()
        if not results.exists():
            for seed in range(args.variants):
                make_variant(results, seed, args.checkpoints, args.neurons, args.p, stride=100)
        generated = time.perf_counter() - started
        rows = args.variants * args.checkpoints * args.neurons * (args.p // 2)
        print(f"study: {args.variants} variants x {args.checkpoints} checkpoints x {args.neurons} neurons x "
              f"{args.p // 2} frequencies = {rows / 1e6:.1f}M neuron_freq rows (generated in {generated:.0f} s)")
        print(f"parquet on disk: {folder_bytes(results) / 1e6:.0f} MB")

        report = build_index(results, db, force=True)
        print(f"tdw index (full): {report.seconds:.2f} s; warehouse file {db.stat().st_size / 1e6:.1f} MB")
        started = time.perf_counter()
        noop = build_index(results, db)
        print(f"tdw index (nothing changed): {(time.perf_counter() - started) * 1000:.0f} ms ({noop.summary()})")
        extra = results.parent / "extra"
        if not extra.exists():
            make_variant(extra, args.variants, args.checkpoints, args.neurons, args.p, stride=100)
        added = next(extra.glob("*/*"))  # <family>/<variant>
        home = results / added.parent.name / added.name
        shutil.move(str(added), str(home))
        incremental = build_index(results, db)
        print(f"tdw index (one variant added: a copy of the warehouse, patched): {incremental.seconds:.2f} s "
              f"({incremental.summary()}); {incremental.seconds / report.seconds:.2f}x the full build")
        shutil.move(str(home), str(added))
        removed = build_index(results, db)
        print(f"tdw index (that variant removed again): {removed.seconds:.2f} s")
        grown = grow_variant(results, root / "grown", 0, args.checkpoints, GROWN_BY, args.neurons, args.p)
        print(f"tdw index (one run's {GROWN_BY} new checkpoints: {grown.summary()}); "
              f"{grown.seconds / report.seconds:.2f}x the full build")

        index = ("index", "--results", str(results), "--db", str(db))
        cli: dict[str, list[float]] = {"one variant added": [], "that variant removed again": [], "nothing changed": []}
        process = [cli_seconds("--version") for _ in range(args.cli_repeats)]
        for _ in range(args.cli_repeats):
            shutil.move(str(added), str(home))
            cli["one variant added"].append(cli_seconds(*index))
            shutil.move(str(home), str(added))
            cli["that variant removed again"].append(cli_seconds(*index))
            cli["nothing changed"].append(cli_seconds(*index))
        print(f"tdw index as a user runs it (a fresh process, its imports included; medians of {args.cli_repeats}):")
        for step, seconds in cli.items():
            print(f"  {step:30s} {statistics.median(seconds):6.2f} s")
        print(f"  {'`tdw --version` (the process)':30s} {statistics.median(process):6.2f} s   (target for one variant added: < 5 s)")

        con = connect(db)
        variant = con.sql("select variant from variants order by variant limit 1").fetchall()[0][0]
        epoch = con.sql(f"select epoch from checkpoints where variant = '{variant}' order by epoch limit 1 offset {args.checkpoints // 2}").fetchall()[0][0]
        glob = str((results / "*" / "*" / "artifacts" / "neuron_freq" / "*.parquet").resolve())
        queries = {
            "variant_summary": "select * from variant_summary",
            "neuron_specialization (one variant)": f"select * from neuron_specialization where variant = '{variant}' order by epoch",
            "participation_ratio (one variant)": f"select * from participation_ratio where variant = '{variant}' and matrix = 'W_in' order by epoch",
            "neuron_freq slice (variant, epoch)": f"select neuron, frequency, value from neuron_freq where variant = '{variant}' and epoch = {epoch}",
            "one neuron's history": f"select epoch, frequency, value from neuron_freq where variant = '{variant}' and neuron = 7 order by epoch, frequency",
        }
        print(f"\nlatency, median of {args.repeats} (ms):")
        for name, sql in queries.items():
            con.sql(sql).fetchall()  # warm: the dashboard's connection is long-lived
            print(f"  {name:40s} {median_ms(con, sql, args.repeats):8.1f}")
        aggregate = "select variant, frequency, avg(value), max(value) from {} group by all"
        view_ms = median_ms(con, aggregate.format("neuron_freq"), max(3, args.repeats // 3))
        raw = duckdb_raw()
        raw_ms = median_ms(raw, aggregate.format(f"read_parquet('{glob}')"), max(3, args.repeats // 3))
        print(f"  {'full-scan aggregate, warehouse view':40s} {view_ms:8.1f}")
        print(f"  {'full-scan aggregate, raw DuckDB parquet':40s} {raw_ms:8.1f}   (baseline)")
        print(f"  ratio view / raw: {view_ms / raw_ms:.2f}x")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


def duckdb_raw():
    import duckdb

    return duckdb.connect()


if __name__ == "__main__":
    main()
