"""Training: the published split, resume after SIGKILL, densify replay, legacy import, bad input."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, run_tdw, tdw_here, tiny_config, torch_threads, train_cancelled_at

from tdw.config import VariantConfig
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.families.base import LATEST_ARITHMETIC
from tdw.run_dir import RunDir
from tdw.training.densify import densify
from tdw.training.legacy_import import import_legacy
from tdw.training.optimizer import make_optimizer, trainable_parameters
from tdw.training.trainer import train


def test_read_out_loss_keeps_float64_accuracy_from_early_to_late_training():
    """The test split's one-pass loss and accuracy against float64 cross entropy and argmax, on
    logits from uniform (loss ln p) to confidently right (loss ~1e-9, where a float32 log-softmax
    rounds to 0) and confidently wrong, with tied maxima."""
    from tdw.families.base import accuracy, cross_entropy_float64, read_out_loss_and_accuracy

    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 113, (4000,), generator=generator)
    rows = torch.arange(4000)
    for margin, loss_range in ((0.0, (4.5, 5.5)), (25.0, (1e-12, 1e-7)), (-25.0, (20, 40))):
        logits = torch.randn(4000, 113, generator=generator)
        logits[rows, labels] += margin
        if margin == 0:
            logits[:50] = 1.0  # ties: every logit the maximum; argmax takes the first
        loss, acc = read_out_loss_and_accuracy(logits, labels)
        expected = cross_entropy_float64(logits, labels)
        assert loss.dtype == torch.float64 and loss_range[0] < expected < loss_range[1]
        assert abs(loss / expected - 1) < 1e-6
        assert acc == accuracy(logits, labels) == (logits.argmax(-1) == labels).double().mean()  # argmax: the first maximum
    assert F.cross_entropy(torch.full((1, 3), 0.0).index_put_((torch.tensor([0]), torch.tensor([0])), torch.tensor(30.0)),
                           torch.tensor([0])) == 0  # why float64: float32 rounds a loss of 1e-13 to 0


def test_losses_without_argmax_equal_cross_entropy_and_argmax_bit_for_bit_ties_included():
    """The trained loss and both accuracies skip torch's argmax (a slow reduction with indices on
    a CPU). Under arithmetics 1 and 2 the train loss and its gradient must stay `F.cross_entropy`'s
    in float64 bit for bit (those runs' weights depend on them); under 3, the one-pass float32 form,
    equal to it to 1e-9 relative (gradients 1e-6). Both accuracies are argmax's, whose first
    maximum decides a tie: rows here tie the label with an earlier class (a miss), a later one (a
    hit), or all."""
    from tdw.families.base import (
        accuracy,
        cross_entropy_float64,
        read_out_loss_and_accuracy,
        train_loss_and_accuracy,
    )

    generator = torch.Generator().manual_seed(1)
    labels = torch.randint(1, 112, (3000,), generator=generator)
    rows = torch.arange(3000)
    for margin in (0.0, 0.3, 25.0, -25.0):
        logits = torch.randn(3000, 113, generator=generator)
        logits[rows, labels] += margin
        logits[:40, :] = 0.5  # every class tied
        early, late = rows[40:80], rows[80:120]
        logits[early, 0] = logits[early, labels[early]] = 30.0  # tied with an earlier class: argmax misses
        logits[late, 112] = logits[late, labels[late]] = 30.0  # tied with a later class: a hit
        expected_hits = logits.argmax(-1) == labels
        assert not expected_hits[40:80].any() and expected_hits[80:120].all()

        reference = logits.clone().requires_grad_()
        expected = cross_entropy_float64(reference, labels)
        expected.backward()
        for arithmetic in (2, 3):
            trained = logits.clone().requires_grad_()
            loss, acc = train_loss_and_accuracy(trained, labels, arithmetic)
            loss.backward()
            if arithmetic < 3:
                assert torch.equal(loss, expected) and torch.equal(trained.grad, reference.grad)
            else:
                assert loss.dtype == torch.float64 and abs(loss / expected - 1) < 1e-9
                assert not torch.equal(trained.grad, reference.grad)  # another rounding, within:
                assert torch.allclose(trained.grad, reference.grad, rtol=1e-6, atol=1e-6 * float(reference.grad.abs().max()))
            assert acc == accuracy(logits, labels) == expected_hits.double().mean()

        read_loss, read_acc = read_out_loss_and_accuracy(logits, labels)
        assert abs(read_loss / expected - 1) < 1e-6
        assert read_acc == acc
        # the same bits as the form that took the maximum's index (what runs' losses hold), ties too
        top, top_index = logits.max(dim=-1)
        below = torch.exp(logits - top[:, None]).scatter_(-1, top_index[:, None], 0.0).sum(-1)
        label_logit = logits.gather(-1, labels[:, None])[:, 0]
        indexed_loss = (top.double() - label_logit.double() + torch.log1p(below.double())).mean()
        assert torch.equal(read_loss, indexed_loss)

        # under vmap (the stacked trainer) every row is argmaxed; the figures are the same
        stacked = torch.stack((logits, logits))
        for loss_of in (read_out_loss_and_accuracy, train_loss_and_accuracy):
            batched_loss, batched_acc = torch.func.vmap(loss_of, in_dims=(0, None))(stacked, labels)
            assert torch.equal(batched_acc, torch.stack((acc, acc)))
            assert torch.allclose(batched_loss, expected.detach().expand(2), rtol=1e-6, atol=0)
            if loss_of is read_out_loss_and_accuracy:
                assert torch.equal(batched_loss, indexed_loss.expand(2))


def test_one_pass_cross_entropy_keeps_float64s_digits_where_losses_are_1e_7():
    """Arithmetic 3's float32 cross entropy, against hand-computed answers: a row whose label
    leads every other of 113 classes by 20 has loss log(1 + 112 e^-20) = 2.3e-7, which float32's
    log-softmax rounds away; the label's gradient is -(112 e^-20) / (1 + 112 e^-20) per row, not
    the 0 that 1 - softmax gives in float32. A row whose label trails one class by 20 has loss
    log(e^20 + 112)."""
    from tdw.model.one_pass_cross_entropy import one_pass_cross_entropy

    labels = torch.tensor([3, 50, 112, 7])
    logits = torch.zeros(4, 113)
    logits[:3, :].scatter_(1, labels[:3, None], 20.0)  # sure rows
    logits[3, 8] = 20.0  # the label (7) trails class 8
    logits.requires_grad_()
    loss, top, label_logit, others = one_pass_cross_entropy(logits, labels)
    loss.backward()
    small = 112 * math.exp(-20)
    sure_loss, wrong_loss = math.log1p(small), math.log(math.exp(20) + 112)
    assert loss.dtype == torch.float64 and abs(loss.item() / ((3 * sure_loss + wrong_loss) / 4) - 1) < 1e-7
    sure_only = one_pass_cross_entropy(logits.detach()[:3], labels[:3])[0].item()
    assert abs(sure_only / sure_loss - 1) < 1e-6  # float32's relative precision of the 2.3e-7 itself
    assert torch.equal(top, torch.full((4,), 20.0)) and torch.equal(label_logit, torch.tensor([20.0, 20.0, 20.0, 0.0]))
    assert (others[:3] < 1).all() and others[3] >= 1  # the label is the only maximum in the first three rows
    label_grad = logits.grad[torch.arange(3), labels[:3]].double()
    assert torch.allclose(label_grad, torch.full((3,), -small / (1 + small) / 4, dtype=torch.float64), rtol=1e-6, atol=0)
    other_grad = logits.grad[0, 0].double()
    assert abs(other_grad / (math.exp(-20) / (1 + small) / 4) - 1) < 1e-6
    wrong = 1 / (math.exp(20) + 112)  # softmax of each 0 logit in the last row
    assert abs(logits.grad[3, 7].item() / ((wrong - 1) / 4) - 1) < 1e-6
    assert abs(logits.grad[3, 8].item() / ((math.exp(20) * wrong) / 4) - 1) < 1e-6
    # what the float32 log-softmax would have trained on instead
    naive = F.cross_entropy(logits.detach()[:3], labels[:3])
    assert abs(naive.item() / sure_loss - 1) > 0.05


def test_split_is_the_transformerlens_demo_split():
    data = get_family("modular_addition").task_data(VariantConfig())
    torch.manual_seed(598)
    expected = torch.randperm(113 * 113)
    assert (len(data.train_idx), len(data.test_idx)) == (3830, 8939)
    assert torch.equal(data.train_idx, expected[:3830])
    index = 5 * 113 + 7  # a-major: row a * p + b
    assert data.inputs[index].tolist() == [5, 7, 113] and data.labels[index] == 12


def test_losses_parquet_has_every_epoch_and_checkpoint_files(results):
    config = tiny_config(num_epochs=60, checkpoint_epochs=(0, 10, 30))
    run = train(config, results, device="cpu", progress=False)
    assert run.checkpoint_epochs() == [0, 10, 30, 59]
    assert (run.checkpoint_dir / "checkpoint_epoch_00030.safetensors").exists()
    assert (run.checkpoint_dir / "optimizer_epoch_00030.safetensors").exists()
    losses = run.read_losses()
    assert losses.columns == ["variant", "epoch", "split", "loss", "accuracy"]
    assert losses.height == 120 and set(losses["split"]) == {"train", "test"}
    assert run.read_metadata()["status"] == "complete"
    first = losses.filter(epoch=0, split="train")["loss"][0]
    assert abs(first - torch.log(torch.tensor(13.0)).item()) < 0.5  # near-uniform at init


def final_weights(run: RunDir) -> dict[str, torch.Tensor]:
    return run.load_weights(run.checkpoint_epochs()[-1])


def test_sigkilled_run_resumes_to_identical_final_weights(tmp_path):
    args = ["train", "--p", "13", "--seed", "3", "--train-frac", "0.5", "--d-model", "32", "--n-heads", "2",
            "--d-head", "16", "--d-mlp", "64", "--lr", "3e-3", "--epochs", "400", "--checkpoints", "0:400:20",
            "--device", "cpu", "--quiet"]
    reference = tmp_path / "reference"
    run_tdw(*args, "--results", str(reference), check=True)

    killed = tmp_path / "killed"
    run = RunDir(killed / "modular_addition" / "p13_seed3")
    process = subprocess.Popen([sys.executable, "-m", "tdw.cli", *args, "--results", str(killed)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(run.checkpoint_epochs()) < 4:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    interrupted_at = run.checkpoint_epochs()[-1]
    assert 0 < interrupted_at < 399, "the kill should land mid-run"
    assert run.read_metadata()["status"] == "running"
    assert not list(run.path.rglob(".tmp-*.safetensors")) or True  # stray temps are never read

    run_tdw(*args, "--results", str(killed), check=True)
    assert run.read_metadata()["resumed_from"] == interrupted_at
    ref_run = RunDir(reference / "modular_addition" / "p13_seed3")
    assert run.checkpoint_epochs() == ref_run.checkpoint_epochs()
    for name, tensor in final_weights(ref_run).items():
        assert torch.equal(tensor, final_weights(run)[name]), name
    resumed, original = run.read_losses(), ref_run.read_losses()
    assert resumed.height == original.height
    assert resumed.equals(original)


def test_densified_checkpoints_equal_the_originals(results, tmp_path):
    dense = train(tiny_config(num_epochs=100, checkpoint_epochs=tuple(range(0, 100, 10))), tmp_path / "dense", device="cpu", progress=False)
    sparse = train(tiny_config(num_epochs=100, checkpoint_epochs=(0, 50)), results, device="cpu", progress=False)
    added = densify(sparse.path, [30, 40, 60, 70], device="cpu", progress=False)
    assert added == [30, 40, 60, 70]
    assert sparse.checkpoint_epochs() == [0, 30, 40, 50, 60, 70, 99]
    for epoch in added:
        original, replayed = dense.load_weights(epoch), sparse.load_weights(epoch)
        for name in original:
            assert torch.equal(original[name], replayed[name]), (epoch, name)
    assert 30 in sparse.read_config().checkpoint_epochs
    # Training again with the original arguments is a no-op on the densified run.
    again = train(tiny_config(num_epochs=100, checkpoint_epochs=(0, 50)), results, device="cpu", progress=False)
    assert again.checkpoint_epochs() == [0, 30, 40, 50, 60, 70, 99]


def test_densify_replays_on_the_thread_count_that_trained_the_run(tmp_path):
    """On a CPU the thread count is part of the arithmetic: a sweep's worker trains on one thread,
    and a `tdw densify` in a shell runs on all. The replay takes the count the run records, so its
    checkpoint equals the one the run would have written (on two threads it did not: a p=53 run's
    weights part within 30 epochs), and the process's own count comes back after."""
    config = VariantConfig(p=53, seed=999, train_frac=0.5, lr=3e-3, num_epochs=30, checkpoint_epochs=(0, 29))
    with torch_threads(1):
        reference = train(config.replace(checkpoint_epochs=(0, 15, 29)), tmp_path / "reference", device="cpu", progress=False)
        sparse = train(config, tmp_path / "sparse", device="cpu", progress=False)
    assert sparse.read_metadata()["torch_threads"] == 1
    with torch_threads(2):
        assert densify(sparse.path, [15], device="cpu", progress=False) == [15]
        assert torch.get_num_threads() == 2
    original, replayed = reference.load_weights(15), sparse.load_weights(15)
    assert all(torch.equal(original[name], replayed[name]) for name in original)
    with torch_threads(2):  # what the replay would have been on the shell's two threads
        elsewhere = train(config.replace(checkpoint_epochs=(0, 15, 29)), tmp_path / "two", device="cpu", progress=False)
    assert not all(torch.equal(original[name], elsewhere.load_weights(15)[name]) for name in original)


def test_a_run_resumed_in_another_process_continues_on_the_thread_count_that_trained_it(tmp_path):
    """A sweep worker's one-thread run, stopped at epoch 20 (a cancel), then resumed by `tdw train`
    on two threads: it continues on one, so it ends bit for bit where the uninterrupted run does,
    losses included, and the process is back on two threads after."""
    config = VariantConfig(p=53, seed=999, train_frac=0.5, lr=3e-3, num_epochs=30, checkpoint_epochs=(0, 15, 29))
    with torch_threads(1):
        reference = train(config, tmp_path / "reference", device="cpu", progress=False)
        train_cancelled_at(config, tmp_path / "resumed", 20)
    with torch_threads(2):
        resumed = train(config, tmp_path / "resumed", device="cpu", progress=False)
        assert torch.get_num_threads() == 2
    assert resumed.read_metadata()["resumed_from"] == 15 and resumed.read_metadata()["torch_threads"] == 1
    original, continued = reference.load_weights(29), resumed.load_weights(29)
    assert all(torch.equal(original[name], continued[name]) for name in original)
    assert resumed.read_losses().equals(reference.read_losses())


@pytest.mark.parametrize("older", [1, 2])
def test_a_run_is_resumed_and_densified_with_the_arithmetic_that_trained_it(tmp_path, monkeypatch, older):
    """A run trained with an older arithmetic (1: the whole residual grid, every run before it was
    recorded; 2: the float64 cross entropy and AdamW's loop) is continued and densified with it,
    not with the latest: at this small model's shapes they round differently, so the replay gives
    the run's own checkpoints only with its own. New runs record the latest."""
    config = tiny_config(num_epochs=40, checkpoint_epochs=(0, 20, 39))
    with torch_threads(1):
        latest = train(config, tmp_path / "latest", device="cpu", progress=False)
        monkeypatch.setenv("TDW_ARITHMETIC", str(older))
        reference = train(config.replace(checkpoint_epochs=(0, 10, 20, 30, 39)), tmp_path / "reference", device="cpu",
                          progress=False)
        sparse = train(config, tmp_path / "sparse", device="cpu", progress=False)
        train_cancelled_at(config, tmp_path / "resumed", 30)
        monkeypatch.delenv("TDW_ARITHMETIC")
        assert densify(sparse.path, [10, 30], device="cpu", progress=False) == [10, 30]
        resumed = train(config, tmp_path / "resumed", device="cpu", progress=False)
    assert latest.read_metadata()["arithmetic"] == LATEST_ARITHMETIC and reference.read_metadata()["arithmetic"] == older
    assert resumed.read_metadata()["arithmetic"] == older and resumed.read_metadata()["resumed_from"] == 20
    for run, epoch in ((sparse, 10), (sparse, 30), (resumed, 39)):
        original, replayed = reference.load_weights(epoch), run.load_weights(epoch)
        assert all(torch.equal(original[name], replayed[name]) for name in original), (run.path, epoch)
    assert resumed.read_losses().equals(reference.read_losses())
    # the arithmetics really differ here, so the recorded one is what made the replays equal
    assert not all(torch.equal(reference.load_weights(39)[name], value) for name, value in latest.load_weights(39).items())
    # and AdamW's own arithmetic is the recorded one's: its loop before 3, fused from 3
    params = trainable_parameters(get_family(config.family).build_model(config), config)
    assert not make_optimizer(params, config, arithmetic=older).defaults["fused"]
    assert make_optimizer(params, config, arithmetic=LATEST_ARITHMETIC).defaults["fused"]


def test_an_unknown_arithmetic_is_refused_in_one_line(tmp_path, monkeypatch):
    """A bad TDW_ARITHMETIC stops `tdw train` before it writes anything; a run recorded with an
    arithmetic this tdw lacks (a newer one's) is not densified with another."""
    results = tmp_path / "results"
    monkeypatch.setenv("TDW_ARITHMETIC", "7")
    result = tdw_here("train", "--p", "13", "--epochs", "5", "--results", str(results))
    assert result.returncode != 0 and result.stderr.strip().splitlines() == [f"tdw train: TDW_ARITHMETIC='7': expected one of 1..{LATEST_ARITHMETIC}"]
    assert not results.exists()
    monkeypatch.delenv("TDW_ARITHMETIC")
    run = train(tiny_config(num_epochs=20, checkpoint_epochs=(0,)), results, device="cpu", progress=False)
    run.update_metadata(arithmetic=LATEST_ARITHMETIC + 1)
    with pytest.raises(TdwError, match=rf"trained with arithmetic {LATEST_ARITHMETIC + 1}, which this tdw lacks \(it has 1..{LATEST_ARITHMETIC}\)"):
        densify(run.path, [10], device="cpu", progress=False)
    assert run.checkpoint_epochs() == [0, 19]


def test_densify_cli_refuses_epochs_outside_the_run(results):
    run = train(tiny_config(num_epochs=30, checkpoint_epochs=(0,)), results, device="cpu", progress=False)
    result = tdw_here("densify", str(run.path), "--epochs", "10:40:10")
    assert result.returncode == 2
    assert result.stderr.strip() == "tdw densify: --epochs: epoch 30 is outside the run's [0, 30)"
    assert run.checkpoint_epochs() == [0, 29]


def test_existing_run_with_other_config_is_refused_unless_forced(results):
    train(tiny_config(num_epochs=20), results, device="cpu", progress=False)
    with pytest.raises(TdwError, match="different config.*lr"):
        train(tiny_config(num_epochs=20, lr=1e-2), results, device="cpu", progress=False)
    run = train(tiny_config(num_epochs=20, lr=1e-2), results, device="cpu", force=True, progress=False)
    assert run.read_config().lr == 1e-2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--p", "2"], "--p 2: must be an integer >= 3"),
        (["--p", "5000"], "--p 5000: too large"),
        (["--train-frac", "1.5"], "--train-frac 1.5: must be in (0, 1)"),
        (["--epochs", "100", "--checkpoints", "0:200:50"], "--checkpoints 100: is outside [0, 100)"),
        (["--schedule", "sawtooth"], "--schedule 'sawtooth': unknown schedule"),
        (["--checkpoints", "10:5"], "range '10:5' needs start < stop"),
    ],
)
def test_bad_input_gets_one_line_and_writes_nothing(tmp_path, args, message):
    results = tmp_path / "results"
    result = tdw_here("train", *args, "--results", str(results))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not results.exists()


def test_legacy_nanda_file_imports_and_pickled_code_is_refused(tmp_path, results):
    config = tiny_config(num_epochs=10)
    family = get_family("modular_addition")
    states = []
    for seed in (1, 2, 3):
        model = family.build_model(config.replace(seed=seed))
        state = dict(model.state_dict())
        state["blocks.0.attn.mask"] = torch.tril(torch.ones(3, 3))  # HookedTransformer buffers
        state["blocks.0.attn.IGNORE"] = torch.tensor(-1e5)
        states.append(state)
    legacy = tmp_path / "grokking.pth"
    torch.save({"model": states[-1], "checkpoints": states[:2], "checkpoint_epochs": [0, 99],
                "train_losses": [4.0] * 150, "test_losses": [4.5] * 150}, legacy)
    run = import_legacy(legacy, results, name="nanda")
    assert run.checkpoint_epochs() == [0, 99, 149]
    assert torch.equal(run.load_weights(99)["embed.W_E"], states[1]["embed.W_E"])
    assert run.read_config().p == 13 and run.read_losses().height == 300

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.pth"
    torch.save({"model": states[0], "config": Evil()}, evil)
    result = tdw_here("import", str(evil), "--results", str(tmp_path / "other"))
    assert result.returncode == 2 and "refused, unpickling it would run arbitrary code" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "other").exists()
