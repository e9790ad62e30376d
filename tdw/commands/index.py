"""tdw index: build the DuckDB warehouse from every run under RESULTS."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "index",
        help="index runs into the DuckDB warehouse",
        description="Discover every run and artifact under RESULTS and build the warehouse (views from "
        "sql/). Built aside and swapped in atomically; a no-op when nothing changed.",
    )
    cmd.add_argument("--results", default="results", help="results directory")
    cmd.add_argument("--db", default="warehouse/tdw.duckdb", help="warehouse file")
    cmd.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    return cmd


def run(args: argparse.Namespace) -> int:
    from tdw.warehouse import build_index

    print(build_index(args.results, args.db, args.force).summary())
    return 0
