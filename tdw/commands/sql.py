"""tdw sql: one read-only query over the warehouse, printed or exported."""

from __future__ import annotations

import argparse
import os
import shutil
import sys


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "sql",
        help="run a read-only SQL query",
        description="Run one read-only query (SELECT/WITH/EXPLAIN) over the warehouse views, e.g. "
        "tdw sql \"select * from variant_summary\" --format latex --out table.tex",
    )
    cmd.add_argument("query", help="the SQL query")
    cmd.add_argument("--db", default="warehouse/tdw.duckdb", help="warehouse file")
    cmd.add_argument("--format", default=None, choices=["table", "csv", "json", "parquet", "markdown", "latex"],
                     help="output format (default: the one --out's suffix names, .csv .json .parquet .md .tex, "
                     "else table); table prints one block per row when its grid is wider than the terminal")
    cmd.add_argument("--out", default=None, help="write to this file (atomically) instead of stdout")
    return cmd


def run(args: argparse.Namespace) -> int:
    from tdw.errors import TdwError
    from tdw.warehouse.export import export, format_for, refuse_overwriting_inputs
    from tdw.warehouse.query import query

    args.format = format_for(args.format, args.out)
    if args.format == "parquet" and args.out is None:
        raise TdwError("--format parquet: needs --out FILE")
    if args.out is not None:
        refuse_overwriting_inputs(args.out, args.db)
    frame = query(args.query, args.db)
    # a terminal's width (or COLUMNS): a grid wider than it prints as records; piped, the grid stays whole
    on_screen = args.out is None and (sys.stdout.isatty() or "COLUMNS" in os.environ)
    width = shutil.get_terminal_size().columns if on_screen else None
    data = export(frame, args.format, args.out, width)
    if data is not None:
        sys.stdout.write(data.decode())
    else:
        print(f"wrote {frame.height} rows to {args.out}", file=sys.stderr)
    return 0
