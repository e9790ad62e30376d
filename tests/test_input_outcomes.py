"""Per-input outcomes (tdw/analyzers/input_outcomes.py) and when each input graduates
(sql/30_marts/input_graduation.sql, graduation_curve.sql), on hand-set models with known answers."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from tdw.analysis.pipeline import AnalysisPipeline
from tdw.analyzers.input_outcomes import outcomes
from tdw.families import get_family
from tdw.families.mlp import analytic_solution
from tdw.parameters import build_config
from tdw.run_dir import RunDir
from tdw.warehouse import build_index, query

P = 13
MLP = get_family("mlp")


def test_outcomes_equal_a_reference_loop():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.5, 2.5, 2.0], [1.0, 1.0, 4.0]])
    labels = torch.tensor([0, 2, 1])
    got = outcomes(logits, labels)
    for i in range(3):
        correct = logits[i, labels[i]].item()
        wrong = max(v for c, v in enumerate(logits[i].tolist()) if c != labels[i])
        rank = sum(v > correct or (v == correct and c < int(labels[i])) for c, v in enumerate(logits[i].tolist()))
        loss = -torch.log_softmax(logits[i].double(), 0)[labels[i]].item()
        assert got[i].tolist() == pytest.approx([correct, correct - wrong, rank, loss])
    assert got[:, 2].tolist() == [0, 1, 2]  # right; beaten by one; beaten by one and tied by an earlier answer
    assert got[:, 2].eq(0).tolist() == (logits.argmax(-1) == labels).tolist()  # rank 0 is what argmax answers


def run_of(results, seed: int, checkpoints: list[dict[str, torch.Tensor]]) -> RunDir:
    config = build_config({"family": "mlp", "p": P, "seed": seed, "d_mlp": 18, "num_epochs": len(checkpoints)},
                          checkpoint_epochs=range(len(checkpoints)))
    run = RunDir.for_config(results, config)
    run.path.mkdir(parents=True)
    run.write_config(config)
    run.update_metadata(status="complete")
    for epoch, weights in enumerate(checkpoints):
        run.save_checkpoint(epoch, weights, None)
    AnalysisPipeline(run.path).run(analyzers=["input_outcomes"], progress=False)
    return run


def test_graduation_is_the_first_checkpoint_from_which_a_pair_stays_right(tmp_path):
    results, db = tmp_path / "results", tmp_path / "warehouse" / "tdw.duckdb"
    solved = analytic_solution(P, [2, 5])  # 2 frequencies x 9 phases = 18 neurons, every pair right
    init = MLP.build_model(build_config({"family": "mlp", "p": P, "seed": 1, "d_mlp": 18})).state_dict()
    learns = run_of(results, 1, [init, solved, solved])  # wrong pairs graduate at 1, right ones at 0
    run_of(results, 2, [init, solved, init])  # what init gets wrong never graduates
    build_index(results, db)

    config = learns.read_config()
    data = MLP.task_data(config)
    model = MLP.build_model(config)
    right_at_init = (model(data.inputs).argmax(-1) == data.labels).reshape(P, P)
    assert 0 < int(right_at_init.sum()) < P * P  # some of each, or the test would prove little

    graduation = query("select variant, a, b, split, sum_mod_p, first_correct_epoch, graduation_epoch "
                       "from input_graduation order by variant, a, b", db)
    for variant, never in (("mlp_p13_seed1", 1), ("mlp_p13_seed2", None)):
        rows = graduation.filter(pl.col("variant") == variant)
        assert rows.height == P * P
        expected = [0 if right_at_init[a, b] else never for a, b in zip(rows["a"], rows["b"])]
        assert rows["graduation_epoch"].to_list() == expected, variant
        assert rows["first_correct_epoch"].to_list() == [0 if right_at_init[a, b] else 1
                                                         for a, b in zip(rows["a"], rows["b"])]
        assert rows["sum_mod_p"].to_list() == [(a + b) % P for a, b in zip(rows["a"], rows["b"])]
    train = set(data.train_idx.tolist())
    splits = graduation.filter(pl.col("variant") == "mlp_p13_seed1")
    assert splits["split"].to_list() == ["train" if a * P + b in train else "test"
                                         for a, b in zip(splits["a"], splits["b"])]

    curve = query("select epoch, split, pairs, graduated_fraction from graduation_curve "
                  "where variant = 'mlp_p13_seed1' order by epoch, split", db)
    init_share = {split: float(right_at_init.flatten()[idx].double().mean())
                  for split, idx in (("test", data.test_idx), ("train", data.train_idx))}
    assert curve.rows() == [(0, "test", len(data.test_idx), pytest.approx(init_share["test"])),
                            (0, "train", len(data.train_idx), pytest.approx(init_share["train"])),
                            (1, "test", len(data.test_idx), 1.0), (1, "train", len(data.train_idx), 1.0),
                            (2, "test", len(data.test_idx), 1.0), (2, "train", len(data.train_idx), 1.0)]
    # the summary's "half the test inputs graduated by": at 1 where all do then; never where only init's few do
    assert init_share["test"] < 0.5
    half = query("select variant, test_half_graduated_epoch from variant_summary order by variant", db).rows()
    assert half == [("mlp_p13_seed1", 1), ("mlp_p13_seed2", None)]
    from dashboards.store import WarehouseStore
    from dashboards.views import get_view

    store = WarehouseStore(db)  # the Trace section's graduation map says it, beside the turn (none here)
    try:
        caption = get_view("graduation_map").caption
        assert "; half the test inputs by epoch 1)" in caption(store, "mlp_p13_seed1")
        assert "half the test inputs" not in caption(store, "mlp_p13_seed2")
    finally:
        store.close()
