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
from tdw.parameters import SWEEPABLE, build_config

SWEEP_SETTINGS = ("analyze", "executor", "workers", "address", "device", "stack", "checkpoints", "results", "extend")


def parse_values(key: str, raw: Any) -> list:
    """'97,101' or [97, 101] or 97 -> parsed values; a bad one names the key and the value."""
    if key not in SWEEPABLE:
        raise TdwError(f"sweep parameter {key!r}: unknown; use {', '.join(SWEEPABLE)}")
    return SWEEPABLE[key].read_list(raw)


def expand(grid: dict[str, list], checkpoints: str | None = None) -> list[VariantConfig]:
    """Every combination, each validated; duplicates (same variant name) are an error."""
    keys = list(grid)
    # swept parameters the default name leaves out get a suffix, so lr=1e-3,3e-3 gives p113_seed1_lr0.001
    # and p113_seed1_lr0.003 rather than two runs fighting over one directory
    suffixed = [k for k in keys if SWEEPABLE[k].suffix and len(grid[k]) > 1]
    wanted = parse_epoch_spec(checkpoints, "--checkpoints") if checkpoints else []
    configs = []
    for combination in itertools.product(*(grid[k] for k in keys)):
        changes = {SWEEPABLE[k].field: v for k, v in zip(keys, combination)}
        # validation names the bad option and value; over several families, each drops the dimensions it lacks
        config = build_config(changes, strict=len(grid.get("family", [None])) == 1)
        if wanted:  # kept where each variant has them
            config = config.replace(checkpoint_epochs=[e for e in wanted if e < config.num_epochs])
        if suffixed:
            values = dict(zip(keys, combination))
            config = config.replace(name=config.name + "".join(f"_{SWEEPABLE[k].suffix}{values[k]:g}" for k in suffixed))
        configs.append(config)
    longest = max(c.num_epochs for c in configs)
    beyond = [e for e in wanted if e >= longest]
    if beyond:
        raise TdwError(f"--checkpoints: epoch {beyond[0]} is beyond every variant's epochs (the longest has {longest})")
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


