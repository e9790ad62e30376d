"""Jobs the dashboard starts: a `tdw` command in a process and session of its own, so a job outlives
the page (and the server) that started it. A tracked job (`--job-db`) shows on the Train and Analyze
pages and re-indexes the warehouse when done; the open pages then follow the new warehouse."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dashboards.store import WarehouseStore


def launch_tdw(store: WarehouseStore, *args: str, log_name: str | None = None) -> Path:
    """Start `tdw *args`; its output goes to a log of its own beside the warehouse
    (logs/NAME-TIME-*.log, NAME the command unless `log_name` says), whose path is returned: a job
    that fails before it is tracked (a bad argument) says why there."""
    logs = store.db.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f"{log_name or args[0]}-{time.strftime('%Y%m%d-%H%M%S')}-", suffix=".log", dir=logs)
    with open(handle, "w") as out:  # two launches in one second each get their own file
        subprocess.Popen([sys.executable, "-m", "tdw.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    return Path(name)
