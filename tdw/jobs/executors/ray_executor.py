"""Jobs as Ray tasks: on the cluster at `address`, or on a local Ray started with `workers` CPUs.
Each task writes its own run directory, so only the small outcome returns."""

from __future__ import annotations

from collections.abc import Iterator

from tdw.errors import TdwError
from tdw.jobs.worker import Job, JobOutcome, run_task, task_threads


class RayExecutor:
    def __init__(self, ray, started_here: bool) -> None:
        self.ray = ray
        self.started_here = started_here
        self.remote_task = ray.remote(num_cpus=1, max_retries=0)(run_task)

    def run(self, tasks: list[list[Job]], catalog_path: str) -> Iterator[JobOutcome]:
        """Each task asks Ray for the CPUs it will run threads on (`task_threads`: a CPU run resumed
        on the count that trained it takes that many), capped at the cluster's, and a GPU on CUDA."""
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        pending = {self.remote_task.options(num_gpus=1 if task[0][2].get("device") == "cuda" else 0,
                                            num_cpus=max(1, min(task_threads(task), cpus)))
                   .remote(task, catalog_path): task for task in tasks}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                task = pending.pop(ref)
                try:
                    yield from self.ray.get(ref)
                except Exception as error:  # noqa: BLE001 - the task's worker died
                    for job_id, _, _ in task:
                        yield JobOutcome(job_id, "", "failed", f"ray task failed: {str(error).splitlines()[0]}")

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()


def check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """Ray retries an unreachable head for minutes; a plain TCP connect answers in seconds."""
    import socket

    if address == "auto":
        return
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise TdwError(f"--address {address}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise TdwError(f"--address {address}: cannot reach a Ray cluster there ({error.strerror or error})") from None


def make(workers: int, address: str | None) -> RayExecutor:
    try:
        import ray
    except ImportError:
        raise TdwError("--executor ray: Ray is not installed; pip install 'tdw[ray]'") from None
    import os

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        check_reachable(address)
    try:
        if address:
            ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                     runtime_env={"env_vars": {"TDW_WORKER_THREADS": "1"}})
    except Exception as error:  # noqa: BLE001 - ConnectionError, TimeoutError, RuntimeError depending on the failure
        raise TdwError(f"--address {address}: cannot reach a Ray cluster there ({str(error).splitlines()[0]})") from None
    return RayExecutor(ray, started_here=True)
