"""Versions recorded in every run's metadata (REQ_010) and shown by the dashboard."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def tdw_version() -> str:
    try:
        return version("tdw")
    except PackageNotFoundError:
        return "0+unknown"


@lru_cache(maxsize=1)
def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment_versions() -> dict[str, str | None]:
    import torch

    return {"tdw": tdw_version(), "git_sha": git_sha(), "torch": torch.__version__, "python": __import__("sys").version.split()[0]}
