"""Jobs in a local process pool (spawned processes: torch and fork do not mix)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Iterator

from tdw.jobs.worker import Job, JobOutcome, run_task


class LocalExecutor:
    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, tasks: list[list[Job]], catalog_path: str) -> Iterator[JobOutcome]:
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_task, task, catalog_path): task for task in tasks}
            for future in as_completed(futures):
                try:
                    yield from future.result()
                except Exception as error:  # the worker process itself died
                    for job_id, _, _ in futures[future]:
                        yield JobOutcome(job_id, "", "failed", f"worker died: {error}")

    def close(self) -> None:
        pass


def make(workers: int, address: str | None) -> LocalExecutor:
    if address:
        from tdw.errors import TdwError

        raise TdwError("--address: only for --executor ray")
    return LocalExecutor(workers)
