"""tdw train: train (or resume) one variant."""

from __future__ import annotations

import argparse

from tdw.config import DEFAULT_DATA_SEED, DEFAULT_FAMILY, VariantConfig
from tdw.epoch_spec import parse_epoch_spec
from tdw.errors import TdwError
from tdw.schedules import LRSchedule, parse_schedule


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    d = VariantConfig.__dataclass_fields__
    cmd = sub.add_parser(
        "train",
        help="train a variant (resumes an interrupted run)",
        description="Train one variant full-batch with AdamW into RESULTS/<family>/<variant>/. "
        "Running it again on an interrupted run continues from its last checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    cmd.add_argument("--p", type=int, default=d["p"].default, help="the modulus, an integer >= 3: the task is a + b mod p (primes, as in the "
                     "literature, give the clean Fourier picture; any p trains)")
    cmd.add_argument("--seed", type=int, default=d["seed"].default, help="model initialization seed")
    cmd.add_argument("--data-seed", type=int, default=DEFAULT_DATA_SEED, help="seed of the train/test split")
    cmd.add_argument("--train-frac", type=float, default=d["train_frac"].default, help="fraction of the p*p pairs used for training")
    cmd.add_argument("--lr", type=float, default=d["lr"].default, help="AdamW base learning rate")
    cmd.add_argument("--weight-decay", type=float, default=d["weight_decay"].default, help="AdamW weight decay")
    cmd.add_argument("--betas", default="0.9,0.98", help="AdamW betas, 'b1,b2'")
    cmd.add_argument("--epochs", type=int, default=d["num_epochs"].default, help="number of epochs (full-batch steps)")
    cmd.add_argument(
        "--checkpoints",
        default=None,
        help="checkpoint epochs: a list and start:stop:step ranges (stop excluded), e.g. "
        "'0:1000:100,1000:5000:25'; default: log-spaced early, then every 1%% of training; "
        "the last epoch is always kept",
    )
    cmd.add_argument("--eval-every", type=int, default=1, help="evaluate the test split every N epochs (and at every checkpoint)")
    cmd.add_argument(
        "--schedule",
        default="constant",
        help="LR schedule: constant | warmup:epochs=10 | step:every=1000,gamma=0.5 | "
        "cosine:min_factor=0.01 | piecewise:200-2000=0.1 (';' joins ranges); add label=NAME to name it",
    )
    cmd.add_argument("--d-model", type=int, default=d["d_model"].default, help="residual width")
    cmd.add_argument("--n-heads", type=int, default=d["n_heads"].default, help="attention heads")
    cmd.add_argument("--d-head", type=int, default=d["d_head"].default, help="width of each head")
    cmd.add_argument("--d-mlp", type=int, default=d["d_mlp"].default, help="MLP neurons")
    cmd.add_argument("--train-biases", action="store_true", help="train biases too (the published run keeps them at zero)")
    cmd.add_argument("--family", default=DEFAULT_FAMILY, help="model family (architecture + task)")
    cmd.add_argument("--name", default="", help="variant name (default p{P}_seed{S} plus data-seed/schedule suffixes)")
    cmd.add_argument("--results", default="results", help="results directory")
    cmd.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    cmd.add_argument("--force", action="store_true", help="start over even if the run exists with another config")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    return cmd


def config_from_args(args: argparse.Namespace) -> VariantConfig:
    from tdw.families import get_family

    get_family(args.family)
    try:
        betas = tuple(float(x) for x in args.betas.split(","))
    except ValueError:
        raise TdwError(f"--betas {args.betas!r}: expected two numbers 'b1,b2'") from None
    if len(betas) != 2:
        raise TdwError(f"--betas {args.betas!r}: expected two numbers 'b1,b2'")
    schedule: LRSchedule = parse_schedule(args.schedule)
    checkpoints = parse_epoch_spec(args.checkpoints) if args.checkpoints else ()
    return VariantConfig(
        family=args.family,
        p=args.p,
        seed=args.seed,
        data_seed=args.data_seed,
        train_frac=args.train_frac,
        d_model=args.d_model,
        n_heads=args.n_heads,
        d_head=args.d_head,
        d_mlp=args.d_mlp,
        lr=args.lr,
        weight_decay=args.weight_decay,
        betas=betas,
        num_epochs=args.epochs,
        checkpoint_epochs=tuple(checkpoints),
        eval_every=args.eval_every,
        lr_schedule=schedule,
        train_biases=args.train_biases,
        name=args.name,
    )


def run(args: argparse.Namespace) -> int:
    from tdw.training.trainer import train

    config = config_from_args(args)
    run_dir = train(config, results=args.results, device=args.device, force=args.force, progress=not args.quiet)
    print(f"run: {run_dir.path}")
    return 0
