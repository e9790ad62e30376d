"""tdw train: train (or resume) one variant."""

from __future__ import annotations

import argparse

from tdw.config import VariantConfig
from tdw.epoch_spec import parse_epoch_spec
from tdw.parameters import PARAMETERS, build_config, parse_bool


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    cmd = sub.add_parser(
        "train",
        help="train a variant (resumes an interrupted run)",
        description="Train one variant full-batch with AdamW into RESULTS/<family>/<variant>/. "
        "Running it again on an interrupted run continues from its last checkpoint.",
    )
    # the variant's parameters, declared once in tdw/parameters.py; a flag left out takes the
    # family's default (the defaults shown are the default family's)
    for parameter in PARAMETERS:
        if parameter.parse is parse_bool:
            cmd.add_argument(parameter.option, dest=parameter.field, action="store_const", const="true",
                             default=argparse.SUPPRESS, help=parameter.help)
        else:
            cmd.add_argument(parameter.option, dest=parameter.field, metavar=parameter.key.upper(),
                             default=argparse.SUPPRESS,
                             help=f"{parameter.help} (default: {parameter.default_text or parameter.default})")
    cmd.add_argument(
        "--checkpoints",
        default=None,
        help="checkpoint epochs: a list and start:stop:step ranges (stop excluded), e.g. "
        "'0:1000:100,1000:5000:25'; default: log-spaced early, then every 1%% of training; "
        "the last epoch is always kept",
    )
    cmd.add_argument("--name", default="", help="variant name (default p{P}_seed{S} plus data-seed/schedule suffixes)")
    cmd.add_argument("--results", default="results", help="results directory")
    cmd.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    cmd.add_argument("--force", action="store_true", help="start over even if the run exists with another config")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    return cmd


def config_from_args(args: argparse.Namespace) -> VariantConfig:
    values = {p.field: p.read(getattr(args, p.field)) for p in PARAMETERS if hasattr(args, p.field)}
    checkpoints = parse_epoch_spec(args.checkpoints) if args.checkpoints else ()
    return build_config(values, checkpoint_epochs=tuple(checkpoints), name=args.name)


def run(args: argparse.Namespace) -> int:
    from tdw.training.trainer import train

    config = config_from_args(args)
    run_dir = train(config, results=args.results, device=args.device, force=args.force, progress=not args.quiet)
    print(f"run: {run_dir.path}")
    return 0
