"""A run directory: `results/<family>/<variant>/` and everything in it.

    config.json                      the VariantConfig (what determines the run)
    metadata.json                    versions, git sha, timings, status
    losses.parquet                   variant, epoch, split, loss, accuracy (every evaluated epoch), and
                                     the SHA-256 of those values in its metadata (`losses_digest`)
    checkpoints/checkpoint_epoch_{epoch:05d}.safetensors   weights, TransformerLens names
    checkpoints/optimizer_epoch_{epoch:05d}.safetensors    AdamW state for resume and densify
    artifacts/<analyzer>/...         analysis Parquet (see tdw.analysis)
    trace_probe.json                 the inputs the per-input traces cover (`tdw analyze --trace`)
    analysis_settings.json           what an analyzer was told for this run, by analyzer (`--llc-step`)

A checkpoint exists once its weights file exists: the optimizer file is written first, and
both are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tdw import atomic, checksummed
from tdw.config import VariantConfig
from tdw.errors import CorruptFileError, TdwError

if TYPE_CHECKING:  # loading weights imports torch (tdw.checksummed); listing runs needs none
    import torch

CHECKPOINT_RE = re.compile(r"^checkpoint_epoch_(\d+)\.safetensors$")
LOSS_SCHEMA = {"variant": pl.Utf8, "epoch": pl.Int32, "split": pl.Utf8, "loss": pl.Float64, "accuracy": pl.Float64}
LOSSES_DIGEST_KEY = "tdw.sha256"  # in the losses file's Parquet key-value metadata: `losses_digest` of its rows


def losses_digest(losses: pl.DataFrame) -> str:
    """SHA-256 of a losses frame's values, column by column in `LOSS_SCHEMA`'s order, nulls marked.

    Why: the losses file is rewritten as a run trains, so it has no entry in a manifest, and
    Parquet's pages carry no checksum that polars or pyarrow write; a flipped bit inside a
    compressed page often still decodes, into other losses (and another grokking turn). The
    file records this digest in its metadata and `tdw verify` recomputes it. Over the decoded
    values, not the file's bytes, so the writer's encoding and compression do not enter it."""
    digest = hashlib.sha256()
    for name, dtype in LOSS_SCHEMA.items():
        column = losses[name].cast(dtype)
        digest.update(name.encode() + b"\0" + column.is_null().to_numpy().tobytes())
        if dtype == pl.Utf8:
            digest.update(column.fill_null("").str.join("\0").item().encode())
        else:
            digest.update(column.fill_null(0).to_numpy().tobytes())
    return digest.hexdigest()


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def for_config(cls, results: str | Path, config: VariantConfig) -> RunDir:
        return cls(Path(results) / config.family / config.name)

    # --- files -------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metadata_path(self) -> Path:
        return self.path / "metadata.json"

    @property
    def losses_path(self) -> Path:
        return self.path / "losses.parquet"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def artifacts_dir(self) -> Path:
        return self.path / "artifacts"

    def exists(self) -> bool:
        return self.config_path.exists()

    # --- config and metadata -------------------------------------------------------------
    def read_config(self) -> VariantConfig:
        if not self.config_path.exists():
            raise TdwError(f"{self.path}: not a run directory (no config.json)")
        data = read_json_object(self.config_path, "restore it from a copy, or delete the run and re-train it")
        try:
            return VariantConfig.from_dict(data)
        except (TdwError, TypeError, ValueError) as error:
            raise CorruptFileError(self.config_path, f"not a valid run config: {error}",
                                   "restore it from a copy, or delete the run and re-train it") from None

    def write_config(self, config: VariantConfig) -> None:
        atomic.write_json(self.config_path, config.to_dict())

    def read_metadata(self) -> dict[str, Any]:
        if not self.metadata_path.exists():
            return {}
        return read_json_object(self.metadata_path, "delete it; `tdw train` writes it anew")

    def update_metadata(self, **fields: Any) -> dict[str, Any]:
        metadata = {**self.read_metadata(), **fields}
        atomic.write_json(self.metadata_path, metadata)
        return metadata

    # --- which inputs the per-input traces cover (tdw/probes.py) ----------------------------
    @property
    def trace_path(self) -> Path:
        return self.path / "trace_probe.json"

    def trace_spec(self) -> str:
        """The probe spec the trace analyzers compute on ("auto" unless `tdw analyze --trace` set one)."""
        if not self.trace_path.exists():
            return "auto"
        return str(read_json_object(self.trace_path, "delete it; the traces then cover the default probe").get("spec", "auto"))

    def write_trace_spec(self, spec: str) -> None:
        atomic.write_json(self.trace_path, {"spec": spec})

    # --- what an analyzer was told for this run (`tdw analyze --llc-step`) ---------------------
    @property
    def analysis_settings_path(self) -> Path:
        return self.path / "analysis_settings.json"

    def analysis_settings(self, analyzer: str) -> dict[str, Any]:
        """The settings `analyzer` keeps for this run ({}: its defaults). Its artifacts record
        them, so a change makes them stale (`tdw.analysis.artifacts.staleness`)."""
        return dict(self._every_analysis_setting().get(analyzer) or {})

    def write_analysis_settings(self, analyzer: str, settings: dict[str, Any]) -> None:
        atomic.write_json(self.analysis_settings_path, {**self._every_analysis_setting(), analyzer: settings})

    def _every_analysis_setting(self) -> dict[str, Any]:
        """analysis_settings.json by analyzer ({} without one); a damaged file is one line."""
        if not self.analysis_settings_path.exists():
            return {}
        return read_json_object(self.analysis_settings_path, "delete it; the analyzers then use their defaults")

    @property
    def variant(self) -> str:
        return self.path.name

    # --- checkpoints ---------------------------------------------------------------------
    def checkpoint_path(self, epoch: int) -> Path:
        return self.checkpoint_dir / f"checkpoint_epoch_{epoch:05d}.safetensors"

    def optimizer_path(self, epoch: int) -> Path:
        return self.checkpoint_dir / f"optimizer_epoch_{epoch:05d}.safetensors"

    def checkpoint_epochs(self) -> list[int]:
        if not self.checkpoint_dir.exists():
            return []
        found = (CHECKPOINT_RE.match(p.name) for p in self.checkpoint_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def save_checkpoint(
        self, epoch: int, weights: dict[str, torch.Tensor], optimizer_state: dict[str, torch.Tensor] | None
    ) -> None:
        meta = {"epoch": str(epoch), "variant": self.variant, "format": "tdw-checkpoint-1"}
        if optimizer_state is not None:
            checksummed.write(self.optimizer_path(epoch), optimizer_state, meta)
        checksummed.write(self.checkpoint_path(epoch), weights, meta)

    def load_weights(self, epoch: int, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """The weights after `epoch` steps, checked against their recorded checksum."""
        path = self.checkpoint_path(epoch)
        if not path.exists():
            raise TdwError(f"{self.path}: no checkpoint at epoch {epoch}")
        return checksummed.read(path, device, remedy=self.corrupt_checkpoint_remedy(epoch))

    def load_optimizer(self, epoch: int, device: str | torch.device = "cpu") -> dict[str, torch.Tensor] | None:
        path = self.optimizer_path(epoch)
        if not path.exists():
            return None
        return checksummed.read(path, device, remedy=self.corrupt_checkpoint_remedy(epoch))

    def corrupt_checkpoint_remedy(self, epoch: int) -> str:
        earlier = [e for e in self.checkpoint_epochs() if e < epoch]
        if earlier:
            return (f"delete it and run `tdw densify {self.path} --epochs {epoch}` to replay it from epoch "
                    f"{earlier[-1]} (or `tdw train` to resume from the newest good checkpoint)")
        return "re-train the run (`tdw train ... --force`)"

    def checkpoint_digest(self, epoch: int) -> str:
        """SHA-256 of the checkpoint's tensor data (recorded at write time; computed for older files)."""
        return checksummed.digest(self.checkpoint_path(epoch))

    # --- losses --------------------------------------------------------------------------
    def read_losses(self) -> pl.DataFrame:
        if not self.losses_path.exists():
            return pl.DataFrame(schema=LOSS_SCHEMA)
        return pl.read_parquet(self.losses_path)

    def write_losses(self, losses: pl.DataFrame) -> None:
        frame = losses.select(list(LOSS_SCHEMA)).cast(LOSS_SCHEMA).sort("epoch", "split")
        metadata = {LOSSES_DIGEST_KEY: losses_digest(frame)}
        atomic.write_with(self.losses_path, lambda tmp: frame.write_parquet(tmp, compression="zstd", metadata=metadata))


def read_json_object(path: Path, remedy: str) -> dict[str, Any]:
    """A JSON object from `path`; CorruptFileError (one line naming the file) when it is not one."""
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptFileError(path, f"not JSON: {str(error).splitlines()[0]}", remedy) from None
    if not isinstance(data, dict):
        raise CorruptFileError(path, "not a JSON object", remedy)
    return data


def find_runs(results: str | Path) -> list[RunDir]:
    """Every run directory under `results` (at any depth; normally results/<family>/<variant>)."""
    results = Path(results)
    if not results.exists():
        return []
    return sorted((RunDir(p.parent) for p in results.rglob("config.json") if ".tmp-" not in p.name), key=lambda r: str(r.path))
