"""Epoch specs, the default checkpoint schedule and LR schedules."""

import itertools
import math

import pytest

from tdw.config import VariantConfig
from tdw.epoch_spec import default_checkpoint_epochs, parse_epoch_spec
from tdw.errors import TdwError
from tdw.schedules import parse_schedule


def test_ranges_exclude_stop_like_python_range():
    assert parse_epoch_spec("0:300:100,300:400:25,7") == [0, 7, 100, 200, 300, 325, 350, 375]


def test_default_schedule_is_dense_early_and_every_percent_after():
    epochs = default_checkpoint_epochs(25000)
    assert epochs[0] == 0 and epochs[-1] == 24999
    early = [e for e in epochs if e < 250]
    assert len(early) >= 10 and early[:4] == [0, 1, 2, 3]
    gaps = [b - a for a, b in itertools.pairwise(epochs) if a >= 250]
    assert max(gaps) == 250  # a turn anywhere is within 1% of training of a checkpoint


def test_schedules_as_pure_functions_of_epoch():
    piecewise = parse_schedule("piecewise:200-2000=0.1")
    assert [piecewise.factor(e, 5000) for e in (199, 200, 1999, 2000)] == [1.0, 0.1, 0.1, 1.0]
    assert piecewise.label == "lr200-2000x0.1"
    assert parse_schedule("warmup:epochs=10").factor(4, 100) == 0.5
    assert parse_schedule("step:every=100,gamma=0.5").factor(250, 1000) == 0.25
    cosine = parse_schedule("cosine:min_factor=0.1")
    assert cosine.factor(0, 101) == 1.0 and math.isclose(cosine.factor(100, 101), 0.1)


def test_schedule_shows_in_variant_name_only_as_suffix():
    config = VariantConfig(p=97, seed=485, lr_schedule=parse_schedule("piecewise:200-2000=0.1;label=slow"))
    assert config.name == "p97_seed485_slow"
    assert VariantConfig(p=97, seed=485, data_seed=1).name == "p97_seed485_data1"
    assert VariantConfig.from_dict(config.to_dict()) == config


def test_bad_schedule_parameters_are_named():
    with pytest.raises(TdwError, match="unknown parameter"):
        parse_schedule("step:every=10,decay=2")
    with pytest.raises(TdwError, match="piecewise ranges look like"):
        parse_schedule("piecewise:abc")
