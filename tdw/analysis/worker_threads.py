"""Many small independent CPU forwards, one per core at a time instead of each on every core.

Why: a forward at p=113 is a handful of matrix products of a few thousand rows. Run one after
another, each product is split over torch's intra-op threads and they meet at its end; the
elementwise work between products is small and does not parallelize well either. Run as
independent forwards in worker threads of one intra-op thread each (torch releases the GIL
inside its ops), every core stays busy on whole forwards: flatness's 65 perturbed losses took
122-128 ms per 16 against 141-166 ms in turn on 2 cores, with identical values (a product
split over rows sums each entry in the same order on one thread or two).

Items are taken from the iterable as the workers go, in the calling thread, so drawing the next
inputs (flatness's random directions) overlaps with evaluating the ones already drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from tdw.deferred_imports import torch

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_on_single_threaded_workers(fn: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
    """`[fn(item) for item in items]`, on as many worker threads as torch has intra-op threads
    here, each running torch ops on one thread; in turn where torch has one thread (a sweep
    worker, or a GPU, where the caller should batch instead)."""
    threads = torch.get_num_threads()
    if threads < 2:
        return [fn(item) for item in items]
    grad_enabled = torch.is_grad_enabled()

    def single_threaded_worker() -> None:
        torch.set_num_threads(1)  # this thread's own OpenMP and MKL setting
        torch.set_grad_enabled(grad_enabled)  # grad mode is per thread: carry the caller's over

    torch.set_num_threads(1)  # here too: this thread's idle OpenMP team would spin beside the workers
    try:
        with ThreadPoolExecutor(threads, initializer=single_threaded_worker) as pool:
            return list(pool.map(fn, items))
    finally:
        torch.set_num_threads(threads)  # the workers' setting also became the default for new threads
