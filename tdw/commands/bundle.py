"""tdw bundle: a study's tables, runs and manifest in one folder (tdw/warehouse/bundle.py)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "bundle",
        help="export a study bundle, or import one",
        description="export: the chosen warehouse tables as Parquet, a small DuckDB file of views over them (plain "
        "DuckDB reads it, no tdw needed), the runs (checkpoints with --with-checkpoints) and a manifest with "
        "versions, configs, table definitions and checksums. import: check the checksums, copy the runs into "
        "--results and re-index --db. `tdw serve --bundle DIR` opens one read-only.",
    )
    what = cmd.add_subparsers(dest="action", required=True)
    export = what.add_parser("export", help="write a bundle")
    export.add_argument("out", help="the bundle folder to write")
    export.add_argument("--variants", default=None, help="comma-separated variants (default: all)")
    export.add_argument("--tables", default=None,
                        help="comma-separated warehouse tables, or all (default: every table above staging, and "
                        "variants, losses, checkpoints)")
    export.add_argument("--with-checkpoints", action="store_true", help="include the runs' checkpoints")
    export.add_argument("--force", action="store_true", help="replace an existing bundle at OUT")
    export.add_argument("--db", default="warehouse/tdw.duckdb", help="warehouse file")
    imp = what.add_parser("import", help="merge a bundle's runs into a results directory and re-index")
    imp.add_argument("bundle", help="the bundle folder")
    imp.add_argument("--results", default="results", help="results directory")
    imp.add_argument("--db", default="warehouse/tdw.duckdb", help="warehouse file to re-index")
    return cmd


def split(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def run(args: argparse.Namespace) -> int:
    from tdw.warehouse.bundle import export_bundle, import_bundle

    if args.action == "export":
        report = export_bundle(args.out, args.db, split(args.variants), split(args.tables), args.with_checkpoints, args.force)
        print(report.summary())
        return 0
    imported, report = import_bundle(args.bundle, args.results, args.db)
    print(f"imported {len(imported)} runs ({', '.join(imported) or 'all were already there'}); {report.summary()}")
    return 0
