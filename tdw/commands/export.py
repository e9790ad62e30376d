"""tdw export figure: a dashboard view as PNG/SVG/PDF, an animated GIF over epochs, or HTML."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser("export", help="export a dashboard figure (png, svg, pdf, gif, html)",
                         description="Export one dashboard view without a browser; the format follows --out's suffix. "
                         "A .gif animates the view over the variant's checkpoints.")
    what = cmd.add_subparsers(dest="what", required=True)
    figure = what.add_parser("figure", help="one view of one variant")
    figure.add_argument("view", help="view name (tdw export figure --list)", nargs="?")
    figure.add_argument("--list", action="store_true", help="list the views and exit")
    figure.add_argument("--variant", help="variant name")
    figure.add_argument("--epoch", type=int, default=None, help="checkpoint epoch (default: the last)")
    figure.add_argument("--neuron", type=int, default=0, help="MLP neuron, for views of one neuron")
    figure.add_argument("--head", type=int, default=0, help="attention head, for views of one head")
    figure.add_argument("--pair", default="0+0", help="input a+b, for views of one input (the Trace section); "
                        "the margin view (pair_trace) takes several, 4+29,17+3: the first, the others beside it")
    figure.add_argument("--fps", type=int, default=4, help="GIF frames per second")
    figure.add_argument("--log-epochs", action="store_true",
                        help="a view drawn over epochs against log epochs, from epoch 1 (the dashboard's toggle)")
    figure.add_argument("--db", default="warehouse/tdw.duckdb", help="warehouse file")
    figure.add_argument("--out", help="output file: .png .svg .pdf .gif or .html")
    return cmd


def run(args: argparse.Namespace) -> int:
    from tdw.errors import TdwError

    if args.list:
        from dashboards.views import all_views

        for name, view in all_views().items():
            shows = "over epochs" if view.over_epochs else "needs " + ", ".join(view.needs) if view.needs else "one per variant"
            print(f"{name:24s} {view.title} ({shows})")
        return 0
    for flag in ("view", "variant", "out"):
        if not getattr(args, flag):
            raise TdwError(f"{'--' + flag if flag != 'view' else 'VIEW'}: required (tdw export figure VIEW --variant V --out FILE)")
    import dashboards.export

    out = dashboards.export.figure(args.view, args.variant, args.out, epoch=args.epoch, neuron=args.neuron, head=args.head,
                            db=args.db, fps=args.fps, pair=args.pair, log_epochs=args.log_epochs)
    print(f"wrote {out}", file=sys.stderr)
    return 0
