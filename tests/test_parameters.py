"""A variant's parameters are declared once (tdw/parameters.py) and everything else follows: the
train flags, the sweep's grid and names, the Train page's form and the warehouse's `variants`."""

from __future__ import annotations

import dataclasses

import pytest

from tdw.cli import build_parser
from tdw.commands.train import config_from_args
from tdw.config import VariantConfig
from tdw.errors import TdwError
from tdw.jobs.grid import expand, parse_values
from tdw.parameters import PARAMETERS, SWEEPABLE, variant_row, variant_schema
from tdw.schedules import parse_schedule

# what a variant is beyond its parameters: which epochs are kept, its name
NOT_PARAMETERS = {"checkpoint_epochs", "name"}


def test_every_config_field_is_a_declared_parameter_or_a_run_setting():
    fields = {f.name for f in dataclasses.fields(VariantConfig)}
    assert {p.field for p in PARAMETERS} == fields - NOT_PARAMETERS


def test_train_flags_round_trip_every_parameter():
    values = {"family": "modular_addition", "p": "31", "seed": "5", "data_seed": "7", "train_frac": "0.4", "lr": "0.002", "weight_decay": "0.5",
              "betas": "0.8,0.95", "epochs": "500", "eval_every": "2", "schedule": "cosine:min_factor=0.1",
              "d_model": "64", "n_heads": "2", "d_head": "16", "d_mlp": "128"}
    assert set(values) | {"train_biases"} == {p.key for p in PARAMETERS}
    argv = ["train", *[x for key, value in values.items() for x in (f"--{key.replace('_', '-')}", value)], "--train-biases"]
    config = config_from_args(build_parser().parse_args(argv))
    assert config == VariantConfig(p=31, seed=5, data_seed=7, train_frac=0.4, lr=0.002, weight_decay=0.5,
                                   betas=(0.8, 0.95), num_epochs=500, eval_every=2,
                                   lr_schedule=parse_schedule("cosine:min_factor=0.1"), d_model=64, n_heads=2,
                                   d_head=16, d_mlp=128, train_biases=True)
    assert config_from_args(build_parser().parse_args(["train"])) == VariantConfig()  # defaults are the config's


def test_the_sweep_takes_every_sweepable_parameter_and_suffixes_names():
    sweep = build_parser().parse_args(["sweep", *[x for key in SWEEPABLE for x in (SWEEPABLE[key].option, "1")]])
    assert all(getattr(sweep, key) == "1" for key in SWEEPABLE)
    configs = expand({"p": parse_values("p", "13"), "seed": [1], "lr": parse_values("lr", "1e-3,3e-3"),
                      "d_mlp": parse_values("d_mlp", "64,128")}, None)
    assert [c.name for c in configs] == ["p13_seed1_lr0.001_dmlp64", "p13_seed1_lr0.001_dmlp128",
                                         "p13_seed1_lr0.003_dmlp64", "p13_seed1_lr0.003_dmlp128"]
    with pytest.raises(TdwError, match=r"^--lr 'x': not a number$"):
        parse_values("lr", "1e-3,x")
    with pytest.raises(TdwError, match=r"^sweep parameter 'betas': unknown"):
        parse_values("betas", "0.9,0.98")


def test_the_warehouse_row_has_a_column_per_declared_column():
    row = variant_row(VariantConfig(p=13, d_head=8))
    schema = variant_schema()
    assert list(row) == list(schema)
    assert {p.field for p in PARAMETERS if p.column is not None} <= set(row) and row["d_head"] == 8
