"""tdw serve: the Panel dashboard over the warehouse."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser("serve", help="serve the dashboard",
                         description="Serve the Panel dashboard (dashboards/app.py) over the warehouse.")
    cmd.add_argument("--db", default="warehouse/tdw.duckdb", help="warehouse file")
    cmd.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    cmd.add_argument("--address", default="localhost", help="interface to listen on (0.0.0.0 for all)")
    cmd.add_argument("--results", default="results", help="results directory (for the Train and Analyze pages)")
    cmd.add_argument("--bundle", default=None, help="open a study bundle read-only (its checksums checked, its runs "
                     "indexed into a temporary warehouse; no Train or Analyze page)")
    return cmd


def run(args: argparse.Namespace) -> int:
    import socket
    from pathlib import Path

    from tdw.errors import TdwError
    from tdw.warehouse.query import open_readonly

    if not 0 < args.port < 65536:
        raise TdwError(f"--port {args.port}: must be in 1..65535")
    read_only = args.bundle is not None
    if read_only:
        import atexit
        import shutil
        import tempfile

        from tdw.warehouse.bundle import index_bundle

        scratch = tempfile.mkdtemp(prefix="tdw-bundle-")
        atexit.register(shutil.rmtree, scratch, True)
        args.db, args.results = str(index_bundle(args.bundle, scratch)), str(Path(args.bundle) / "runs")
    open_readonly(args.db).close()  # a missing or corrupt warehouse is one line here, not an empty page
    from tdw.warehouse.sql_models import indexed_with_other_sql

    if indexed_with_other_sql(args.db):  # views the dashboard queries may be missing: errors on the page
        raise TdwError(f"--db {args.db}: indexed by another version of tdw's views (sql/ changed since); "
                       "`tdw index` brings it up to date")
    with socket.socket() as probe:
        try:
            probe.bind((args.address, args.port))
        except OSError as error:
            raise TdwError(f"--port {args.port}: cannot listen on {args.address} ({error.strerror}); pick another port") from None
    import panel as pn

    from dashboards.app import build_app

    print(f"tdw dashboard: http://{args.address}:{args.port}/ ({'bundle ' + args.bundle + ', read-only' if read_only else 'warehouse ' + args.db}; Ctrl-C stops)", flush=True)
    pn.serve({"/": lambda: build_app(args.db, results=args.results, read_only=read_only)}, port=args.port, address=args.address, show=False,
             websocket_origin=[f"{args.address}:{args.port}", f"localhost:{args.port}", f"127.0.0.1:{args.port}"],
             title="tdw", print_url=False)
    return 0
