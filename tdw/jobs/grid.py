"""A sweep's grid: lists of values per parameter, from the command line or a TOML file, expanded
into validated variant configs before anything runs."""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path
from typing import Any

from tdw.config import VariantConfig
from tdw.epoch_spec import parse_epoch_spec
from tdw.errors import TdwError
from tdw.schedules import parse_schedule

# grid key -> (VariantConfig field, parser of one value)
PARAMETERS: dict[str, tuple[str, Any]] = {
    "p": ("p", int), "seed": ("seed", int), "data_seed": ("data_seed", int), "train_frac": ("train_frac", float),
    "lr": ("lr", float), "weight_decay": ("weight_decay", float), "epochs": ("num_epochs", int),
    "d_model": ("d_model", int), "d_mlp": ("d_mlp", int), "n_heads": ("n_heads", int), "d_head": ("d_head", int),
    "schedule": ("lr_schedule", parse_schedule),
}


SWEEP_SETTINGS = ("analyze", "executor", "workers", "address", "device", "stack", "checkpoints", "results")


def parse_values(key: str, raw: Any) -> list:
    """'97,101' or [97, 101] or 97 -> parsed values; a bad one names the key and the value."""
    if key not in PARAMETERS:
        raise TdwError(f"sweep parameter {key!r}: unknown; use {', '.join(PARAMETERS)}")
    _field, parse = PARAMETERS[key]
    if isinstance(raw, list):
        items = raw
    elif isinstance(raw, str):
        items = raw.split("|") if key == "schedule" else raw.split(",")  # schedules contain commas
    else:
        items = [raw]
    values = []
    for item in items:
        try:
            values.append(parse(item.strip() if isinstance(item, str) else item))
        except TdwError as error:
            raise TdwError(f"--{key.replace('_', '-')} {item!r}: {error}") from None
        except (ValueError, TypeError):
            kind = "an integer" if parse is int else "a number"
            raise TdwError(f"--{key.replace('_', '-')} {item!r}: not {kind}") from None
    if not values:
        raise TdwError(f"--{key.replace('_', '-')}: no values")
    return values


# Swept parameters the default variant name leaves out get a suffix, so lr=1e-3,3e-3 gives
# p113_seed1_lr0.001 and p113_seed1_lr0.003 rather than two runs fighting over one directory.
NAME_SUFFIX = {"lr": "lr", "weight_decay": "wd", "train_frac": "frac", "d_model": "dm", "d_mlp": "dmlp",
               "n_heads": "h", "d_head": "dh"}


def expand(grid: dict[str, list], checkpoints: str | None = None) -> list[VariantConfig]:
    """Every combination, each validated; duplicates (same variant name) are an error."""
    keys = list(grid)
    suffixed = [k for k in keys if k in NAME_SUFFIX and len(grid[k]) > 1]
    if checkpoints:
        longest = max(grid.get("epochs", [VariantConfig.num_epochs]))
        beyond = [e for e in parse_epoch_spec(checkpoints, "--checkpoints") if e >= longest]
        if beyond:  # within the longest run they are kept where each variant has them
            raise TdwError(f"--checkpoints: epoch {beyond[0]} is beyond every variant's epochs (the longest has {longest})")
    configs = []
    for combination in itertools.product(*(grid[k] for k in keys)):
        changes = {PARAMETERS[k][0]: v for k, v in zip(keys, combination)}
        epochs = changes.get("num_epochs", VariantConfig.num_epochs)
        if checkpoints:
            changes["checkpoint_epochs"] = tuple(e for e in parse_epoch_spec(checkpoints, "--checkpoints") if e < epochs)
        config = VariantConfig(**changes)  # validation names the bad option and value
        if suffixed:
            values = dict(zip(keys, combination))
            config = config.replace(name=config.name + "".join(f"_{NAME_SUFFIX[k]}{values[k]:g}" for k in suffixed))
        configs.append(config)
    names = [c.name for c in configs]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise TdwError(f"sweep: two grid points are both named {duplicate!r}; vary a parameter that names the variant")
    return configs


def read_toml(path: str | Path) -> dict[str, Any]:
    """[grid] holds parameter lists; [sweep] may set any of SWEEP_SETTINGS."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise TdwError(f"{path}: no such sweep file") from None
    except tomllib.TOMLDecodeError as error:
        raise TdwError(f"{path}: {error}") from None
    if "grid" not in document:
        raise TdwError(f"{path}: needs a [grid] table, e.g. p = [97, 113] and seed = [1, 2]")
    unknown = sorted(set(document.get("sweep", {})) - set(SWEEP_SETTINGS))
    if unknown:
        raise TdwError(f"{path}: [sweep] {unknown[0]!r} is not a setting; use {', '.join(SWEEP_SETTINGS)}")
    return document


