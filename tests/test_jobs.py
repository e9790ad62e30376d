"""Sweeps and jobs end to end: a grid on the local pool and on a local Ray of 2 CPUs, results in
variant_summary, complete runs skipped, a killed worker detected by its heartbeat and resumed on
re-submission, a cancel, and bad input refused before anything starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tdw.config import VariantConfig
from tdw.jobs.task import job_task
from tdw.run_dir import RunDir, find_runs
from tdw.training.trainer import train
from tdw.warehouse.catalog import Catalog
from tdw.warehouse.query import query
from tests.conftest import REPO, run_tdw, tdw_here, torch_threads, train_cancelled_at


@pytest.fixture(autouse=True)
def quick_heartbeats(monkeypatch):
    """Jobs beat every 0.5 s (default 2), so a cancel is noticed within a few epochs of these tiny
    runs; every process a test starts inherits it."""
    monkeypatch.setenv("TDW_HEARTBEAT_EVERY", "0.5")


TINY = ["--p", "13", "--train-frac", "0.5", "--d-model", "32", "--d-mlp", "64", "--n-heads", "2", "--d-head", "16"]


def sweep(tmp_path, *args, env=None):
    return subprocess.run([sys.executable, "-m", "tdw.cli", "sweep", *TINY, "--results", str(tmp_path / "results"),
                           "--db", str(tmp_path / "warehouse" / "tdw.duckdb"), *args],
                          check=False, capture_output=True, text=True, cwd=REPO, env=env)


@pytest.mark.parametrize("executor, stack", [("local", "1"), ("ray", "2")])
def test_sweep_runs_the_grid_indexes_it_and_skips_complete_runs(tmp_path, executor, stack):
    result = sweep(tmp_path, "--seed", "1,2", "--epochs", "60", "--checkpoints", "0:60:20", "--workers", "2",
                   "--executor", executor, "--stack", stack)
    assert result.returncode == 0, result.stderr
    trainers = {r.variant: (r.read_metadata()["trainer"], r.read_metadata().get("stack_size")) for r in find_runs(tmp_path / "results")}
    expected = ("single", None) if stack == "1" else ("stacked", 2)
    assert trainers == {"p13_seed1": expected, "p13_seed2": expected}
    assert "2 done, 0 failed or cancelled, 0 already complete" in result.stdout
    summary = query("select variant, status from variant_summary order by variant", tmp_path / "warehouse" / "tdw.duckdb")
    assert summary.to_dicts() == [{"variant": "p13_seed1", "status": "complete"}, {"variant": "p13_seed2", "status": "complete"}]
    jobs = query("select variant, state, progress, total from catalog_jobs where kind = 'train' order by variant",
                 tmp_path / "warehouse" / "tdw.duckdb")
    assert jobs.to_dicts() == [{"variant": f"p13_seed{s}", "state": "done", "progress": 60, "total": 60} for s in (1, 2)]
    listed = run_tdw("jobs", "--db", str(tmp_path / "warehouse" / "tdw.duckdb"), check=True).stdout
    task = "60 epochs" + (", stacked with 1" if stack != "1" else "")  # what each job does, beside its kind
    assert [line.split("┆")[3].strip() for line in listed.splitlines() if "┆ train " in line] == [task, task]
    assert [line.split("┆")[3].strip() for line in listed.splitlines() if "┆ sweep " in line] == ["2 variants"]
    again = sweep(tmp_path, "--seed", "1,2", "--epochs", "60", "--checkpoints", "0:60:20")
    assert "0 done, 0 failed or cancelled, 2 already complete" in again.stdout


def test_a_sweep_with_extend_trains_its_runs_on_and_the_new_grid_points_afresh(tmp_path):
    """Seeds 1 and 2 trained 40 epochs, then `--seed 1,2,3 --epochs 80 --extend`: 1 and 2 go on
    from their last checkpoint, 3 is trained; each ends as the 80-epoch run it would have been
    (the workers train on one thread, as the references here do), and the warehouse has them."""
    db = tmp_path / "warehouse" / "tdw.duckdb"

    def sweep_here(*args: str):
        return tdw_here("sweep", *TINY, "--results", str(tmp_path / "results"), "--db", str(db), "--no-index", *args)

    assert sweep_here("--seed", "1,2", "--epochs", "40", "--checkpoints", "0:40:20").returncode == 0
    refused = sweep_here("--seed", "1,2", "--epochs", "80", "--checkpoints", "0:80:20")
    assert refused.returncode == 2 and "train it on with `tdw extend" in refused.stderr
    result = sweep_here("--seed", "1,2,3", "--epochs", "80", "--checkpoints", "0:80:20", "--extend")
    assert result.returncode == 0, result.stderr
    assert "3 done, 0 failed or cancelled, 0 already complete" in result.stdout
    tdw_here("index", "--results", str(tmp_path / "results"), "--db", str(db), check=True)
    runs = {r.variant: r for r in find_runs(tmp_path / "results")}
    assert {v: r.read_metadata().get("extended_from") for v, r in runs.items()} == {
        "p13_seed1": [40], "p13_seed2": [40], "p13_seed3": None}
    for variant, run in runs.items():
        assert run.checkpoint_epochs() == ([0, 20, 39, 40, 60, 79] if variant != "p13_seed3" else [0, 20, 40, 60, 79])
        with torch_threads(1):
            reference = train(run.read_config(), tmp_path / "reference", device="cpu", progress=False)
        final, expected = run.load_weights(79), reference.load_weights(79)
        assert all(torch.equal(final[name], expected[name]) for name in final), variant
        assert run.read_losses().equals(reference.read_losses()), variant
    lengths = query("select variant, max(epoch) as last from checkpoints group by variant order by variant", db)
    assert lengths["last"].to_list() == [79, 79, 79]
    again = sweep_here("--seed", "1,2,3", "--epochs", "80", "--checkpoints", "0:80:20", "--extend")
    assert "0 done, 0 failed or cancelled, 3 already complete" in again.stdout


def test_processes_opening_a_new_catalog_at_once_all_succeed(tmp_path):
    """A sweep, its workers and the dashboard may create the catalog's tables at the same moment."""
    script = ("import sys; from tdw.warehouse.catalog import Catalog; c = Catalog(sys.argv[1]); "
              "c.create_job('train', {}, variant=sys.argv[2]); c.dispose()")
    path = tmp_path / "warehouse" / "catalog.sqlite"
    processes = [subprocess.Popen([sys.executable, "-c", script, str(path), f"v{i}"], cwd=REPO, stderr=subprocess.PIPE,
                                  text=True) for i in range(6)]
    errors = [p.communicate()[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 6, errors
    catalog = Catalog(path)
    assert sorted(j["variant"] for j in catalog.jobs()) == [f"v{i}" for i in range(6)]
    catalog.dispose()


def sweep_in_background(tmp_path, *args) -> tuple[subprocess.Popen, Catalog]:
    """A running `tdw sweep` and its job catalog, once the sweep has created it."""
    process = subprocess.Popen([sys.executable, "-m", "tdw.cli", "sweep", *TINY, *args, "--results", str(tmp_path / "results"),
                                "--db", str(tmp_path / "warehouse" / "tdw.duckdb")], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "warehouse" / "catalog.sqlite").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return process, Catalog(tmp_path / "warehouse" / "catalog.sqlite")


def wait_for_job(catalog: Catalog, variant: str, minimum_progress: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [j for j in catalog.jobs() if j["variant"] == variant and j["state"] == "running"]
        if rows and rows[0]["progress"] >= minimum_progress:
            return rows[0]
        time.sleep(0.2)
    raise AssertionError(f"{variant} never reached progress {minimum_progress}")


def test_a_killed_worker_shows_as_failed_and_resubmitting_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("TDW_HEARTBEAT_TIMEOUT", "2")
    env = dict(os.environ)
    args = ["--seed", "5", "--epochs", "1000", "--checkpoints", "0:1000:100"]
    process = subprocess.Popen([sys.executable, "-m", "tdw.cli", "sweep", *TINY, *args, "--results", str(tmp_path / "results"),
                                "--db", str(tmp_path / "warehouse" / "tdw.duckdb")], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    catalog = Catalog(tmp_path / "warehouse" / "catalog.sqlite") if (tmp_path / "warehouse").exists() else None
    deadline = time.monotonic() + 60
    while catalog is None and time.monotonic() < deadline:
        time.sleep(0.2)
        if (tmp_path / "warehouse" / "catalog.sqlite").exists():
            catalog = Catalog(tmp_path / "warehouse" / "catalog.sqlite")
    job = wait_for_job(catalog, "p13_seed5", 300)
    os.killpg(process.pid, signal.SIGKILL)  # the sweep and its worker die without a word
    process.wait()
    time.sleep(3)
    listed = run_tdw("jobs", "--db", str(tmp_path / "warehouse" / "tdw.duckdb"), check=True).stdout
    row = next(j for j in catalog.jobs() if j["id"] == job["id"])
    assert row["state"] == "failed" and row["error"].startswith("worker lost: no heartbeat"), row
    assert "worker lost" in listed
    (run,) = find_runs(tmp_path / "results")
    reached = run.checkpoint_epochs()[-1]
    assert 0 < reached < 999

    result = sweep(tmp_path, *args, env=env)
    assert result.returncode == 0, result.stderr
    metadata = RunDir(run.path).read_metadata()
    assert metadata["status"] == "complete" and metadata["resumed_from"] == reached
    catalog.dispose()


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_run_resumed_on_two_threads_takes_both_slots_of_a_two_worker_sweep(tmp_path, executor):
    """The sweep's workers train on one thread each. A run that `tdw train` trained on two and that
    was stopped resumes on two (the thread count is part of the arithmetic), so the pool gives it
    both slots: the sweep's other job never runs beside it."""
    config = VariantConfig(p=13, seed=5, train_frac=0.5, d_model=32, d_mlp=64, n_heads=2, d_head=16,
                           num_epochs=300, checkpoint_epochs=tuple(range(0, 300, 50)))
    with torch_threads(2):
        train_cancelled_at(config, tmp_path / "results", 120)

    result = sweep(tmp_path, "--seed", "5,6", "--epochs", "300", "--checkpoints", "0:300:50", "--workers", "2",
                   "--executor", executor)
    assert result.returncode == 0, result.stderr
    catalog = Catalog(tmp_path / "warehouse" / "catalog.sqlite")
    jobs = {job["variant"]: job for job in catalog.jobs() if job["kind"] == "train"}
    catalog.dispose()
    resumed, fresh = jobs["p13_seed5"], jobs["p13_seed6"]
    assert (resumed["params"]["threads"], fresh["params"]["threads"]) == (2, 1)
    metadata = RunDir.for_config(tmp_path / "results", config).read_metadata()
    assert (metadata["status"], metadata["resumed_from"], metadata["torch_threads"]) == ("complete", 100, 2)
    first, second = sorted((resumed, fresh), key=lambda job: job["started_at"])  # Ray may start either first
    assert first["finished_at"] <= second["started_at"], (first, second)


def test_cancel_stops_a_running_job_and_the_sweep_reports_it(tmp_path):
    process, catalog = sweep_in_background(tmp_path, "--seed", "6", "--epochs", "20000", "--checkpoints", "0:20000:1000")
    job = wait_for_job(catalog, "p13_seed6", 50)
    cancelled = run_tdw("jobs", "cancel", str(job["id"]), "--db", str(tmp_path / "warehouse" / "tdw.duckdb"), check=True)
    assert cancelled.stdout.strip() == f"job {job['id']}: cancelling"
    out, _err = process.communicate(timeout=120)
    assert process.returncode == 1 and "0 done, 1 failed or cancelled" in out
    assert next(j for j in catalog.jobs() if j["id"] == job["id"])["state"] == "cancelled"
    catalog.dispose()


def test_cancelling_one_member_of_a_stack_leaves_the_other_training_and_resubmitting_resumes_it(tmp_path):
    args = ["--seed", "6,7", "--epochs", "500", "--checkpoints", "0:500:50", "--stack", "2"]
    process, catalog = sweep_in_background(tmp_path, *args)
    job = wait_for_job(catalog, "p13_seed6", 50)
    run_tdw("jobs", "cancel", str(job["id"]), "--db", str(tmp_path / "warehouse" / "tdw.duckdb"), check=True)
    out, err = process.communicate(timeout=180)
    assert process.returncode == 1 and "1 done, 1 failed or cancelled" in out, out + err
    states = {j["variant"]: (j["state"], j["progress"]) for j in catalog.jobs() if j["kind"] == "train"}
    assert states["p13_seed6"][0] == "cancelled" and states["p13_seed6"][1] < 500
    assert states["p13_seed7"] == ("done", 500)
    cancelled = RunDir(tmp_path / "results" / "modular_addition" / "p13_seed6")
    reached = cancelled.checkpoint_epochs()[-1]
    assert cancelled.read_metadata()["status"] == "running" and reached < 499

    again = sweep(tmp_path, *args)
    assert again.returncode == 0 and "1 done, 0 failed or cancelled, 1 already complete" in again.stdout, again.stderr
    metadata = cancelled.read_metadata()
    assert metadata["status"] == "complete" and metadata["resumed_from"] == reached and metadata["trainer"] == "stacked"
    catalog.dispose()


@pytest.mark.parametrize("args, message", [
    (["--seed", "1,x"], "--seed 'x': "),
    (["--train-frac", "0.5,1.5"], "--train-frac 1.5: "),
    (["--executor", "slurm"], "--executor slurm: unknown; use one of local, ray"),
    (["--stack", "0"], "--stack 0: expected auto or a number of variants >= 1"),
    (["--executor", "ray", "--address", "127.0.0.1:9"], "--address 127.0.0.1:9: cannot reach a Ray cluster there"),
])
def test_bad_sweep_input_is_one_line_before_anything_starts(tmp_path, args, message):
    result = tdw_here("sweep", *TINY, "--results", str(tmp_path / "results"), "--db", str(tmp_path / "warehouse" / "tdw.duckdb"),
                      *(["--seed", "1"] if "--seed" not in args else []), "--epochs", "20", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert message in lines[-1] and lines[-1].startswith("tdw sweep: "), result.stderr
    assert not (tmp_path / "results").exists()


def test_a_job_says_what_it_does_in_the_job_lists():
    assert job_task("analyze", {"analyzers": None, "epochs": None}) == "every analyzer"
    assert job_task("analyze", {"analyzers": ["llc"], "epochs": [0, 250, 500], "force": True}) == "llc at 3 epochs forced"
    assert job_task("analyze", {"analyzers": ["logit_lens"], "trace": "low_sums"}) == "traces of low_sums"
    assert job_task("analyze", {"analyzers": ["logit_lens"], "trace_add": "4+29"}) == "traces + 4+29"
    assert job_task("analyze", {"analyzers": ["llc"], "epochs": [0, 100], "llc_step": "auto"}) == "llc at 2 epochs (step calibrated)"
    assert job_task("analyze", {"analyzers": ["llc"], "epochs": [0], "llc_step": "0.5"}) == "llc at 1 epoch (step x0.5)"
    assert job_task("train", {"config": {"num_epochs": 25000}, "stacked_with": 1, "extend": True, "analyze": True}) \
        == "25,000 epochs, extending, then analyzed"
    assert job_task("sweep", {"variants": ["p13_seed1"], "analyze": True}) == "1 variant, analyzed"
    assert job_task("index", None) == ""
