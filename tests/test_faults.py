"""Fault injection on small runs: concurrent writers, flipped bits, truncation, divergence, kills,
corrupt catalog and warehouse. Each probe of the reliability issue is a repeatable test here; the
SIGKILL-and-resume probe is tests/test_training.py's."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import torch
from conftest import REPO, tdw_here, tiny_config

from tdw import atomic
from tdw.analysis.pipeline import AnalysisPipeline
from tdw.errors import CorruptFileError
from tdw.locks import is_held
from tdw.run_dir import LOSS_SCHEMA, RunDir
from tdw.training.lifecycle import DivergedError
from tdw.training.trainer import train
from tdw.warehouse import build_index, query

SMALL = {"num_epochs": 80, "checkpoint_epochs": (0, 20, 40, 60)}


def flip_byte(path: Path, at: float = 0.6) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x20
    path.write_bytes(bytes(data))


@pytest.fixture
def tdw_cli():
    """`tdw ARGS` through the CLI's entry point, in-process (no Python start-up per call)."""
    return tdw_here


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small finished run (the reference for the probes, which work on copies)."""
    return train(tiny_config(**SMALL), tmp_path_factory.mktemp("reference") / "results", device="cpu", progress=False)


def copy_of(run: RunDir, root: Path) -> RunDir:
    target = root / "results" / "modular_addition" / run.variant
    shutil.copytree(run.path, target)
    return RunDir(target)


def test_force_never_deletes_a_run_another_process_is_training(tmp_path, tdw_cli):
    results = tmp_path / "results"
    args = ["train", "--p", "13", "--seed", "3", "--train-frac", "0.5", "--d-model", "32", "--n-heads", "2",
            "--d-head", "16", "--d-mlp", "64", "--lr", "3e-3", "--epochs", "1200", "--checkpoints", "0:1200:100",
            "--results", str(results), "--quiet"]
    first = subprocess.Popen([sys.executable, "-m", "tdw.cli", *args], cwd=REPO, stderr=subprocess.PIPE, text=True)
    run = RunDir(results / "modular_addition" / "p13_seed3")
    deadline = time.monotonic() + 60
    while not (is_held(run.path, "train") and run.checkpoint_epochs()):
        assert time.monotonic() < deadline and first.poll() is None, "training did not start"
        time.sleep(0.1)
    message = one_line(tdw_cli(*args, "--force"))
    assert "is being trained by pid" in message and str(first.pid) in message
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert run.read_metadata()["status"] == "complete"
    assert len(run.checkpoint_epochs()) == 13  # 0..1100 by 100, and the last epoch 1199


def test_a_second_analysis_of_the_same_run_is_refused(trained, tmp_path, tdw_cli):
    run = copy_of(trained, tmp_path)
    from tdw.locks import exclusive

    with exclusive(run.path, "analyze", "analyzed"):
        message = one_line(tdw_cli("analyze", str(run.path), "--analyzers", "embedding_fourier"))
    assert "is being analyzed by pid" in message and not run.artifacts_dir.exists()


def test_a_flipped_bit_in_a_checkpoint_is_named_with_its_remedy(trained, tmp_path, tdw_cli):
    run = copy_of(trained, tmp_path)
    flip_byte(run.checkpoint_path(40))
    with pytest.raises(CorruptFileError, match="checksum mismatch"):
        run.load_weights(40)
    message = one_line(tdw_cli("analyze", str(run.path), "--analyzers", "embedding_fourier", "--quiet"))
    assert "checkpoint_epoch_00040.safetensors: corrupt (checksum mismatch)" in message
    assert f"tdw densify {run.path} --epochs 40" in message
    verify = tdw_cli("verify", str(run.path))
    assert verify.returncode == 1 and "checkpoint_epoch_00040.safetensors: corrupt" in verify.stdout


def test_verify_parses_files_written_before_checksums_and_names_a_truncated_one(trained, tmp_path, tdw_cli):
    """Without a recorded digest only the file's structure can be checked; `tdw verify` does that
    without torch (safetensors' own parser), so it must still refuse a cut-short file."""
    from safetensors.torch import save_file

    run = copy_of(trained, tmp_path)
    save_file(run.load_weights(40), run.checkpoint_path(40))  # as a run from before checksums
    verify = tdw_cli("verify", str(run.path))
    assert verify.returncode == 0 and "1 written before checksums" in verify.stdout
    blob = run.checkpoint_path(40).read_bytes()
    run.checkpoint_path(40).write_bytes(blob[:-16])
    verify = tdw_cli("verify", str(run.path))
    assert verify.returncode == 1 and "checkpoint_epoch_00040.safetensors: corrupt" in verify.stdout


def test_a_run_trained_again_writes_the_same_bytes(trained, tmp_path):
    """Checkpoint and optimizer files are a function of their contents: safetensors wrote its
    header's metadata in a hash map's order, which differed from file to file (five encodings of
    the same tensors gave five different files), so a reproduced run never matched `sha256sum`.
    The files stay plain safetensors, read by safetensors itself, their digests checked."""
    from safetensors import safe_open

    from tdw import checksummed

    tensors = {"W": torch.arange(6.0).reshape(2, 3), "b": torch.ones(4, dtype=torch.float64)}
    metadata = {f"key{i}": str(i) for i in range(8)}
    blobs = {checksummed.encode(tensors, metadata) for _ in range(5)}
    assert len(blobs) == 1
    path = tmp_path / "file.safetensors"
    path.write_bytes(blobs.pop())
    with safe_open(str(path), "pt") as reader:
        assert reader.metadata().keys() == {*metadata, checksummed.DIGEST_KEY}
        assert torch.equal(reader.get_tensor("W"), tensors["W"]) and torch.equal(reader.get_tensor("b"), tensors["b"])
    assert checksummed.checked(path.read_bytes())[1]  # digest recorded and matching

    again = train(tiny_config(**SMALL), tmp_path / "again", device="cpu", progress=False)
    files = sorted(p.name for p in trained.path.glob("checkpoints/*.safetensors"))
    assert files == sorted(p.name for p in again.path.glob("checkpoints/*.safetensors")) and len(files) == 10
    for name in files:
        assert (trained.path / "checkpoints" / name).read_bytes() == (again.path / "checkpoints" / name).read_bytes(), name


def test_a_corrupt_checkpoint_met_by_a_worker_process_is_the_same_one_line(trained, tmp_path, tdw_cli):
    """`tdw analyze --workers 2`: the worker's error reaches the user as the one-process line, and
    what the workers finished before it is recorded, each artifact with its digest."""
    import json

    from tdw.analysis.artifacts import file_digest

    run = copy_of(trained, tmp_path)
    flip_byte(run.checkpoint_path(40))
    message = one_line(tdw_cli("analyze", str(run.path), "--analyzers", "embedding_fourier", "--workers", "2", "--quiet"))
    assert "checkpoint_epoch_00040.safetensors: corrupt (checksum mismatch)" in message
    assert f"tdw densify {run.path} --epochs 40" in message
    manifest_path = run.artifacts_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    assert "embedding_fourier/epoch_00040.parquet" not in manifest
    for key, digest in manifest.items():
        assert file_digest(run.artifacts_dir / key) == digest


def test_resume_falls_back_to_the_newest_good_checkpoint(trained, tmp_path, tdw_cli):
    """Truncate the last checkpoint of a run killed at epoch 60 (its end not reached): training
    resumes from 40 instead, and ends bit-identical to the uninterrupted run."""
    run = copy_of(trained, tmp_path)
    for epoch in (79,):  # as if killed before the end
        run.checkpoint_path(epoch).unlink()
        run.optimizer_path(epoch).unlink()
    run.update_metadata(status="running")
    path = run.checkpoint_path(60)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = tdw_cli("train", "--p", "13", "--seed", "3", "--train-frac", "0.5", "--d-model", "32", "--n-heads", "2",
                     "--d-head", "16", "--d-mlp", "64", "--lr", "3e-3", "--epochs", "80", "--checkpoints", "0,20,40,60",
                     "--results", str(tmp_path / "results"), "--quiet", "--device", "cpu", check=True)
    assert "checkpoint_epoch_00060.safetensors: corrupt" in result.stderr and "quarantine" in result.stderr
    for epoch in (60, 79):
        assert torch.equal(run.load_weights(epoch)["embed.W_E"], trained.load_weights(epoch)["embed.W_E"])
    assert run.read_losses().equals(trained.read_losses())


def test_a_diverging_run_stops_with_one_line_and_stays_resumable(tmp_path, tdw_cli):
    with pytest.raises(DivergedError, match="train loss is nan at epoch 1"):
        train(tiny_config(lr=1e30, **SMALL), tmp_path / "results", device="cpu", progress=False)
    run = RunDir(tmp_path / "results" / "modular_addition" / "p13_seed3")
    assert run.read_metadata()["status"] == "diverged" and run.checkpoint_epochs() == [0]
    message = one_line(tdw_cli("train", "--lr=nan", "--results", str(tmp_path / "other")))
    assert "--lr nan: must be a finite number" in message and not (tmp_path / "other").exists()


def test_a_flipped_bit_in_an_artifact_is_recomputed_and_refused_by_index(trained, tmp_path, tdw_cli):
    run = copy_of(trained, tmp_path)
    AnalysisPipeline(run.path).run(["embedding_fourier", "singular_values"], progress=False)
    db = tmp_path / "warehouse" / "tdw.duckdb"
    build_index(tmp_path / "results", db)
    before = db.read_bytes()
    artifact = run.artifacts_dir / "singular_values" / "epoch_00020.parquet"
    flip_byte(artifact, 0.4)
    message = one_line(tdw_cli("index", "--results", str(tmp_path / "results"), "--db", str(db)))
    assert "singular_values/epoch_00020.parquet: corrupt (checksum mismatch)" in message and "tdw analyze" in message
    assert db.read_bytes() == before
    report = tdw_cli("analyze", str(run.path), "--analyzers", "embedding_fourier,singular_values", "--quiet", check=True)
    assert "invalidated 1 singular_values artifact (corrupt: checksum mismatch)" in report.stdout
    assert tdw_cli("verify", str(run.path)).returncode == 0
    tdw_cli("index", "--results", str(tmp_path / "results"), "--db", str(db), check=True)


def test_a_corrupt_warehouse_is_rebuilt_and_served_with_one_line(trained, tmp_path, tdw_cli):
    copy_of(trained, tmp_path)
    db = tmp_path / "warehouse" / "tdw.duckdb"
    build_index(tmp_path / "results", db)
    expected = query("select * from variant_summary", db)
    db.write_bytes(db.read_bytes()[:4096])  # truncated: not a DuckDB file any more
    message = one_line(tdw_cli("serve", "--db", str(db), "--port", "5999"))
    assert f"--db {db}: not a readable tdw warehouse" in message and "tdw index --force" in message
    assert one_line(tdw_cli("sql", "--db", str(db), "select 1")).startswith("tdw sql: --db")
    result = tdw_cli("index", "--results", str(tmp_path / "results"), "--db", str(db), check=True)
    assert "unreadable" in result.stdout and "rebuilt from the runs" in result.stdout
    assert query("select * from variant_summary", db).equals(expected)
    flip_byte(db, 0.5)
    tdw_cli("index", "--results", str(tmp_path / "results"), "--db", str(db), "--force", check=True)
    assert query("select * from variant_summary", db).equals(expected)


def test_corrupt_run_files_and_catalog_are_one_line_and_spare_the_other_runs(trained, tmp_path, tdw_cli):
    good = copy_of(trained, tmp_path)
    bad = RunDir(good.path.parent / "p13_broken")
    shutil.copytree(good.path, bad.path)
    bad.config_path.write_text('{"p": 13, "seed": ')
    listing = tdw_cli("list", "--results", str(tmp_path / "results"))
    assert listing.returncode == 0 and "corrupt" in listing.stdout and "p13_seed3" in listing.stdout
    assert "p13_broken/config.json: corrupt (not JSON" in listing.stderr
    db = tmp_path / "warehouse" / "tdw.duckdb"
    result = tdw_cli("index", "--results", str(tmp_path / "results"), "--db", str(db), check=True)
    assert "skipped" in result.stdout and "p13_broken/config.json" in result.stdout
    assert query("select variant from variants", db)["variant"].to_list() == ["p13_seed3"]
    (db.parent / "catalog.sqlite").write_bytes(b"this is not a database" * 100)
    message = one_line(tdw_cli("jobs", "--db", str(db)))
    assert "catalog.sqlite: corrupt" in message and "move it aside" in message


def test_a_truncated_losses_file_is_named_by_verify(trained, tmp_path, tdw_cli):
    """`tdw verify` parses the losses through one open handle (so a rewrite by a training run cannot
    tear its read) and still calls a cut-short file corrupt, with the remedy."""
    run = copy_of(trained, tmp_path)
    assert tdw_cli("verify", str(run.path)).returncode == 0
    data = run.losses_path.read_bytes()
    run.losses_path.write_bytes(data[: len(data) // 2])
    verify = tdw_cli("verify", str(run.path))
    assert verify.returncode == 1 and "losses.parquet: corrupt" in verify.stdout and "re-train the run" in verify.stdout


def test_a_changed_value_in_the_losses_is_named_by_verify(trained, tmp_path, tdw_cli):
    """A flipped bit inside a Parquet page can still decode (the pages carry no checksum), into
    another loss; the losses file records the SHA-256 of its values and `tdw verify` checks it. A
    file from before that digest is parsed and counted as unverified."""
    import pyarrow.parquet as pq

    run = copy_of(trained, tmp_path)
    verify = tdw_cli("verify", str(run.path))
    assert verify.returncode == 0 and "written before checksums" not in verify.stdout  # the losses' digest is read
    table = change_one_loss(run.losses_path)
    verify = tdw_cli("verify", str(run.path))
    assert verify.returncode == 1 and "losses.parquet: corrupt (checksum mismatch)" in verify.stdout
    assert "re-train the run" in verify.stdout
    pq.write_table(table.replace_schema_metadata(None), run.losses_path)  # as tdw wrote it before digests
    verify = tdw_cli("verify", str(run.path))
    assert verify.returncode == 0 and "1 written before checksums" in verify.stdout


def change_one_loss(path: Path):
    """Rewrite a losses file with one loss one ulp larger (one bit of one value) and the digest it
    recorded kept, as a flipped bit that still decodes leaves a file; returns the original table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path).read()
    losses = table.column("loss").to_numpy().copy()
    losses[7] = float(np.nextafter(losses[7], np.inf))
    changed = table.set_column(table.column_names.index("loss"), "loss", pa.array(losses))
    assert changed.schema.metadata == table.schema.metadata
    pq.write_table(changed, path)
    return table


def test_a_run_whose_losses_do_not_verify_is_left_out_of_the_index(trained, tmp_path, tdw_cli):
    """As a run whose config does not read: skipped with one line (its remedy is re-training it,
    never a reason the other runs cannot be indexed), and back once its losses verify again."""
    run = copy_of(trained, tmp_path)
    db = tmp_path / "warehouse" / "tdw.duckdb"
    index = ("index", "--results", str(tmp_path / "results"), "--db", str(db))
    tdw_cli(*index, check=True)
    original = run.losses_path.read_bytes()
    change_one_loss(run.losses_path)
    result = tdw_cli(*index, check=True)
    assert f"skipped {run.losses_path}: corrupt (checksum mismatch); re-train the run" in result.stdout
    assert query("select variant from variants", db).height == 0
    assert "nothing to do" in tdw_cli(*index, check=True).stdout  # still skipped, and nothing rebuilt for it
    run.losses_path.write_bytes(original)
    tdw_cli(*index, check=True)
    assert query("select variant from variants", db)["variant"].to_list() == [run.variant]


def test_a_pinned_file_is_read_at_its_version_while_a_writer_replaces_it(tmp_path):
    """DuckDB opens a Parquet path more than once per read (footer, then pages), so an index built
    beside a training run that rewrites its losses could read one version's footer and the next one's
    pages (CI met "don't know what type: \\x0e"). `atomic.pinned` names the version held open on
    entry: every later open of that name reads it, whatever the path holds meanwhile."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    rows = lambda n: pl.DataFrame({"variant": "v", "epoch": range(n), "split": "train", "loss": 1.0,
                                   "accuracy": 0.5}, schema=LOSS_SCHEMA)
    run.write_losses(rows(10))
    con = duckdb.connect()
    with atomic.pinned([run.losses_path]) as (name,):
        run.write_losses(rows(25))  # the trainer's atomic rewrite, between the reader's opens
        count = f"select count(*), max(epoch) from read_parquet('{name}')"
        assert con.execute(count).fetchone() == (10, 9)
        assert con.execute(count).fetchone() == (10, 9)
    assert con.execute(f"select count(*) from read_parquet('{run.losses_path}')").fetchone() == (25,)


def test_killed_writers_leave_no_temp_files_after_the_next_run(trained, tmp_path, tdw_cli):
    run = copy_of(trained, tmp_path)
    stray = [run.checkpoint_dir / ".tmp-killed.safetensors", run.path / ".tmp-losses.parquet"]
    db = tmp_path / "warehouse" / "tdw.duckdb"
    db.parent.mkdir(parents=True)
    stray.append(db.parent / ".tmp-index.duckdb")
    for path in stray:
        path.write_bytes(b"half written")
    run.update_metadata(status="running")  # so train reopens it
    train(RunDir(run.path).read_config(), tmp_path / "results", device="cpu", progress=False)
    build_index(tmp_path / "results", db)
    assert not any(p.exists() for p in stray)


def test_files_honour_the_umask(tmp_path, tdw_cli):
    previous = os.umask(0o027)
    try:
        run = train(tiny_config(num_epochs=3, checkpoint_epochs=(0,)), tmp_path / "results", device="cpu", progress=False)
    finally:
        os.umask(previous)
    for path in (run.checkpoint_path(2), run.config_path, run.losses_path):
        assert path.stat().st_mode & 0o777 == 0o640, path


def spawned_workers(pid: int) -> list[int]:
    """The multiprocessing workers among a process's children (not its resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [int(c) for c in children.read_text().split()] if children.exists() else []
    return [c for c in pids if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()] if pids else []


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" not in status.read_text()
    except OSError:
        return False


def test_killing_an_analysis_stops_its_worker_processes(trained, tmp_path, tdw_cli):
    """`tdw analyze --workers 2` SIGKILLed: its workers die with it (none goes on writing the run
    beside the next analysis), and the next analysis completes the run."""
    run = copy_of(trained, tmp_path)
    analysis = subprocess.Popen([sys.executable, "-m", "tdw.cli", "analyze", str(run.path), "--workers", "2", "--quiet"],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while len(workers := spawned_workers(analysis.pid)) < 2:
        assert time.monotonic() < deadline and analysis.poll() is None, "the analysis never started its workers"
        time.sleep(0.05)
    os.kill(analysis.pid, signal.SIGKILL)
    analysis.wait()
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker process outlived its killed analysis"
        time.sleep(0.2)
    result = tdw_cli("analyze", str(run.path), "--quiet")
    assert result.returncode == 0 and tdw_cli("verify", str(run.path)).returncode == 0


def test_an_analysis_in_worker_processes_keeps_each_checkpoint_as_it_finishes(tmp_path, tdw_cli):
    """`tdw analyze --workers 2` records each checkpoint in the run's manifest as its worker
    finishes it (and moves its progress bar), not once all are done: killed halfway, the analysis
    keeps what it finished, and the next one finds those artifacts up to date and completes the rest."""
    import json
    import re

    run = train(tiny_config(num_epochs=130, checkpoint_epochs=tuple(range(0, 130, 10))), tmp_path / "results",
                device="cpu", progress=False)
    checkpoints = len(run.checkpoint_epochs())
    manifest_path = run.artifacts_dir / "manifest.json"
    analysis = subprocess.Popen([sys.executable, "-m", "tdw.cli", "analyze", str(run.path), "--workers", "2", "--quiet"],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    listed: dict[str, str] = {}
    while not listed:
        assert analysis.poll() is None, "the analysis finished before its manifest listed any checkpoint"
        assert time.monotonic() < deadline, "the analysis never listed a checkpoint"
        listed = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        time.sleep(0.01)
    os.killpg(analysis.pid, signal.SIGKILL)  # the analysis and its workers
    analysis.wait()
    kept = {int(re.search(r"epoch_(\d+)", key)[1]) for key in listed}
    assert 0 < len(kept) < checkpoints, kept  # some checkpoints, listed while the others ran
    result = tdw_cli("analyze", str(run.path), "--workers", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    up_to_date = int(re.search(r"(\d+) already up to date", result.stdout)[1])
    assert up_to_date >= len(listed)
    assert tdw_cli("verify", str(run.path)).returncode == 0


def test_killing_a_sweep_stops_its_workers(tmp_path, tdw_cli):
    results, db = tmp_path / "results", tmp_path / "warehouse" / "tdw.duckdb"
    sweep = subprocess.Popen([sys.executable, "-m", "tdw.cli", "sweep", "--p", "13", "--seed", "5", "--epochs", "100000",
                              "--checkpoints", "0,50000", "--results", str(results), "--db", str(db), "--device", "cpu",
                              "--no-index"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    run = results / "modular_addition" / "p13_seed5"
    deadline = time.monotonic() + 120
    while not is_held(run, "train"):
        assert time.monotonic() < deadline and sweep.poll() is None, "the sweep's worker never started training"
        time.sleep(0.2)
    os.kill(sweep.pid, signal.SIGKILL)
    sweep.wait()
    deadline = time.monotonic() + 30
    while is_held(run, "train"):  # the worker holds the run's lock until it exits
        assert time.monotonic() < deadline, "the pool worker kept training after its sweep was killed"
        time.sleep(0.2)
