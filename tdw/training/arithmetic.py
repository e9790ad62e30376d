"""Which arithmetic trains a run, recorded in its metadata so that resume and densify replay it.

A full-batch run follows its arithmetic's rounding: regroup one sum and, thousands of epochs
later, the weights differ. A run is therefore continued and densified with the arithmetic that
trained it, as it is with its thread count (`lifecycle.threads_that_wrote`):

1. the transformer's train rows taken from the whole p x p residual grid (every run before
   session 24, whose metadata has no `arithmetic`);
2. those rows computed in blocks of the train pairs only (`equals_residual_pairs`), on a CPU
   outside vmap: 1.04x a p=113 step. At the published shapes (d_model 128, 4 heads) its bits are
   arithmetic 1's (tested at p=113's split, checked at p=53 and 97); at others (a 2-head
   d_model-32 model) the BLAS rounds the smaller products' sums otherwise, and runs differ by
   float32 rounding;
3. on a CPU outside vmap, the train loss's cross entropy in one float32 pass with its own
   backward (`one_pass_cross_entropy`: each row's float64 loss to float32's relative precision)
   and AdamW fused (one pass per weight): 1.089x a p=113 step. Every family's runs round
   otherwise than under 2, so a new run follows another trajectory to a similar circuit (the
   demo's and the published configuration's epochs: docs/benchmarks.md, session 25).

The stacked trainer's vmapped step and the CUDA graph are the same in all three. New runs take
`LATEST`, or `TDW_ARITHMETIC` when set (to train as older code did, for comparison).
"""

from __future__ import annotations

import os

from tdw.errors import TdwError
from tdw.families.base import LATEST_ARITHMETIC as LATEST
from tdw.run_dir import RunDir

BEFORE_RECORDING = 1  # what a run trained before the arithmetic was recorded used


def new_run_arithmetic() -> int:
    """The arithmetic a run started now trains with: `TDW_ARITHMETIC` or `LATEST`."""
    value = os.environ.get("TDW_ARITHMETIC")
    if value is None:
        return LATEST
    if value not in {str(version) for version in range(1, LATEST + 1)}:
        raise TdwError(f"TDW_ARITHMETIC={value!r}: expected one of 1..{LATEST}")
    return int(value)


def recorded_arithmetic(run: RunDir) -> int:
    """The arithmetic `run` was trained with: its metadata's, 1 for a run from before it was
    recorded, `new_run_arithmetic()` for one not trained yet. One this version lacks (a newer
    tdw's) is refused in one line: replaying it with another would not give the run's checkpoints."""
    metadata = run.read_metadata()
    if not metadata:
        return new_run_arithmetic()
    recorded = metadata.get("arithmetic")
    if recorded is None:
        return BEFORE_RECORDING
    if not isinstance(recorded, int) or isinstance(recorded, bool) or not 1 <= recorded <= LATEST:
        raise TdwError(f"{run.path}: trained with arithmetic {recorded!r}, which this tdw lacks (it has 1..{LATEST})")
    return recorded
