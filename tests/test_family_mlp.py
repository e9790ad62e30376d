"""The second family, `mlp` (tdw/families/mlp.py), end to end: its hooked model against its fast
loss, its analytic Fourier solution as a known answer through the whole analysis, training (single,
resumed, stacked, densified), the parameters it does not have, and a warehouse of both families."""

from __future__ import annotations

import math

import polars as pl
import pytest
import torch

from tdw.analysis.artifacts import artifact_path
from tdw.analysis.pipeline import AnalysisPipeline
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.families.mlp import analytic_solution
from tdw.jobs.grid import expand
from tdw.parameters import build_config
from tdw.run_dir import RunDir
from tdw.training.densify import densify
from tdw.training.stacked import train_stacked
from tdw.training.trainer import train
from tdw.warehouse.query import query
from tests.conftest import tdw_here, train_cancelled_at

P = 31
PLANTED = [3, 7, 11]
MLP = get_family("mlp")


def mlp_config(**changes):
    checkpoints = changes.pop("checkpoint_epochs", (0, 20, 40))
    return build_config({"family": "mlp", "p": 13, "seed": 3, "d_mlp": 32, "num_epochs": 60, **changes},
                        checkpoint_epochs=checkpoints)


def test_the_hooked_model_and_the_fast_loss_agree():
    config = mlp_config()
    model, data = MLP.build_model(config), MLP.task_data(config)
    logits, cache = model.run_with_cache(data.inputs)
    assert logits.shape == (13 * 13, 13) and cache["hook_hidden"].shape == (13 * 13, 32)
    torch.testing.assert_close(cache["hook_hidden"], cache["hook_pre"] ** 2)
    params = dict(model.named_parameters())
    loss, accuracy, test_loss, test_accuracy = MLP.loss_terms(params, data.labels, data.train_idx, data.test_idx, True)
    reference = torch.nn.functional.cross_entropy(logits[data.train_idx].double(), data.labels[data.train_idx])
    torch.testing.assert_close(loss, reference)
    reference_test = torch.nn.functional.cross_entropy(logits[data.test_idx].double(), data.labels[data.test_idx])
    torch.testing.assert_close(test_loss, reference_test)
    assert 0 <= float(accuracy) <= 1 and 0 <= float(test_accuracy) <= 1


def test_the_analytic_fourier_solution_adds_mod_p_exactly():
    weights = analytic_solution(P, PLANTED)
    config = build_config({"family": "mlp", "p": P, "d_mlp": weights["W_U"].shape[0]})
    model = MLP.build_model(config)
    model.load_state_dict(weights)
    data = MLP.task_data(config)
    logits = model(data.inputs).double()
    assert (logits.argmax(-1) == data.labels).all()  # 100% of the p x p grid
    # the logits are exactly (phases^2 / 2) * sum_k cos(w_k (a + b - c)): nothing else survives
    a, b = data.inputs[:, 0, None].double(), data.inputs[:, 1, None].double()
    c = torch.arange(P, dtype=torch.float64)[None]
    expected = sum(9 / 2 * torch.cos(2 * math.pi * k * (a + b - c) / P) for k in PLANTED)
    torch.testing.assert_close(logits, expected, atol=2e-4, rtol=0)


def test_the_analysis_reports_exactly_the_planted_frequencies(tmp_path):
    """A run whose checkpoints are the analytic solution: the Fourier analyzers find the planted
    frequencies and nothing else; the attention analyzer is skipped, and says why."""
    weights = analytic_solution(P, PLANTED)
    config = build_config({"family": "mlp", "p": P, "d_mlp": weights["W_U"].shape[0], "num_epochs": 2},
                          checkpoint_epochs=(0, 1))
    run = RunDir.for_config(tmp_path / "results", config)
    run.path.mkdir(parents=True)
    run.write_config(config)
    for epoch in (0, 1):
        run.save_checkpoint(epoch, weights, None)
    report = AnalysisPipeline(run.path).run(progress=False)
    assert report.not_applicable == {"attention": "family mlp has no attention activations (it has: neurons)",
                                     "logit_lens": "family mlp has no residual activations (it has: neurons)"}
    assert "skipped attention: family mlp has no attention activations" in report.summary()
    artifacts = run.artifacts_dir

    def table(name: str, epoch: int | None = 1) -> pl.DataFrame:
        return pl.read_parquet(artifact_path(artifacts, name, epoch))

    keys = table("final_key_frequencies", None)
    assert keys["frequency"].to_list() == PLANTED
    embedding = table("embedding_fourier").group_by("frequency").agg(pl.col("value").pow(2).sum())
    planted = embedding.filter(pl.col("frequency").is_in(PLANTED))["value"]
    others = embedding.filter(~pl.col("frequency").is_in(PLANTED))["value"]
    assert (planted > 1).all() and (others < 1e-8).all()
    unembedding = table("unembedding_fourier").group_by("frequency").agg(pl.col("value").pow(2).sum())
    assert set(unembedding.filter(pl.col("value") > 1e-6)["frequency"].to_list()) == set(PLANTED)
    # neuron i belongs to frequency PLANTED[i // 9]; its map is 80% that frequency (the cross term)
    best = table("neuron_best_freq").sort("neuron")
    assert best["frequency"].to_list() == [k for k in PLANTED for _ in range(9)]
    assert best["value"].to_numpy() == pytest.approx(0.8, abs=1e-4)
    progress = dict(table("progress").select("measure", "value").iter_rows())
    assert progress["excluded_loss"] > 3 and progress["restricted_loss"] < progress["excluded_loss"]
    assert progress["key_frequency_count"] == 3
    spectra = table("singular_values")
    assert set(spectra["matrix"].unique()) == {"W_in", "W_a", "W_b", "W_U"}
    groups = set(table("trajectory", None)["group"].unique())
    assert groups == {"all", "embedding", "unembedding"}


def test_cli_trains_resumes_and_refuses_what_the_family_lacks(tmp_path):
    results = tmp_path / "results"
    args = ["train", "--family", "mlp", "--p", "13", "--seed", "3", "--d-mlp", "32", "--epochs", "80",
            "--checkpoints", "0:80:20", "--device", "cpu", "--quiet", "--results", str(results)]
    config = build_config({"family": "mlp", "p": 13, "seed": 3, "d_mlp": 32, "num_epochs": 80},
                          checkpoint_epochs=range(0, 80, 20))
    assert (config.d_model, config.n_heads, config.d_head, config.d_mlp) == (None, None, None, 32)
    assert (config.train_frac, config.lr) == (0.35, 2e-3)  # the family's defaults

    train_cancelled_at(config, results, 50)
    tdw_here(*args, check=True)  # resumes from its last checkpoint, 40
    run = RunDir(results / "mlp" / "mlp_p13_seed3")
    assert run.read_config() == config and run.read_metadata()["resumed_from"] == 40
    straight = train(config, tmp_path / "straight", device="cpu", progress=False)
    for name, tensor in straight.load_weights(79).items():
        assert torch.equal(run.load_weights(79)[name], tensor), name

    bad = tdw_here("train", "--family", "mlp", "--n-heads", "4", "--results", str(tmp_path / "bad"))
    assert bad.returncode == 2 and not (tmp_path / "bad").exists()
    assert bad.stderr.strip() == "tdw train: --n-heads 4: family mlp has no n_heads (its dimensions: d_mlp)"
    unknown = tdw_here("train", "--family", "rnn", "--results", str(tmp_path / "bad"))
    assert unknown.stderr.strip() == "tdw train: --family 'rnn': unknown family (known: mlp, modular_addition)"


def test_stacked_members_and_densify_match_single_runs(tmp_path):
    configs = [mlp_config(seed=seed, lr=lr) for seed, lr in ((1, 2e-3), (2, 1e-3))]
    stacked = train_stacked(configs, tmp_path / "stacked", device="cpu", progress=False)
    for config, run in zip(configs, stacked):
        alone = train(config, tmp_path / "single", device="cpu", progress=False)
        for name, tensor in alone.load_weights(59).items():
            torch.testing.assert_close(run.load_weights(59)[name], tensor, rtol=1e-4, atol=1e-6)
    sparse = train(mlp_config(seed=1, checkpoint_epochs=(0,)), tmp_path / "sparse", device="cpu", progress=False)
    assert densify(sparse.path, [20, 40], device="cpu", progress=False) == [20, 40]
    single = RunDir(tmp_path / "single" / "mlp" / "mlp_p13_seed1")
    for epoch in (20, 40):
        for name, tensor in single.load_weights(epoch).items():
            assert torch.equal(sparse.load_weights(epoch)[name], tensor), (epoch, name)


def test_a_sweep_over_both_families_names_and_shapes_each(tmp_path):
    configs = expand({"family": ["modular_addition", "mlp"], "p": [13], "seed": [1], "d_model": [32]})
    assert [(c.name, c.d_model, c.d_mlp) for c in configs] == [("p13_seed1", 32, 512), ("mlp_p13_seed1", None, 128)]
    with pytest.raises(TdwError, match=r"^--d-model 32: family mlp has no d_model"):
        expand({"family": ["mlp"], "d_model": [32]})


def test_a_warehouse_of_both_families_compares_each_within_its_own(study):
    """The session's study (tests/dashboard_harness.py): two transformers and one MLP, really
    trained, analyzed and indexed."""
    variants = query("select variant, family, d_model, d_head, d_mlp, specialized_share, activations from variants "
                     "order by variant", study)
    assert variants.rows() == [("mlp_p13_seed5", "mlp", None, None, 32, pytest.approx(0.68), ["neurons"]),
                               ("p13_seed3", "modular_addition", 32, 16, 64, 0.85, ["attention", "heads", "neurons", "residual"]),
                               ("p13_seed4", "modular_addition", 32, 16, 64, 0.85, ["attention", "heads", "neurons", "residual"])]
    summary = query("select family, count(*) as n from variant_summary group by family order by family", study)
    assert summary.rows() == [("mlp", 1), ("modular_addition", 2)]
    heads = query("select distinct variant from attention_freq order by variant", study)["variant"].to_list()
    assert heads == ["p13_seed3", "p13_seed4"]  # no attention rows for the MLP
    neurons = query("select variant, count(distinct neuron) as n from neuron_best_freq where epoch = 199 "
                    "group by variant order by variant", study)
    assert neurons.rows() == [("mlp_p13_seed5", 32), ("p13_seed3", 64), ("p13_seed4", 64)]
    groups = query("select distinct variant, \"group\" from trajectory where variant like 'mlp%' order by 2", study)
    assert groups["group"].to_list() == ["all", "embedding", "unembedding"]
