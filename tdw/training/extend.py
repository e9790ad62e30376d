"""Train a run on past its last epoch: the researcher's "it has not grokked yet, give it longer".

The run resumes from its newest checkpoint with its own config grown to the new length
(`VariantConfig.extended_to`), so full-batch training makes it exactly the run that would have
been trained to that length from the start, with the checkpoints it has plus the new ones
(tested bit for bit). It replays with the arithmetic and thread count that trained it, as a
resume does; the analysis then recomputes what the new final checkpoint changes, and `tdw index`
what the run's new files do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tdw.errors import TdwError
from tdw.run_dir import RunDir
from tdw.training.trainer import train


def extend(run_path: str | Path, num_epochs: int, checkpoints: tuple[int, ...] = (), device: str = "auto",
           progress: bool = True, on_progress: Callable[[int, dict], None] | None = None) -> RunDir:
    """Train the run at `run_path` on to `num_epochs`, adding `checkpoints` past its last epoch
    (default: the default schedule of the longer run). Everything the command could refuse is
    refused before anything is written; a killed extension resumes when run again."""
    run = RunDir(run_path)
    existing = run.read_config()
    grown = existing.extended_to(num_epochs, tuple(checkpoints))
    if grown == existing and run.read_metadata().get("status") == "complete":
        if progress:
            print(f"{run.path}: already trained to {num_epochs} epochs; nothing to do")
        return run
    latest = run.checkpoint_epochs()
    if not latest or not run.optimizer_path(latest[-1]).exists():
        raise TdwError(f"{run.path}: no optimizer state at its last checkpoint to train on from "
                       "(an imported run cannot be extended)")
    results = run.path.parent.parent
    if RunDir.for_config(results, existing).path.resolve() != run.path.resolve():
        raise TdwError(f"{run.path}: its config names the variant {existing.name!r} of family {existing.family!r}; "
                       "a run is extended where tdw train wrote it")
    return train(grown, results, device=device, progress=progress, on_progress=on_progress, extend=True)
