"""Jobs the dashboard starts: a `tdw` command in a process and session of its own, so a job outlives
the page (and the server) that started it. A tracked job (`--job-db`) shows on the Train and Analyze
pages and re-indexes the warehouse when done; the open pages then follow the new warehouse."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from dashboards.store import WarehouseStore


def launch_tdw(store: WarehouseStore, name: str, *args: str) -> Path:
    """Start `tdw *args`; its output goes to a log beside the warehouse (logs/NAME-TIME.log), whose
    path is returned: a job that fails before it is tracked (a bad argument) says why there."""
    logs = store.db.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    with open(log, "w") as out:
        subprocess.Popen([sys.executable, "-m", "tdw.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    return log
