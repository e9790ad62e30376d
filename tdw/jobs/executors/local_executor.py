"""Jobs in a local process pool (tdw.child_processes: spawned, and they die with the sweep, so no
orphan keeps training a run that a re-submitted sweep would then find locked).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import as_completed

from tdw.child_processes import spawned_pool
from tdw.jobs.worker import Job, JobOutcome, run_task


class LocalExecutor:
    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, tasks: list[list[Job]], catalog_path: str) -> Iterator[JobOutcome]:
        with spawned_pool(self.workers) as pool:
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
