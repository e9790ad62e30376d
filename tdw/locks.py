"""Advisory locks that die with their process: one writer per run, per analysis, per warehouse.

`flock` on a small file beside what it guards (never inside it, so `tdw train --force` can delete
the run while holding its lock). The kernel drops the lock when the holder exits, however it
exits, so a killed process never leaves a stale lock. The file names the holder, so a refusal
says who is busy: `... is being trained by pid 4242 (tdw train, since 12:01:07)`.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from tdw.errors import TdwError


class BusyError(TdwError):
    """Another live process holds the lock."""


def lock_path(guarded: Path, purpose: str) -> Path:
    """`results/fam/.p113_seed999.train.lock` for `results/fam/p113_seed999`."""
    guarded = Path(guarded)
    return guarded.parent / f".{guarded.name}.{purpose}.lock"


def holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"


@contextmanager
def exclusive(guarded: str | Path, purpose: str, doing: str, wait: bool = False) -> Iterator[None]:
    """Hold `guarded`'s lock for `purpose` (train, analyze, index). Without `wait`, a held lock
    raises BusyError at once; with it, this waits (saying so once on stderr)."""
    guarded = Path(guarded)
    path = lock_path(guarded, purpose)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise BusyError(f"{guarded} is being {doing} by {holder(path)}; wait for it or stop it") from None
            print(f"waiting: {guarded} is being {doing} by {holder(path)}", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        command = " ".join(["tdw", *sys.argv[1:3]]) if sys.argv and "tdw" in sys.argv[0] else "tdw"
        os.write(fd, f"pid {os.getpid()} ({command}, since {datetime.now():%H:%M:%S})\n".encode())
        yield
    finally:
        os.close(fd)


def is_held(guarded: str | Path, purpose: str) -> bool:
    """Whether a live process holds the lock now (for status displays; racy by nature)."""
    path = lock_path(Path(guarded), purpose)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
