"""Jobs in a local process pool (spawned processes: torch and fork do not mix)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Iterator

from tdw.jobs.worker import JobOutcome, run_job


class LocalExecutor:
    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, jobs: list[tuple[int, str, dict]], catalog_path: str) -> Iterator[JobOutcome]:
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_job, job_id, kind, params, catalog_path): job_id for job_id, kind, params in jobs}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as error:  # the worker process itself died
                    yield JobOutcome(futures[future], "", "failed", f"worker died: {error}")

    def close(self) -> None:
        pass


def make(workers: int, address: str | None) -> LocalExecutor:
    if address:
        from tdw.errors import TdwError

        raise TdwError("--address: only for --executor ray")
    return LocalExecutor(workers)
