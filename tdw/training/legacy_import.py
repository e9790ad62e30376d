"""Import a pickled grokking run (`.pth`) into a run directory, safely.

Loaded with `torch.load(weights_only=True)`: tensors, dicts, lists and numbers only. A file
that needs arbitrary code to unpickle (a config object, a custom class) is refused.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import polars as pl
import torch

from tdw.config import VariantConfig
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.run_dir import LOSS_SCHEMA, RunDir
from tdw.training.lifecycle import now
from tdw.versions import environment_versions

IGNORED_BUFFERS = ("attn.mask", "attn.IGNORE")


def _load(path: Path) -> object:
    if not path.exists():
        raise TdwError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "unsafe content"
        raise TdwError(
            f"{path}: refused, unpickling it would run arbitrary code ({first[:120]}); "
            "re-save it as plain tensors (state dicts, lists, numbers)"
        ) from None
    except (RuntimeError, EOFError, ValueError) as error:
        raise TdwError(f"{path}: not a readable torch file ({str(error).splitlines()[0][:120]})") from None


def _clean_state(state: dict) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TdwError("state dict: expected a mapping of names to tensors")
    return {k: v.float() for k, v in state.items() if not k.endswith(IGNORED_BUFFERS)}


def import_legacy(
    path: str | Path,
    results: str | Path = "results",
    family: str = "modular_addition",
    name: str | None = None,
    seed: int = 0,
    force: bool = False,
) -> RunDir:
    path = Path(path)
    loaded = _load(path)
    if isinstance(loaded, dict) and "model" in loaded:
        final = _clean_state(loaded["model"])
        checkpoints = [_clean_state(s) for s in loaded.get("checkpoints", [])]
        epochs = [int(e) for e in loaded.get("checkpoint_epochs", [])]
        if len(epochs) != len(checkpoints):
            raise TdwError(f"{path}: {len(checkpoints)} checkpoints but {len(epochs)} checkpoint_epochs")
        train_losses = [float(x) for x in loaded.get("train_losses", [])]
        test_losses = [float(x) for x in loaded.get("test_losses", [])]
    elif isinstance(loaded, dict):
        final = _clean_state(loaded)
        checkpoints, epochs, train_losses, test_losses = [], [], [], []
    else:
        raise TdwError(f"{path}: expected a state dict or a dict with 'model'")

    fam = get_family(family)
    try:
        dims = fam.config_from_state_dict(final)
    except KeyError as missing:
        raise TdwError(f"{path}: not a {family} checkpoint (missing {missing})") from None
    num_epochs = max([len(train_losses), *(e + 1 for e in epochs), 1])
    final_epoch = num_epochs - 1
    states = dict(zip(epochs, checkpoints))
    states[final_epoch] = final
    config = VariantConfig(
        family=family,
        seed=seed,
        num_epochs=num_epochs,
        checkpoint_epochs=tuple(sorted(states)),
        name=name or path.stem,
        **dims,
    )
    run = RunDir.for_config(results, config)
    if run.exists() and not force:
        raise TdwError(f"{run.path} exists; pass --force to replace it or --name to import beside it")
    model = fam.build_model(config)
    expected = set(model.state_dict())
    for epoch, state in states.items():
        if set(state) != expected:
            diff = sorted(set(state) ^ expected)
            raise TdwError(f"{path}: checkpoint {epoch} does not match the {family} model (e.g. key {diff[0]!r})")
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        wrong = [k for k, v in state.items() if tuple(v.shape) != shapes[k]]
        if wrong:
            raise TdwError(f"{path}: checkpoint {epoch}: {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, expected {shapes[wrong[0]]}")

    if run.path.exists():
        import shutil

        shutil.rmtree(run.path)
    run.write_config(config)
    for epoch, state in sorted(states.items()):
        run.save_checkpoint(epoch, state, None)
    rows = [(config.name, e, "train", v, math.nan) for e, v in enumerate(train_losses)]
    rows += [(config.name, e, "test", v, math.nan) for e, v in enumerate(test_losses)]
    if rows:
        run.write_losses(pl.DataFrame(rows, schema=LOSS_SCHEMA, orient="row"))
    run.update_metadata(
        status="complete",
        variant=config.name,
        family=family,
        imported_from=str(path.resolve()),
        imported_at=now(),
        note="imported: no optimizer state, so it cannot be resumed or densified",
        versions=environment_versions(),
    )
    return run
