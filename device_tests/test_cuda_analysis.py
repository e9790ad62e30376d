"""Analysis on a CUDA device (`tdw analyze --device cuda`): run on a GPU machine, never in CI.

A small run trained on the CPU is analyzed twice, on the CPU and on the GPU, every default
analyzer and the opt-in LLC at its last checkpoint. The two devices sum in different orders, so
values agree to rounding, not bit for bit: nearly every row of every table within a relative
1e-3 (a near-tie may flip a discrete choice, such as a neuron's best frequency, in a few rows),
and the LLC, whose chains draw the same noise on both (the CPU generator) but follow each
device's rounding over 100 steps, within 20% with sound chains on both.
"""

from __future__ import annotations

import shutil

import polars as pl
import pytest
import torch

from tdw.analysis.pipeline import AnalysisPipeline
from tdw.config import VariantConfig
from tdw.run_dir import RunDir
from tdw.training.trainer import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
AGREEING_ROWS = 0.99  # the share of a table's rows within the tolerance below
RELATIVE, ABSOLUTE = 1e-3, 1e-5
LLC_RELATIVE = 0.2


def analyzed_copy(run: RunDir, folder, device: str) -> RunDir:
    copy = RunDir(shutil.copytree(run.path, folder / run.path.name))
    pipeline = AnalysisPipeline(copy.path, device=device)
    pipeline.run(progress=False)
    pipeline.run(["llc"], [copy.checkpoint_epochs()[-1]], progress=False)
    return copy


def test_cpu_and_cuda_analyses_agree(tmp_path):
    config = VariantConfig(p=23, train_frac=0.5, num_epochs=300, checkpoint_epochs=(0, 100, 200, 299))
    run = train(config, tmp_path / "results", device="cpu", progress=False)
    assert_analyses_agree(run, analyzed_copy(run, tmp_path / "cpu", "cpu"), analyzed_copy(run, tmp_path / "cuda", "cuda"))


def assert_analyses_agree(run: RunDir, on_cpu: RunDir, on_cuda: RunDir) -> None:
    from tdw.warehouse.sources import artifact_tables

    specs = artifact_tables()
    tables = sorted(p.name for p in on_cpu.artifacts_dir.iterdir() if p.is_dir())
    assert tables == sorted(p.name for p in on_cuda.artifacts_dir.iterdir() if p.is_dir())
    for table in tables:
        spec = specs[table]
        for cpu_file in sorted((on_cpu.artifacts_dir / table).glob("*.parquet")):
            cpu = pl.read_parquet(cpu_file)
            cuda = pl.read_parquet(on_cuda.artifacts_dir / table / cpu_file.name)
            assert cpu.columns == cuda.columns and cpu.height == cuda.height, (table, cpu_file.name)
            if table == "llc" or not spec.value_type.is_numeric():  # the LLC below; coded maps: their decoded tables
                continue
            keys = [c for c in ("variant", "epoch", *spec.keys) if c in cpu.columns]
            joined = cpu.join(cuda, on=keys, suffix="_cuda", nulls_equal=True)
            assert joined.height == cpu.height, (table, cpu_file.name, "keys differ")
            a, b = joined[spec.value_column].cast(pl.Float64), joined[f"{spec.value_column}_cuda"].cast(pl.Float64)
            if joined.height == 0:
                continue
            close = (((a - b).abs() <= ABSOLUTE + RELATIVE * b.abs()) | (a.is_nan() & b.is_nan())).fill_null(False) \
                | (a.is_null() & b.is_null())
            assert close.mean() >= AGREEING_ROWS, (table, cpu_file.name, close.mean())
    final = f"epoch_{run.checkpoint_epochs()[-1]:05d}.parquet"
    wide = {device: {(r["component"], r["statistic"]): r["value"]
                     for r in pl.read_parquet(copy.artifacts_dir / "llc" / final).iter_rows(named=True)}
            for device, copy in (("cpu", on_cpu), ("cuda", on_cuda))}
    for component in ("all", "attention", "mlp"):
        assert wide["cpu"][(component, "diverged")] == 0 and wide["cuda"][(component, "diverged")] == 0
        assert wide["cuda"][(component, "llc")] == pytest.approx(wide["cpu"][(component, "llc")], rel=LLC_RELATIVE)
