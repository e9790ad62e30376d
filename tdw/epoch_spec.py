"""Epoch lists: `--checkpoints` / `--epochs` specs and the default dense-early schedule."""

from __future__ import annotations

import numpy as np

from tdw.errors import TdwError


def parse_epoch_spec(spec: str, option: str = "--checkpoints") -> list[int]:
    """`0:1000:100,1000:5000:25,7777` -> sorted unique epochs; ranges exclude stop like range()."""
    epochs: set[int] = set()
    for part in filter(None, (s.strip() for s in spec.split(","))):
        pieces = part.split(":")
        try:
            numbers = [int(x) for x in pieces]
        except ValueError:
            raise TdwError(f"{option} {spec!r}: {part!r} is not an epoch or start:stop[:step] range") from None
        if len(numbers) == 1:
            epochs.add(numbers[0])
        elif len(numbers) in (2, 3):
            start, stop = numbers[0], numbers[1]
            step = numbers[2] if len(numbers) == 3 else 1
            if step <= 0 or stop <= start:
                raise TdwError(f"{option} {spec!r}: range {part!r} needs start < stop and step > 0")
            epochs.update(range(start, stop, step))
        else:
            raise TdwError(f"{option} {spec!r}: {part!r} has too many ':'")
    if not epochs:
        raise TdwError(f"{option} {spec!r}: names no epoch")
    return sorted(epochs)


def default_checkpoint_epochs(num_epochs: int, early_points: int = 20) -> list[int]:
    """Log-spaced up to 1% of training, then every ~1%, plus the last epoch.

    Dense early (memorization happens in the first hundreds of epochs) and uniform after, so a
    turn anywhere in the run lies within 1% of training of a checkpoint.
    """
    last = num_epochs - 1
    stride = max(num_epochs // 100, 1)
    early = np.unique(np.round(np.geomspace(1, max(stride, 1), early_points)).astype(int))
    epochs = {0, last, *early.tolist(), *range(stride, num_epochs, stride)}
    return sorted(e for e in epochs if 0 <= e <= last)
