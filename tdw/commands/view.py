"""tdw view: saved views, kept in the catalog and as TOML files (dashboards/saved_views.py)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "view",
        help="save, list, show and remove saved views (named report views)",
        description="A saved view names dashboard views, variants, and pinned epochs, neurons, heads and inputs (pairs). add FILE.toml "
        "stores one (checked against the warehouse), list and show print them, remove deletes one. The dashboard's "
        "Reports page makes them too; `tdw report NAME` writes one as a report.",
    )
    cmd.add_argument("action", choices=["add", "list", "show", "remove"], help="what to do")
    cmd.add_argument("target", nargs="?", help="add: a TOML file; show, remove: the view's name")
    cmd.add_argument("--db", default="warehouse/tdw.duckdb", help="warehouse file; the catalog is beside it")
    return cmd


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dashboards import saved_views
    from tdw.errors import TdwError

    if args.action == "list":
        views = saved_views.load_all(args.db)
        for name, view in views.items():
            print(f"{name:<24} {len(view.views)} views, {', '.join(view.variants)}  {view.title}")
        if not views:  # an empty answer read as a failure
            print("no saved views (tdw view add FILE.toml, or the dashboard's Reports page)")
        return 0
    if not args.target:
        raise TdwError(f"{args.action}: needs {'a TOML file' if args.action == 'add' else 'the view name'}")
    if args.action == "show":
        print(saved_views.load(args.db, args.target).to_toml(), end="")
        return 0
    if args.action == "remove":
        saved_views.remove(args.db, args.target)
        print(f"removed saved view {args.target}")
        return 0
    path = Path(args.target)
    if not path.is_file():
        raise TdwError(f"{path}: no such file")
    from dashboards.views import all_views
    from tdw.warehouse.query import query

    view = saved_views.SavedView.from_toml(path.read_text(), str(path))
    variants = query("select variant from variants", args.db)["variant"].to_list()
    written = saved_views.save(args.db, view, list(all_views()), variants)
    print(f"saved view {view.name} ({written})")
    return 0
