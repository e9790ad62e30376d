"""Executors run jobs and yield outcomes as they finish. One small interface, two backends:
`local` (a process pool, one torch thread per worker) and `ray` (Ray tasks on a cluster or a
local Ray started for the purpose). Adding one is adding a module with `make(workers, address)`."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Protocol

from tdw.errors import TdwError
from tdw.jobs.worker import Job, JobOutcome

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    def run(self, tasks: list[list[Job]], catalog_path: str) -> Iterator[JobOutcome]:
        """Run each task (one job, or train jobs to stack) on one worker; yield outcomes as they finish."""

    def close(self) -> None: ...


def get_executor(name: str, workers: int, address: str | None = None) -> Executor:
    """Checked before anything starts: an unknown name or an unreachable cluster is one line."""
    if name not in EXECUTORS:
        raise TdwError(f"--executor {name}: unknown; use one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise TdwError(f"--workers {workers}: must be >= 1")
    module = importlib.import_module(f"tdw.jobs.executors.{name}_executor")
    return module.make(workers, address)
