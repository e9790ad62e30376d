"""What runs inside a worker (a pool process or a Ray task): one job, start to end, reporting to
the catalog. Everything it produces goes to its own run directory, written atomically, so
nothing travels back but a small outcome, and the results folder may be shared storage."""

from __future__ import annotations

import os
import platform
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Self

from tdw.warehouse.catalog import Catalog


def heartbeat_every_s() -> float:
    """Seconds between a job's heartbeats (TDW_HEARTBEAT_EVERY, default 2): how soon a cancel is
    noticed and progress shows. A worker is declared lost after TDW_HEARTBEAT_TIMEOUT without one."""
    return float(os.environ.get("TDW_HEARTBEAT_EVERY", "2"))


class JobCancelled(Exception):
    pass


@dataclass
class JobOutcome:
    job_id: int
    variant: str
    state: str  # done | failed | cancelled
    error: str | None = None
    seconds: float = 0.0


class Heartbeat:
    """Reports progress to the catalog every few seconds from a side thread and learns of a
    cancel there; the training loop only reads a flag, so it never waits on SQLite."""

    def __init__(self, catalog: Catalog, job_id: int) -> None:
        self.catalog, self.job_id = catalog, job_id
        self.progress, self.metrics = 0, None
        self.cancelled = threading.Event()
        self.every = heartbeat_every_s()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            self.flush()

    def flush(self) -> None:
        state = self.catalog.update_job(self.job_id, progress=self.progress, metrics=self.metrics)
        if state == "cancelling":
            self.cancelled.set()


Job = tuple[int, str, dict]  # (catalog id, kind, parameters)


def run_task(task: list[Job], catalog_path: str) -> list[JobOutcome]:
    """What an executor runs: one job, or several train jobs of one shape trained as one stack."""
    if len(task) == 1:
        return [run_job(*task[0], catalog_path)]
    return run_stacked_train_jobs(task, catalog_path)


def job_variant(params: dict) -> str:
    return params.get("config", {}).get("name") or params.get("variant", "")


def mark_running(catalog: Catalog, job_id: int) -> None:
    catalog.update_job(job_id, state="running", host=platform.node(), pid=os.getpid(),
                       started_at=datetime.now(UTC), error=None)


def failure_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"


def worker_threads() -> int:
    """The torch threads each job worker computes on (TDW_WORKER_THREADS, default 1)."""
    return int(os.environ.get("TDW_WORKER_THREADS", "1"))


def set_worker_threads() -> None:
    """A job worker's process set up to compute (tdw.child_processes), on TDW_WORKER_THREADS threads."""
    from tdw.child_processes import set_up_compute_worker

    set_up_compute_worker(worker_threads())


def task_threads(task: list[Job]) -> int:
    """The torch threads a task takes while it runs: a job's `threads` (set by the sweep: more than
    the worker's own for a CPU run resumed on the count that trained it), the largest in a stack."""
    return max(int(params.get("threads", worker_threads())) for _, _, params in task)


def run_job(job_id: int, kind: str, params: dict, catalog_path: str) -> JobOutcome:
    set_worker_threads()
    catalog = Catalog(catalog_path)
    started = time.perf_counter()
    variant = job_variant(params)
    mark_running(catalog, job_id)
    try:
        with Heartbeat(catalog, job_id) as heartbeat:
            if kind == "train":
                train_job(params, heartbeat)
            elif kind == "analyze":
                analyze_job(params, heartbeat)
            else:
                raise ValueError(f"unknown job kind {kind!r}")
            heartbeat.flush()
        state, error = "done", None
    except JobCancelled:
        state, error = "cancelled", "cancelled by the user; re-submit to resume from the last checkpoint"
    except Exception as exc:  # noqa: BLE001 - a failed job is reported, never raised into the sweep
        state, error = "failed", failure_text(exc)
    catalog.update_job(job_id, state=state, error=error, finished_at=datetime.now(UTC))
    catalog.dispose()
    return JobOutcome(job_id, variant, state, error, time.perf_counter() - started)


def report_epoch(heartbeat: Heartbeat, epoch: int, row: dict) -> None:
    heartbeat.progress = epoch + 1
    if epoch % 10 == 0:
        heartbeat.metrics = {"epoch": epoch, "train_loss": row["train_loss"], "test_loss": row["test_loss"],
                             "test_accuracy": row["test_accuracy"]}


def run_stacked_train_jobs(task: list[Job], catalog_path: str) -> list[JobOutcome]:
    """Train the task's variants as one stack; each job keeps its own progress, cancel and
    outcome. A cancelled member leaves the stack and the others go on; an error fails them all."""
    from tdw.analysis.pipeline import AnalysisPipeline
    from tdw.config import VariantConfig
    from tdw.training.stacked import train_stacked

    set_worker_threads()
    catalog = Catalog(catalog_path)
    started = time.perf_counter()
    configs = [VariantConfig.from_dict(params["config"]) for _, _, params in task]
    for job_id, _, _ in task:
        mark_running(catalog, job_id)
    heartbeats = [Heartbeat(catalog, job_id) for job_id, _, _ in task]
    states: list[tuple[str, str | None]] = []
    cancel_note = "cancelled by the user; re-submit to resume from the last checkpoint"

    def member_cancelled(i: int) -> bool:
        """Asked once per member after each batch of epochs; a yes takes it out of the stack now."""
        if not heartbeats[i].cancelled.is_set():
            return False
        heartbeats[i].__exit__(None, None, None)
        catalog.update_job(task[i][0], state="cancelled", error=cancel_note, finished_at=datetime.now(UTC))
        return True

    try:
        for beat in heartbeats:
            beat.__enter__()
        runs = train_stacked(configs, task[0][2]["results"], device=task[0][2].get("device", "cpu"), progress=False,
                             on_progress=lambda i, epoch, row: report_epoch(heartbeats[i], epoch, row),
                             cancelled=member_cancelled)
        for (job_id, _, params), run, config, beat in zip(task, runs, configs, heartbeats):
            if run.read_metadata().get("status") != "complete":
                states.append(("cancelled", cancel_note))
                continue
            beat.progress = config.num_epochs
            try:
                if params.get("analyze"):
                    AnalysisPipeline(run.path).run(progress=False)
                states.append(("done", None))
            except Exception as exc:  # noqa: BLE001 - one member's analysis failing fails only that job
                states.append(("failed", failure_text(exc)))
    except Exception as exc:  # noqa: BLE001 - a failed batch is reported per job, never raised
        states = [("failed", failure_text(exc))] * len(task)
    finally:
        for beat in heartbeats:
            beat.__exit__(None, None, None)
            beat.flush()
    elapsed = time.perf_counter() - started
    outcomes = []
    for (job_id, _, params), (state, error) in zip(task, states):
        catalog.update_job(job_id, state=state, error=error, finished_at=datetime.now(UTC))
        outcomes.append(JobOutcome(job_id, job_variant(params), state, error, elapsed))
    catalog.dispose()
    return outcomes


def train_job(params: dict, heartbeat: Heartbeat) -> None:
    from tdw.analysis.pipeline import AnalysisPipeline
    from tdw.config import VariantConfig
    from tdw.training.trainer import train

    config = VariantConfig.from_dict(params["config"])

    def on_progress(epoch: int, row: dict) -> None:
        report_epoch(heartbeat, epoch, row)
        if heartbeat.cancelled.is_set():
            raise JobCancelled()

    run = train(config, params["results"], device=params.get("device", "cpu"), progress=False, on_progress=on_progress,
                extend=params.get("extend", False))
    heartbeat.progress = config.num_epochs
    if params.get("analyze"):
        AnalysisPipeline(run.path).run(progress=False)


def analyze_job(params: dict, heartbeat: Heartbeat) -> None:
    from tdw.analysis.pipeline import AnalysisPipeline
    from tdw.run_dir import RunDir

    pipeline = AnalysisPipeline(params["run"], device=params.get("device", "cpu"))
    pipeline.run(params.get("analyzers"), params.get("epochs"), force=params.get("force", False), progress=False,
                 workers=params.get("workers", 1))
    heartbeat.progress = len(RunDir(params["run"]).checkpoint_epochs())
