"""Artifact files: `<run>/artifacts/<table>/epoch_{epoch:05d}.parquet` (or `run.parquet` for
trajectory tables), tidy, sorted by their keys, zstd-compressed, written atomically, with the
analyzer's name and version in the Parquet key-value metadata.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tdw import atomic
from tdw.analysis.analyzer import Analyzer, TableSpec

RUN_LEVEL_FILE = "run.parquet"


def artifact_path(artifacts_dir: Path, table: str, epoch: int | None) -> Path:
    name = RUN_LEVEL_FILE if epoch is None else f"epoch_{epoch:05d}.parquet"
    return artifacts_dir / table / name


def stored_metadata(path: Path) -> dict[str, str] | None:
    """The tdw metadata of an artifact, or None if it does not exist or is unreadable."""
    if not path.exists():
        return None
    try:
        raw = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return None
    return {k.decode(): v.decode() for k, v in raw.items() if k.startswith(b"tdw.")}


DEPENDS_KEY = "tdw.depends"
STALE_BECAUSE = {  # why an artifact whose recorded dependencies differ is stale, by Analyzer.depends_on
    "checkpoint": "its checkpoint changed",
    "final_checkpoint": "the final checkpoint changed",
    "checkpoints": "the set of checkpoints changed",
}


def staleness(path: Path, analyzer: Analyzer, depends: str) -> str | None:
    """None when the artifact is up to date; otherwise why it must be (re)computed: 'missing', or
    a reason it is stale (a newer analyzer version, a changed dependency, an unreadable file)."""
    if not path.exists():
        return "missing"
    meta = stored_metadata(path)
    if meta is None:
        return "unreadable"
    if meta.get("tdw.analyzer_version") != str(analyzer.version):
        return "a newer analyzer version"
    if DEPENDS_KEY not in meta:
        return "written before tdw recorded dependencies"
    if meta[DEPENDS_KEY] != depends:
        return STALE_BECAUSE[analyzer.depends_on]
    return None


def tidy(frame: pl.DataFrame, spec: TableSpec, variant: str, epoch: int | None) -> pl.DataFrame:
    """Prepend variant (and epoch), cast keys and value, sort by keys."""
    if epoch is not None:
        frame = frame.with_columns(pl.lit(epoch, pl.Int32).alias("epoch"))
    frame = frame.with_columns(pl.lit(variant).alias("variant"))
    columns = ["variant", "epoch", *spec.keys, spec.value_column]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"artifact frame lacks columns {missing}")
    casts = {"variant": pl.Utf8, "epoch": pl.Int32, **spec.keys, spec.value_column: spec.value_type}
    return frame.select(columns).cast(casts).sort(["epoch", *spec.keys])


def write_artifact(
    path: Path, frame: pl.DataFrame, analyzer: Analyzer, table: str, extra: dict[str, str] | None = None,
    row_group_size: int | None = None,
) -> int:
    metadata = {
        "tdw.analyzer": analyzer.name,
        "tdw.analyzer_version": str(analyzer.version),
        "tdw.table": table,
        **(extra or {}),
    }
    arrow = frame.to_arrow()
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), **{k: str(v) for k, v in metadata.items()}})
    atomic.write_with(
        path,
        lambda tmp: pq.write_table(arrow, tmp, compression="zstd", row_group_size=row_group_size or 1_000_000),
    )
    return path.stat().st_size


def read_table(artifacts_dir: Path, table: str) -> pl.DataFrame:
    files = sorted((artifacts_dir / table).glob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()

