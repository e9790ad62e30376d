"""tdw probe: named sets of inputs (a, b), defined once and reused (tdw/probes.py)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "probe",
        help="define, list and remove named sets of inputs",
        description="Named probes, kept in the catalog beside the warehouse and indexed into the warehouse "
        "(tables probes, probe_pairs). A spec is grid, train, test, sample:N, a list like 4+29,17+3, or a "
        "predicate over a, b and p like \"(a + b) % p < 10\", or several joined by | (their union). Use one with "
        "`tdw analyze --trace NAME` (or --trace-add) and `tdw intervene --probe NAME`.",
    )
    cmd.add_argument("action", choices=["add", "list", "remove", "show"], help="what to do")
    cmd.add_argument("name", nargs="?", help="the probe's name (add, remove, show)")
    cmd.add_argument("spec", nargs="?", help="the probe's spec (add)")
    cmd.add_argument("--replace", action="store_true", help="add: replace a probe of the same name")
    cmd.add_argument("--p", type=int, default=None, help="show: resolve against this p (grid probes only need p)")
    cmd.add_argument("--db", default="warehouse/tdw.duckdb", help="warehouse file; the catalog is beside it")
    return cmd


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from tdw import add_probe
    from tdw.errors import TdwError
    from tdw.probes import BUILT_IN, resolve_probe
    from tdw.warehouse.catalog import existing_catalog, named_probes, no_such_probe

    db = Path(args.db)
    if args.action == "add":
        if not args.name or args.spec is None:
            raise TdwError("add: needs NAME and SPEC, e.g. tdw probe add small \"(a + b) % p < 10\"")
        add_probe(args.name, args.spec, args.db, replace=args.replace)  # a bad name or spec is refused first
        print(f"probe {args.name}: {args.spec.strip()} (indexed into the warehouse by the next tdw index)")
        return 0
    named = named_probes(db)  # a catalog is made by adding, not by looking
    if args.action == "list":
        for name in BUILT_IN:
            print(f"{name:<16} (built in)")
        for name, spec in named.items():
            print(f"{name:<16} {spec}")
        return 0
    if not args.name:
        raise TdwError(f"{args.action}: needs the probe's NAME")
    if args.action == "remove":
        catalog = existing_catalog(db)
        if catalog is None:
            raise TdwError(no_such_probe(args.name))
        try:
            catalog.remove_probe(args.name)
        finally:
            catalog.dispose()
        print(f"removed probe {args.name}")
        return 0
    probe = resolve_probe(args.name, named)
    if args.p is None:
        print(probe.spec)
        return 0
    if probe.kind in ("train", "test", "sample"):
        raise TdwError(f"show --p: probe {probe.spec!r} depends on a run's split; query probe_pairs in the warehouse")
    mask = probe.select(args.p, np.zeros(args.p * args.p, dtype=bool))
    pairs = [f"{i // args.p}+{i % args.p}" for i in np.flatnonzero(mask)]
    print(f"{len(pairs)} pairs: " + ",".join(pairs[:50]) + (" ..." if len(pairs) > 50 else ""))
    return 0
