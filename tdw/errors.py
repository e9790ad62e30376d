"""The exceptions users see: each message is the single line the CLI prints."""

from __future__ import annotations

from pathlib import Path


class TdwError(Exception):
    """Bad input or a refused operation; the CLI prints `tdw <command>: <message>` and exits non-zero."""


class CorruptFileError(TdwError):
    """A file tdw wrote no longer reads back as written (a flipped bit, a truncation)."""

    def __init__(self, path: str | Path, problem: str, remedy: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: corrupt ({problem})" + (f"; {remedy}" if remedy else ""))
