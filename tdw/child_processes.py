"""Process pools whose workers die with their parent (spawned: torch and fork do not mix).

Why a module of its own: both the job pool (`tdw sweep`) and the analysis (`tdw analyze
--workers`) start worker processes, and neither may leave orphans behind. Each worker asks the
kernel (prctl PR_SET_PDEATHSIG) for SIGTERM when its parent exits, however the parent exits (a
SIGKILLed one included), so no orphan keeps training or writing a run that the next command
would then find locked or half-done.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Pool initializer: SIGTERM this worker when its parent process goes away (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def set_up_compute_worker(threads: int) -> None:
    """A worker process that computes with torch: denormals flushed to zero (tdw.denormals) before
    torch makes its threads, `threads` of them, and freed memory kept for reuse (tdw.memory), as
    the compute commands run. One setup for the sweeps' job workers and `tdw analyze`'s."""
    import torch  # here: importing this module (the sweep's parent does) needs no torch

    from tdw.denormals import flush_denormals_to_zero
    from tdw.memory import reuse_freed_memory

    flush_denormals_to_zero()
    torch.set_num_threads(threads)
    reuse_freed_memory()


def start_worker(parent: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def spawned_pool(workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """`workers` spawned processes that die with this one, each set up by `initializer(*initargs)`
    (a module-level function: it is pickled by name)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=start_worker, initargs=(os.getpid(), initializer, initargs))
