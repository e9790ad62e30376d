"""`tdw extend`: a run trained on past its last epoch is the run trained that long from the start."""

from __future__ import annotations

import pytest
import torch
from conftest import tdw_here, tiny_config, torch_threads

from tdw.errors import TdwError
from tdw.run_dir import RunDir
from tdw.schedules import parse_schedule
from tdw.training.extend import extend
from tdw.training.trainer import train


def files(run: RunDir) -> dict[str, bytes]:
    return {str(path.relative_to(run.path)): path.read_bytes() for path in sorted(run.path.rglob("*")) if path.is_file()}


def test_an_extended_run_equals_the_run_trained_that_long_and_a_killed_extension_resumes(tmp_path):
    """60 epochs, then extended to 120 (cancelled at epoch 90, as a kill or a job's cancel stops
    it, and run again): every checkpoint's weights and optimizer state, and every epoch's losses,
    equal those of one 120-epoch run with the same checkpoints, bit for bit."""
    reference = train(tiny_config(num_epochs=120, checkpoint_epochs=(0, 20, 40, 59, 80, 100)), tmp_path / "reference",
                      device="cpu", progress=False)
    short = train(tiny_config(num_epochs=60, checkpoint_epochs=(0, 20, 40)), tmp_path / "extended", device="cpu",
                  progress=False)

    def cancel_at_90(epoch: int, _losses: dict) -> None:
        if epoch == 90:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extend(short.path, 120, (80, 100), device="cpu", progress=False, on_progress=cancel_at_90)
    assert short.read_metadata()["status"] != "complete" and short.checkpoint_epochs()[-1] == 80
    run = extend(short.path, 120, (80, 100), device="cpu", progress=False)
    assert run.read_metadata()["resumed_from"] == 80 and run.read_metadata()["extended_from"] == [60]
    assert run.read_config() == reference.read_config()
    assert run.checkpoint_epochs() == reference.checkpoint_epochs() == [0, 20, 40, 59, 80, 100, 119]
    for epoch in run.checkpoint_epochs():
        for load in (RunDir.load_weights, RunDir.load_optimizer):
            mine, theirs = load(run, epoch), load(reference, epoch)
            assert mine.keys() == theirs.keys()
            assert all(torch.equal(mine[name], theirs[name]) for name in mine), (epoch, load.__name__)
    assert run.read_losses().equals(reference.read_losses())


def test_an_extension_without_checkpoints_takes_the_longer_runs_default_schedule(tmp_path):
    run = train(tiny_config(num_epochs=50, checkpoint_epochs=(0, 25)), tmp_path, device="cpu", progress=False)
    assert tdw_here("extend", str(run.path), "--epochs", "200", "--device", "cpu", "--quiet", check=True).returncode == 0
    assert run.checkpoint_epochs() == [0, 25, 49, *range(50, 200, 2), 199]
    assert run.read_metadata()["status"] == "complete"
    again = tdw_here("extend", str(run.path), "--epochs", "200", check=True)
    assert "already trained to 200 epochs; nothing to do" in again.stdout


def test_what_extend_refuses_is_one_line_and_changes_nothing(tmp_path):
    plain = train(tiny_config(num_epochs=40, checkpoint_epochs=(0, 20)), tmp_path / "plain", device="cpu", progress=False)
    cosine = train(tiny_config(num_epochs=40, lr_schedule=parse_schedule("cosine:min_factor=0.1")), tmp_path / "cosine",
                   device="cpu", progress=False)
    imported = train(tiny_config(num_epochs=40, checkpoint_epochs=(0,)), tmp_path / "imported", device="cpu", progress=False)
    imported.optimizer_path(39).unlink()  # as an imported run: weights without optimizer state
    cases = [
        (plain, ["--epochs", "30"], "--epochs 30: the run already has 40 epochs; extend trains it longer"),
        (plain, ["--epochs", "80", "--checkpoints", "10"], "--checkpoints 10: inside the trained epochs (0..39)"),
        (plain, ["--epochs", "80", "--checkpoints", "90"], "--checkpoints 90: is outside [0, 80)"),
        (cosine, ["--epochs", "80"], "the run's cosine schedule depends on its length, so epoch 1's learning rate"),
        (imported, ["--epochs", "80"], "no optimizer state at its last checkpoint"),
        (plain, ["--epochs", "x"], "argument --epochs: invalid int value"),
    ]
    for run, args, message in cases:
        before = files(run)
        result = tdw_here("extend", str(run.path), *args, "--device", "cpu")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], (args, result.stderr)
        assert files(run) == before, args
    with pytest.raises(TdwError, match=r"train it on with `tdw extend .*plain.* --epochs 80`"):
        train(tiny_config(num_epochs=80), tmp_path / "plain", device="cpu", progress=False)


def test_a_stacked_run_is_extended_by_the_stacked_trainer(tmp_path):
    """A run the stacked trainer wrote is trained on by it (as a resume is), alone in its stack: on
    one thread a member's arithmetic does not depend on its stack (tests/test_stacked.py)."""
    from tdw.training.stacked import train_stacked

    configs = [tiny_config(num_epochs=60, seed=s, checkpoint_epochs=(0, 30)) for s in (3, 4)]
    with torch_threads(1):
        short = train_stacked(configs, tmp_path / "extended", device="cpu", progress=False)
        reference = train_stacked([c.replace(num_epochs=120, checkpoint_epochs=(0, 30, 59, 90)) for c in configs],
                                  tmp_path / "reference", device="cpu", progress=False)
        run = extend(short[0].path, 120, (90,), device="cpu", progress=False)
    assert run.read_metadata()["trainer"] == "stacked"
    assert run.checkpoint_epochs() == reference[0].checkpoint_epochs() == [0, 30, 59, 90, 119]
    final, expected = run.load_weights(119), reference[0].load_weights(119)
    assert all(torch.equal(final[name], expected[name]) for name in final)
