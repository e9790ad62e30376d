"""Jobs in a local process pool (spawned processes: torch and fork do not mix).

Pool workers die with the sweep: each asks the kernel (prctl PR_SET_PDEATHSIG) for SIGTERM when
its parent exits, however the parent exits (a SIGKILLed sweep included), so no orphan keeps
training a run that a re-submitted sweep would then find locked.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

from tdw.jobs.worker import Job, JobOutcome, run_task

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Pool initializer: SIGTERM this worker when the sweep process goes away (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class LocalExecutor:
    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, tasks: list[list[Job]], catalog_path: str) -> Iterator[JobOutcome]:
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(run_task, task, catalog_path): task for task in tasks}
            for future in as_completed(futures):
                try:
                    yield from future.result()
                except Exception as error:  # noqa: BLE001 - the worker process itself died
                    for job_id, _, _ in futures[future]:
                        yield JobOutcome(job_id, "", "failed", f"worker died: {error}")

    def close(self) -> None:
        pass


def make(workers: int, address: str | None) -> LocalExecutor:
    if address:
        from tdw.errors import TdwError

        raise TdwError("--address: only for --executor ray")
    return LocalExecutor(workers)
