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
from datetime import datetime, timezone

from tdw.warehouse.catalog import Catalog

HEARTBEAT_EVERY_S = 2.0


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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY_S):
            self.flush()

    def flush(self) -> None:
        state = self.catalog.update_job(self.job_id, progress=self.progress, metrics=self.metrics)
        if state == "cancelling":
            self.cancelled.set()


def run_job(job_id: int, kind: str, params: dict, catalog_path: str) -> JobOutcome:
    import torch

    torch.set_num_threads(int(os.environ.get("TDW_WORKER_THREADS", "1")))
    catalog = Catalog(catalog_path)
    started = time.perf_counter()
    variant = params.get("config", {}).get("name") or params.get("variant", "")
    catalog.update_job(job_id, state="running", host=platform.node(), pid=os.getpid(),
                       started_at=datetime.now(timezone.utc), error=None)
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
    except Exception as exc:  # a failed job is reported, never raised into the sweep
        state, error = "failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
    catalog.update_job(job_id, state=state, error=error, finished_at=datetime.now(timezone.utc))
    catalog.dispose()
    return JobOutcome(job_id, variant, state, error, time.perf_counter() - started)


def train_job(params: dict, heartbeat: Heartbeat) -> None:
    from tdw.analysis import AnalysisPipeline
    from tdw.config import VariantConfig
    from tdw.training.trainer import train

    config = VariantConfig.from_dict(params["config"])

    def on_progress(epoch: int, row: dict) -> None:
        heartbeat.progress = epoch + 1
        if epoch % 10 == 0:
            heartbeat.metrics = {"epoch": epoch, "train_loss": row["train_loss"], "test_loss": row["test_loss"],
                                 "test_accuracy": row["test_accuracy"]}
        if heartbeat.cancelled.is_set():
            raise JobCancelled()

    run = train(config, params["results"], device=params.get("device", "cpu"), progress=False, on_progress=on_progress)
    heartbeat.progress = config.num_epochs
    if params.get("analyze"):
        AnalysisPipeline(run.path).run(progress=False)


def analyze_job(params: dict, heartbeat: Heartbeat) -> None:
    from tdw.analysis import AnalysisPipeline

    from tdw.run_dir import RunDir

    AnalysisPipeline(params["run"]).run(params.get("analyzers"), params.get("epochs"), progress=False)
    heartbeat.progress = len(RunDir(params["run"]).checkpoint_epochs())
