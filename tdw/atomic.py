"""Atomic file writes: temp file in the same folder, fsync, rename.

A killed process leaves either the old file or the new one, never a truncated one; stray
`.tmp-*` files from a kill are ignored by every reader and swept by `sweep_temp_files`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TEMP_PREFIX = ".tmp-"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; on clean exit fsync it and rename it over `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=target.suffix, dir=target.parent)
    os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; a file should honour the umask
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_with(target: str | Path, writer: Callable[[Path], None]) -> None:
    """Write `target` atomically through `writer(temp_path)`."""
    with atomic_path(target) as tmp:
        writer(tmp)


def write_bytes(target: str | Path, data: bytes) -> None:
    write_with(target, lambda tmp: tmp.write_bytes(data))


def write_json(target: str | Path, obj: Any) -> None:
    write_bytes(target, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def sweep_temp_files(directory: str | Path, recursive: bool = True) -> int:
    """Remove temp files a killed writer left behind; returns how many. Call it only while
    holding the lock of whatever writes there (a live writer's temp file looks the same)."""
    removed = 0
    folder = Path(directory)
    for path in (folder.rglob if recursive else folder.glob)(f"{TEMP_PREFIX}*"):
        if path.is_file():
            path.unlink()
            removed += 1
    return removed
