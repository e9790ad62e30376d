"""Atomic file writes: temp file in the same folder, fsync, rename.

A killed process leaves either the old file or the new one, never a truncated one; stray
`.tmp-*` files from a kill are ignored by every reader and swept by `sweep_temp_files`. A
reader that opens a path more than once pins the version it started with (`pinned`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
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


PINNED_AT_ONCE = 256  # descriptors one `pinned` block holds; far under the usual limit of 1,024


@contextmanager
def pinned(paths: Sequence[str | Path]) -> Iterator[list[str]]:
    """Names for the files' current versions that stay valid for the block: `/dev/fd/N` of a
    descriptor opened on entry, which a reader may open as often as it likes.

    Why: a writer here replaces a file by a rename, so one open sees one whole version. DuckDB's and
    Arrow's Parquet readers open a path more than once (the footer, then the pages), and a rename in
    between hands them one version's footer and the next one's pages: "don't know what type" or a
    truncated page, as an index built beside a training run that rewrites its losses met. Where there
    is no /dev/fd the paths are returned as they are."""
    if not Path("/dev/fd").is_dir():
        yield [str(path) for path in paths]
        return
    descriptors: list[int] = []
    try:
        for path in paths:
            descriptors.append(os.open(path, os.O_RDONLY))
        yield [f"/dev/fd/{descriptor}" for descriptor in descriptors]
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


def pinned_batches(paths: Sequence[str | Path], size: int = PINNED_AT_ONCE) -> Iterator[list[str]]:
    """`pinned` names for `paths`, `size` files at a time, each batch held open while the caller
    reads it: a run can have thousands of artifact files per table, more than a process may hold."""
    for start in range(0, len(paths), size):
        with pinned(paths[start:start + size]) as names:
            yield names
