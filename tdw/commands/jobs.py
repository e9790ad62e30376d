"""tdw jobs: list the catalog's jobs (a dead worker shows as failed), or cancel one."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser("jobs", help="list or cancel training and analysis jobs",
                         description="List jobs (newest first) or cancel one: tdw jobs, tdw jobs cancel 12")
    cmd.add_argument("action", nargs="?", default="list", choices=["list", "cancel"],
                     help="list the jobs, or cancel JOB_ID (it stops at its next heartbeat)")
    cmd.add_argument("job_id", nargs="?", type=int, help="job to cancel")
    cmd.add_argument("--db", default="warehouse/tdw.duckdb", help="warehouse (jobs live in its catalog.sqlite)")
    cmd.add_argument("--limit", type=int, default=50, help="show at most this many jobs")
    return cmd


def run(args: argparse.Namespace) -> int:
    from contextlib import suppress

    import polars as pl

    from tdw.errors import TdwError
    from tdw.jobs.task import job_task
    from tdw.warehouse.catalog import existing_catalog

    if args.action == "cancel" and args.job_id is None:
        raise TdwError("jobs cancel: which job? tdw jobs cancel ID")
    catalog = existing_catalog(args.db)  # none before the first sweep or index: no jobs, and nothing made
    try:
        if args.action == "cancel":
            state = None
            if catalog is not None:
                with suppress(KeyError):
                    state = catalog.cancel_job(args.job_id)
            if state is None:
                raise TdwError(f"job {args.job_id}: no such job")
            print(f"job {args.job_id}: {state}")
            return 0
        rows = catalog.jobs(args.limit) if catalog else []
        frame = pl.DataFrame([{
            "id": r["id"], "kind": r["kind"], "variant": r["variant"] or "", "task": job_task(r["kind"], r["params"]),
            "state": r["state"],
            "progress": f"{r['progress']}/{r['total']}" if r["total"] else str(r["progress"]),
            "host": r["host"] or "", "started": f"{r['started_at']:%Y-%m-%d %H:%M:%S}" if r["started_at"] else "",  # UTC, as recorded
            "error": (r["error"] or "").splitlines()[0] if r["error"] else "",
        } for r in rows])
        with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=70, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
            print(frame if rows else "no jobs")
        return 0
    finally:
        if catalog is not None:
            catalog.dispose()
