"""A run's checkpoint and loss files written on background threads while training goes on.

Why: a GPU epoch of the published run takes about a millisecond, and writing one checkpoint
(weights and AdamW state, checksummed, each file fsync'd and renamed) about 20-30; the
published schedule writes 118 of them per run, a stack of 10 writes 1,180. Written in line,
they were a large part of a GPU run. The loop hands each write a copy of the tensors taken
at its epoch, so the training can move on at once.

What stays true: each file is still written atomically, and one run's writes happen in the
order they were asked for (its losses before its checkpoint, an older checkpoint before a
newer one), so a killed process leaves exactly what an in-line writer would have left at some
earlier moment, and a resume loses nothing. Different runs (stack members) write in parallel.
`drain` waits for all of them and raises the first failure.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

WRITER_THREADS = 4


class BackgroundWrites:
    def __init__(self, threads: int = WRITER_THREADS) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="tdw-writes")
        self.last: dict[object, Future] = {}  # each lane's newest write

    def submit(self, lane: object, write: Callable[[], None]) -> None:
        """Run `write` after every earlier write of `lane` (one run: its folder)."""
        self.raise_failures()
        before = self.last.get(lane)

        def in_order() -> None:
            if before is not None:
                before.result()  # submitted earlier, so running or done: no deadlock
            write()

        self.last[lane] = self.pool.submit(in_order)

    def raise_failures(self) -> None:
        for lane, future in list(self.last.items()):
            if future.done():
                del self.last[lane]
                future.result()

    def drain(self) -> None:
        lanes, self.last = self.last, {}
        for future in lanes.values():
            future.result()

    def close(self) -> None:
        try:
            self.drain()
        finally:
            self.pool.shutdown(wait=True)
