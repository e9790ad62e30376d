"""tdw report: a variant, a comparison or a saved view as HTML, PDF and Markdown (dashboards/reports.py)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "report",
        help="write a report (HTML, PDF, Markdown) of a variant, a comparison or a saved view",
        description="tdw report VARIANT: key facts (memorization, turn, grok, cleanup, key frequencies, specialization, "
        "PR at the turn, outlier flags and why), a per-epoch table and the standard figures. tdw report --compare "
        "V1,V2,...: the variant_summary columns that differ, overlays aligned at the turn, small multiples. "
        "tdw report NAME: a saved view (tdw view list). Every number comes with the SQL that produced it.",
    )
    cmd.add_argument("name", nargs="?", help="a variant or a saved view")
    cmd.add_argument("--compare", default=None, help="comma-separated variants to compare")
    cmd.add_argument("--all-columns", action="store_true", help="--compare: show every column, not only those that differ")
    cmd.add_argument("--out", default=None, help="output path without suffix, every format asked for "
                     "(default: reports/<name>); or one file: r.html, r.pdf, r.md")
    cmd.add_argument("--formats", default=None, help="comma-separated: html, pdf, md (default: all, or the one --out names)")
    cmd.add_argument("--force", action="store_true", help="replace existing report files")
    cmd.add_argument("--db", default="warehouse/tdw.duckdb", help="warehouse file")
    return cmd


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tdw.errors import TdwError

    if bool(args.name) == bool(args.compare):
        raise TdwError("name a VARIANT or a saved view, or give --compare V1,V2 (one of them)")
    formats = None if args.formats is None else tuple(f.strip() for f in args.formats.split(",") if f.strip())
    from dashboards import reports
    from dashboards.saved_views import load_all
    from tdw.warehouse.query import open_readonly

    open_readonly(args.db).close()  # a missing warehouse is one line before anything is drawn
    reports.output_stem(args.out or "report", formats)  # a bad format is one line before anything is drawn
    if args.compare:
        variants = [v.strip() for v in args.compare.split(",") if v.strip()]
        report = reports.comparison_report(args.db, variants, args.all_columns)
    else:
        saved = load_all(args.db)
        if args.name in saved:
            report = reports.saved_view_report(args.db, saved[args.name])
        else:
            report = reports.variant_report(args.db, args.name)
    out = Path(args.out) if args.out else Path("reports") / report.name
    for path in reports.write_report(report, out, args.db, formats, args.force):
        print(f"wrote {path}", file=sys.stderr)
    return 0
