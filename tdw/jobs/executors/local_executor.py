"""Jobs in a local process pool (tdw.child_processes: spawned, and they die with the sweep, so no
orphan keeps training a run that a re-submitted sweep would then find locked).

The pool's cores are handed out as thread slots: `workers` workers of TDW_WORKER_THREADS threads
each. A task takes as many slots as it will run threads (`task_threads`), so a CPU run resumed on
the two threads that trained it runs alone instead of beside another worker. Oversubscribed,
both slowed: on 2 cores a p=113 step took 134 ms on two threads beside a one-thread run (39.7
alone), and the neighbour's 115 ms (71 beside another one-thread run).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait

from tdw.child_processes import spawned_pool
from tdw.jobs.worker import Job, JobOutcome, run_task, task_threads, worker_threads


class LocalExecutor:
    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, tasks: list[list[Job]], catalog_path: str) -> Iterator[JobOutcome]:
        """Tasks start in order, each once its thread slots are free (a task wanting more than the
        pool has gets all of it); outcomes come back as tasks finish."""
        slots = self.workers * worker_threads()
        free = slots
        waiting = deque(tasks)
        running: dict[Future, tuple[list[Job], int]] = {}
        with spawned_pool(self.workers) as pool:
            while waiting or running:
                while waiting and (taken := min(task_threads(waiting[0]), slots)) <= free:
                    task = waiting.popleft()
                    free -= taken
                    running[pool.submit(run_task, task, catalog_path)] = (task, taken)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    task, taken = running.pop(future)
                    free += taken
                    try:
                        yield from future.result()
                    except Exception as error:  # noqa: BLE001 - the worker process itself died
                        for job_id, _, _ in task:
                            yield JobOutcome(job_id, "", "failed", f"worker died: {error}")

    def close(self) -> None:
        pass


def make(workers: int, address: str | None) -> LocalExecutor:
    if address:
        from tdw.errors import TdwError

        raise TdwError("--address: only for --executor ray")
    return LocalExecutor(workers)
