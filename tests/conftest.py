"""Shared fixtures: tiny variants that train in seconds on 2 cores."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from tdw import atomic
from tdw.config import VariantConfig
from tdw.denormals import flush_denormals_to_zero

REPO = Path(__file__).resolve().parents[1]

# `make test` runs two pytest workers (pytest-xdist) on two cores (three were no faster: 15m10
# against 15m17, the job tests slowing 2-4x): each, and every tdw process a test starts (they
# inherit the environment), then computes on one thread, since two torch processes of two
# threads each on two cores slow each other 10-20x. Run alone, two threads.
flush_denormals_to_zero()  # as every tdw compute process does, so in-process and CLI runs compute alike
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(2)


@contextmanager
def torch_threads(count: int):
    """Run the block on `count` torch threads (it may change them again), then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_cancelled_at(config: VariantConfig, results: Path, epoch: int, device: str = "cpu") -> None:
    """Train `config` until its progress callback sees `epoch`, then stop it there as a cancel
    does (an exception from the callback): the run is left resumable from its last checkpoint."""
    from tdw.training.trainer import train

    def cancel(at: int, _losses: dict) -> None:
        if at == epoch:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, results, device=device, progress=False, on_progress=cancel)


def tiny_config(**changes) -> VariantConfig:
    base = {"p": 13, "seed": 3, "train_frac": 0.5, "d_model": 32, "n_heads": 2, "d_head": 16, "d_mlp": 64, "lr": 3e-3, "num_epochs": 120}
    base.update(changes)
    return VariantConfig(**base)


def run_tdw(*args: str, cwd: Path | None = None, check: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "tdw.cli", *args], check=False, capture_output=True, text=True, cwd=cwd or REPO
    )
    if check and result.returncode != 0:
        raise AssertionError(f"tdw {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def tdw_here(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    """`tdw ARGS` run by the CLI's own `main` in this process: the same parsing, checks and exit
    codes as the subprocess, without its 5-7 s of imports (torch, TransformerLens). For bad input
    and for building fixtures; what a process boundary itself does (signals, locks held by another
    process) is tested with `run_tdw`."""
    import contextlib
    import io

    from tdw.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # a usage error, as argparse reports it
            code = exit_.code if isinstance(exit_.code, int) else 2
    result = subprocess.CompletedProcess(["tdw", *args], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"tdw {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"


def build_shared_study(shared: Path) -> Path:
    """The study in `shared`, built once: whoever takes the lock first builds it, the others wait.
    A builder stopped part way (the background one is terminated when gw0's session ends, which can
    be while another worker still waits for the study) leaves a partial study: it is built afresh."""
    from tests.dashboard_harness import build_study

    done = shared / "study.built"
    with open(shared / "study.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(shared / "study", ignore_errors=True)
            atomic.write_bytes(done, str(build_study(shared / "study")).encode())
        return Path(done.read_text())


def shared_folder(config) -> Path:
    """A folder every xdist worker of this run shares (their temp folders' parent), or the temp folder."""
    base = config._tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


STUDY_BUILDER: list[subprocess.Popen] = []


def pytest_collection_modifyitems(session, config, items) -> None:
    """The files whose tests read the shared study run last (a stable sort, the same in every
    worker, as xdist requires): their worker would otherwise wait ~2 minutes for the study while
    it is built in the background, instead of running the other files meanwhile. `make test`
    passes --no-loadscope-reorder, since xdist otherwise hands out the files with the most tests
    first, and test_sql_models' 56 grain checks then waited 111 s for the study."""
    reads_study = {item.path for item in items if "study" in getattr(item, "fixturenames", ())}
    items.sort(key=lambda item: item.path in reads_study)


def pytest_collection_finish(session) -> None:
    """Under `make test`, the first worker starts building the study in a one-thread background
    process as soon as it knows some test will read it: by the time one does, the study is
    (nearly) ready, instead of a worker standing idle for two minutes while it is built."""
    if os.environ.get("PYTEST_XDIST_WORKER") != "gw0":
        return
    if any("study" in getattr(item, "fixturenames", ()) for item in session.items):
        shared = shared_folder(session.config)
        code = "import sys; from pathlib import Path; from tests.conftest import build_shared_study; build_shared_study(Path(sys.argv[1]))"
        with open(shared / "study.log", "w") as log:  # the child keeps its own copy of the descriptor
            STUDY_BUILDER.append(subprocess.Popen([sys.executable, "-c", code, str(shared)], cwd=REPO,
                                                  stdout=subprocess.DEVNULL, stderr=log))


def pytest_sessionfinish(session) -> None:
    for builder in STUDY_BUILDER:
        if builder.poll() is None:
            builder.terminate()


@pytest.fixture(scope="session")
def study(pytestconfig) -> Path:
    """Two tiny transformers and an MLP, really trained, fully analyzed and indexed
    (tests/dashboard_harness.py), built once for every test that only reads it: the dashboard's and
    the SQL project's. Under pytest-xdist the workers share one build (1.5-2 minutes of a core),
    started early in the background (pytest_collection_finish)."""
    return build_shared_study(shared_folder(pytestconfig))


@pytest.fixture(scope="module")
def app_url(study):
    """`tdw serve` on the shared study, one server per test module that asks for it."""
    from tests.dashboard_harness import served

    with served(study) as url:
        yield url
