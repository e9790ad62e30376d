"""What an analyzer is: a name, a version, what it consumes, and the tables it emits.

Every table is long format. The pipeline prepends `variant` and `epoch`; an analyzer returns
its own key columns and a `value` column. Per-checkpoint analyzers see one CheckpointContext;
run-level analyzers (`requires = "run"`) see every checkpoint of the run at once.

`depends_on` says what beyond the analyzer's code an artifact's values depend on, so that the
pipeline can recompute it when that changes (a run that grew, a re-trained checkpoint): only its
own checkpoint; also the run's final checkpoint (the key frequencies themselves); its own
checkpoint and the run's key frequencies (progress measures, which read them: a run that grows
by a checkpoint keeps its keys, and then its artifacts, once it has grokked); or every checkpoint
(a PCA over the trajectory). Artifacts record a fingerprint of those checkpoints' digests (and of
the key frequencies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

import polars as pl

if TYPE_CHECKING:
    from tdw.analysis.context import CheckpointContext, RunContext
    from tdw.families.base import Family

Requirement = Literal["weights", "activations", "run"]
Dependency = Literal["checkpoint", "final_checkpoint", "key_frequencies", "checkpoints"]


@dataclass(frozen=True)
class TableSpec:
    """One output table: its key columns (after variant, epoch) and their Polars types.

    `warehouse` says how `tdw index` exposes it: "table" copies the rows into DuckDB (sorted by
    variant and epoch, so a slice reads a few blocks); "parquet" leaves them in the artifact files
    behind a view, for tables too large to copy (p x p maps per neuron or head).
    """

    keys: dict[str, pl.DataType]
    value_type: pl.DataType = field(default_factory=pl.Float32)
    value_column: str = "value"
    warehouse: Literal["table", "parquet"] = "table"


@dataclass(frozen=True)
class ReplacedTable:
    """A table an earlier version of an analyzer wrote under another name, and how its files read
    as the table that replaced it, so runs analyzed before the change stay readable where their
    checkpoints are gone (a study bundle exported without them).

    `into` is the analyzer's table the old rows become; `select` is a DuckDB select list over the
    old files giving that table's columns. `tdw index` reads an old file through it wherever the
    new table has no file for the same epoch; `tdw analyze` deletes an old file once the new one
    is written beside it."""

    into: str
    select: str


class Analyzer:
    name: ClassVar[str]
    version: ClassVar[int] = 1
    requires: ClassVar[Requirement] = "weights"
    depends_on: ClassVar[Dependency] = "checkpoint"
    # activation roles it needs (Family.hooks: "neurons", "attention"); a family without one of
    # them skips the analyzer, and the pipeline's report says so
    hooks: ClassVar[tuple[str, ...]] = ()
    optional_hooks: ClassVar[tuple[str, ...]] = ()  # read when the family has them
    tables: ClassVar[dict[str, TableSpec]]
    # tables an earlier version wrote under another name, by that name (neuron_activations v1's
    # list-coded maps): read as this version's table until `tdw analyze` rewrites them
    replaces: ClassVar[dict[str, ReplacedTable]] = {}
    # computes on the run's traced probe (tdw/probes.py) rather than the whole grid, so its
    # artifacts are recomputed when `tdw analyze --trace` changes the probe
    traced: ClassVar[bool] = False
    description: ClassVar[str] = ""
    # False: opt-in, run only when named (`tdw analyze RUN --analyzers llc`): an analyzer costing
    # far more than the rest (hundreds of forward-backward passes per checkpoint)
    default: ClassVar[bool] = True

    def missing_hooks(self, family: Family) -> list[str]:
        """The roles this analyzer needs that `family` has no hook for ([] when it applies)."""
        return [role for role in self.hooks if role not in family.hooks]

    def analyze(self, ctx: CheckpointContext) -> dict[str, pl.DataFrame]:
        raise NotImplementedError

    def analyze_run(self, ctx: RunContext) -> dict[str, pl.DataFrame]:
        """Run-level analyzers only: frames include an `epoch` column."""
        raise NotImplementedError
