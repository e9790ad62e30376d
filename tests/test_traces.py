"""Per-input traces (logit lens, answer frequencies), probes and interventions, on hand-set models
whose answers are known: the analytic Fourier MLP of tdw/families/mlp.py and hand-read transformers."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest
import torch

from tdw.analysis.interventions import Intervention, frequency_projector, run_intervention
from tdw.analysis.pipeline import AnalysisPipeline
from tdw.analyzers.input_outcomes import outcomes
from tdw.errors import TdwError
from tdw.families import get_family
from tdw.families.mlp import analytic_solution
from tdw.parameters import build_config
from tdw.probes import parse_probe
from tdw.run_dir import RunDir
from tdw.warehouse import build_index, query
from tdw.warehouse.sql_models import read_models, upstream
from tests.conftest import run_tdw, tdw_here, tiny_config

P = 13
MLP = get_family("mlp")
TRANSFORMER = get_family("modular_addition")


def mlp_run(results, frequencies: list[int], seed: int = 1) -> RunDir:
    """An MLP run whose every checkpoint is the analytic solution for `frequencies` (9 neurons each)."""
    weights = analytic_solution(P, frequencies)
    config = build_config({"family": "mlp", "p": P, "seed": seed, "d_mlp": 9 * len(frequencies), "num_epochs": 2},
                          checkpoint_epochs=range(2))
    run = RunDir.for_config(results, config)
    run.path.mkdir(parents=True)
    run.write_config(config)
    run.update_metadata(status="complete")
    for epoch in range(2):
        run.save_checkpoint(epoch, weights, None)
    return run


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """`tdw ARGS` in this process (conftest's `tdw_here`): the exit code, stdout and stderr."""
    result = tdw_here(*args)
    return result.returncode, result.stdout, result.stderr


def transformer_run(results) -> tuple[RunDir, dict[str, torch.Tensor]]:
    """A tiny transformer run with one checkpoint (epoch 0, its init), and those weights."""
    config = tiny_config(num_epochs=2)
    run = RunDir.for_config(results, config)
    run.path.mkdir(parents=True)
    run.write_config(config)
    run.update_metadata(status="complete")
    weights = {k: v.clone() for k, v in TRANSFORMER.build_model(config).state_dict().items()}
    run.save_checkpoint(0, weights, None)
    return run, weights


def files_of(folder) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- probes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "expected"), [
    ("a < b", lambda a, b: a < b),
    ("(a + b) % p < 3", lambda a, b: (a + b) % P < 3),
    ("a == b and not a % 2 == 0", lambda a, b: a == b and a % 2 == 1),
    ("4+9, 12+0,0+0", lambda a, b: (a, b) in {(4, 9), (12, 0), (0, 0)}),
    ("grid", lambda a, b: True),
    ("a * 2 >= p or b - a > 10", lambda a, b: a * 2 >= P or b - a > 10),
    ("a < 2 | 4+9,12+0 | a == b", lambda a, b: a < 2 or (a, b) in {(4, 9), (12, 0)} or a == b),
])
def test_a_probe_selects_exactly_the_pairs_it_names(spec, expected):
    mask = parse_probe(spec).select(P, np.zeros(P * P, dtype=bool))
    assert mask.tolist() == [bool(expected(a, b)) for a in range(P) for b in range(P)]


def test_split_and_sample_probes_follow_the_run():
    train = np.zeros(P * P, dtype=bool)
    train[::3] = True
    assert parse_probe("train").select(P, train).tolist() == train.tolist()
    assert parse_probe("test").select(P, train).tolist() == (~train).tolist()
    sample = parse_probe("sample:40").select(P, train)
    assert sample.sum() == 40 and (sample & train).sum() == 20  # half train, half test
    assert sample.tolist() == parse_probe("sample:40").select(P, train).tolist()  # the same pairs every time


@pytest.mark.parametrize(("spec", "says"), [
    ("__import__('os').system('true')", "call is not allowed"),
    ("a < c", "unknown name 'c'"),
    ("a < 1.5", "not a whole number"),
    ("a +", "not a probe"),
    ("sample:0", "positive whole number"),
    ("", "empty spec"),
    ("a % 0 < 1", "division by zero"),
    ("a + b", "must be a comparison"),
    ("a < b |", "nothing on one side of |"),
    ("a < b | a < c", "unknown name 'c'"),
    ("auto | 4+9", "auto is what a run traces by default"),
])
def test_a_bad_probe_spec_is_one_line(spec, says):
    with pytest.raises(TdwError, match=says):
        parse_probe(spec).select(P, np.zeros(P * P, dtype=bool))


def test_probe_cli_stores_resolves_and_refuses_bad_specs_without_writing(tmp_path, capsys):
    db = tmp_path / "warehouse" / "tdw.duckdb"
    assert run_tdw("probe", "add", "low", "(a + b) % p < 2", "--db", str(db)).returncode == 0  # once as a user runs it
    catalog = db.with_name("catalog.sqlite")
    before = catalog.read_bytes()
    for args in (("add", "bad", "open('/etc/passwd')"), ("add", "low", "a < b"), ("add", "grid", "a < b"),
                 ("remove", "nothing"), ("show", "unknown_name")):
        code, _, err = cli(capsys, "probe", *args, "--db", str(db))
        assert code == 2 and len(err.strip().splitlines()) == 1, (args, err)
    assert catalog.read_bytes() == before
    code, shown, _ = cli(capsys, "probe", "show", "low", "--p", "3", "--db", str(db))
    assert shown.strip() == "6 pairs: 0+0,0+1,1+0,1+2,2+1,2+2"  # (a + b) mod 3 is 0 or 1
    assert "low              (a + b) % p < 2" in cli(capsys, "probe", "list", "--db", str(db))[1]


# --- traces ------------------------------------------------------------------------------------------
def test_answer_frequencies_of_the_fourier_mlp_are_its_analytic_amplitudes(tmp_path):
    """Logits (9/2) sum_k cos(w_k (a + b - c)): each planted frequency contributes exactly 9/2 to every
    pair's correct logit, every other frequency and the constant nothing; the parts add to the logit."""
    results, db = tmp_path / "results", tmp_path / "warehouse" / "tdw.duckdb"
    run = mlp_run(results, [2, 5])
    report = AnalysisPipeline(run.path).run(analyzers=["input_outcomes", "answer_frequencies", "logit_lens",
                                                        "embedding_fourier"], progress=False)
    assert report.not_applicable["logit_lens"] == "family mlp has no residual activations (it has: neurons)"
    build_index(results, db)
    parts = query("select component, frequency, min(value) as low, max(value) as high, count(*) as n "
                  "from answer_frequencies where epoch = 1 group by all order by all", db)
    assert parts["n"].to_list() == [P * P] * 4  # p = 13 <= 64: the auto probe is the whole grid
    rows = {(c, f): (lo, hi) for c, f, lo, hi in zip(parts["component"], parts["frequency"], parts["low"], parts["high"])}
    assert set(rows) == {("key", 2), ("key", 5), ("other", 0), ("constant", 0)}
    for k in (2, 5):
        assert rows[("key", k)] == pytest.approx((4.5, 4.5), abs=1e-4)
    for rest in (("other", 0), ("constant", 0)):
        assert rows[rest] == pytest.approx((0.0, 0.0), abs=1e-4)
    total = query("select max(abs(f.total - o.value)) as gap from (select a, b, sum(value) as total from "
                  "answer_frequencies where epoch = 1 group by a, b) f join input_outcomes o using (a, b) "
                  "where o.epoch = 1 and o.measure = 'correct_logit'", db)
    assert total["gap"][0] < 1e-4


def test_the_logit_lens_reads_each_layer_and_its_last_layer_is_the_model(tmp_path):
    results, db = tmp_path / "results", tmp_path / "warehouse" / "tdw.duckdb"
    run, weights = transformer_run(results)
    config = run.read_config()
    assert tdw_here("analyze", str(run.path), "--trace", "a < 3 and b < 4", "--analyzers",
                   "input_outcomes,logit_lens,answer_frequencies", "--db", str(db), "--quiet").returncode == 0
    build_index(results, db)
    lens = query("select a, b, layer, measure, value from logit_lens order by a, b, layer, measure", db)
    assert sorted(set(zip(lens["a"], lens["b"]))) == [(a, b) for a in range(3) for b in range(4)]
    assert query("select trace_probe from traced_probes", db)["trace_probe"][0] == "a < 3 and b < 4"
    # after the embedding, the "=" position holds W_E[=] + W_pos[2] whatever a and b are
    residual = weights["embed.W_E"][config.p] + weights["pos_embed.W_pos"][2]
    embed_logits = residual @ weights["unembed.W_U"] + weights["unembed.b_U"]
    for (a, b), rows in lens.filter(pl.col("layer") == "embed").group_by(["a", "b"]):
        expected = outcomes(embed_logits[None], torch.tensor([(a + b) % config.p]))[0]
        got = dict(zip(rows["measure"], rows["value"]))
        assert [got[m] for m in ("correct_logit", "margin", "rank", "loss")] == pytest.approx(expected.tolist(), rel=1e-4, abs=1e-4)
    final = query("select max(abs(l.value - o.value)) as gap, count(*) as n from logit_lens l join input_outcomes o "
                  "using (variant, epoch, a, b, measure) where l.layer = 'mlp'", db)
    assert final["n"][0] == 12 * 4 and final["gap"][0] < 1e-4
    # a new trace probe changes the traces, and only them: an input still traced keeps its rows as
    # they were, and only an input new to the artifact is computed (on a forward pass of its own)
    before = [query(f"select * from {t} where a = 0 and b = 0 order by all", db) for t in ("logit_lens", "answer_frequencies")]
    again = tdw_here("analyze", str(run.path), "--trace", "0+0", "--analyzers", "input_outcomes,logit_lens,answer_frequencies",
                     "--quiet")
    assert again.stdout.splitlines()[:3] == [
        "extended 1 answer_frequencies artifact to the run's traced probe (1 input kept, 0 computed)",
        "extended 1 logit_lens artifact to the run's traced probe (1 input kept, 0 computed)",
        "wrote 2 artifacts (0.0 MB) from 0 checkpoint loads and 0 forward passes; 1 already up to date"]
    build_index(results, db)
    for table, rows in zip(("logit_lens", "answer_frequencies"), before, strict=True):  # as they were, bit for bit
        assert query(f"select * from {table} order by all", db).equals(rows), table
    # an input added to the traced probe: the traces cover the union, not the new input alone, and
    # only they are computed (the traced analyzers, unless --analyzers names others)
    added = tdw_here("analyze", str(run.path), "--trace-add", "5+6", "--quiet")
    assert added.stdout.splitlines() == [
        "extended 1 answer_frequencies artifact to the run's traced probe (1 input kept, 1 computed)",
        "extended 1 logit_lens artifact to the run's traced probe (1 input kept, 1 computed)",
        "wrote 2 artifacts (0.0 MB) from 1 checkpoint loads and 1 forward passes; 0 already up to date"]
    assert run.trace_spec() == "0+0 | 5+6"
    report = build_index(results, db)  # the traces and the traced probe re-copied, and what reads them recomputed
    assert report.patched and report.parts == {run.variant: ["answer_frequencies", "logit_lens", "trace"]}
    models = read_models()
    assert set(report.refreshed) == {m.name for m in models if m.materialized == "table" and {u.name for u in upstream(
        m.name, models)} & {"answer_frequencies", "logit_lens", "traced_probes"}} == {"graduation_by_frequency"}
    extended = query("select * from logit_lens order by a, b, layer, measure", db)
    assert extended.select("a", "b").unique(maintain_order=True).rows() == [(0, 0), (5, 6)]
    assert query("select trace_probe from traced_probes", db)["trace_probe"][0] == "0+0 | 5+6"
    forced = tdw_here("analyze", str(run.path), "--analyzers", "logit_lens", "--force", "--quiet")
    assert forced.stdout.splitlines()[0].startswith("wrote 1 artifacts")
    build_index(results, db)
    recomputed = query("select * from logit_lens order by a, b, layer, measure", db)
    assert recomputed.drop("value").equals(extended.drop("value"))
    assert recomputed["value"].to_numpy() == pytest.approx(extended["value"].to_numpy(), rel=1e-5, abs=1e-5)
    kept = tdw_here("analyze", str(run.path), "--trace-add", "a == 5 and b == 6", "--analyzers", "logit_lens", "--quiet")
    assert kept.stdout.splitlines()[0] == f"{run.variant}: a == 5 and b == 6 is traced already (probe 0+0 | 5+6)"
    assert kept.stdout.splitlines()[1] == "nothing to do: all 1 artifacts are up to date"
    for wrong, says in ((["--trace-add", "5+13"], "5+13 is not an input of p=13"),
                        (["--trace-add", "6+7", "--trace", "grid"], "--trace and --trace-add: give one"),
                        (["--trace", "a > 100"], "--trace a > 100: selects no input of p13_seed")):
        refused = tdw_here("analyze", str(run.path), *wrong, "--analyzers", "logit_lens", "--quiet")
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1 and says in refused.stderr
    assert run.trace_spec() == "0+0 | 5+6"


# --- interventions -------------------------------------------------------------------------------------
def test_ablating_an_unused_frequency_changes_nothing_and_the_only_one_leaves_chance(tmp_path):
    results, db = tmp_path / "results", tmp_path / "warehouse" / "tdw.duckdb"
    two = mlp_run(results, [2, 5], seed=1)
    one = mlp_run(results, [3], seed=2)
    grid = parse_probe("grid")
    for where in ("embed", "neurons", "logits"):
        run_intervention(two.path, Intervention(frequency=4, where=where), [1], grid)
        run_intervention(one.path, Intervention(frequency=3, where=where), [1], grid)
    run_intervention(one.path, Intervention(frequency=3, where="logits", gain=0.5), [1], grid)
    build_index(results, db)
    summary = query("select variant, intervention, sum(inputs) as inputs, sum(baseline_accuracy * inputs) / sum(inputs) "
                    "as before, sum(accuracy * inputs) / sum(inputs) as after, sum(broken) as broken "
                    "from intervention_summary group by all order by all", db)
    rows = {(v, i): (n, before, after, broken) for v, i, n, before, after, broken in summary.iter_rows()}
    for where in ("embed", "neurons", "logits"):
        assert rows[("mlp_p13_seed1", f"frequency=4 where={where} gain=0")] == (P * P, 1.0, 1.0, 0)
        inputs, before, after, broken = rows[("mlp_p13_seed2", f"frequency=3 where={where} gain=0")]
        assert (inputs, before, broken) == (P * P, 1.0, P * P - round(after * P * P)) and after <= 2 / P, where  # chance: 1/p
    assert rows[("mlp_p13_seed2", "frequency=3 where=logits gain=0.5")][2] == 1.0  # halved, still the argmax
    # the neurons' ablation scaled exactly the 9 planted neurons: all logits 0, so answer 0 everywhere
    effects_ = query("select a, b, correct from intervention_effects where intervention = 'frequency=3 where=neurons gain=0'", db)
    assert effects_.filter(pl.col("correct"))["a"].len() == P
    assert all((a + b) % P == 0 for a, b, _ in effects_.filter(pl.col("correct")).iter_rows())


def test_the_frequency_projector_keeps_its_frequency_and_removes_it():
    t = torch.arange(P, dtype=torch.float64)
    projector = frequency_projector(P, 4)
    for k, kept in ((4, 1.0), (3, 0.0)):
        for wave in (torch.cos(2 * torch.pi * k * t / P), torch.sin(2 * torch.pi * k * t / P)):
            assert torch.allclose(projector @ wave, kept * wave, atol=1e-12)
    cos, sin = torch.cos(2 * torch.pi * 4 * t / P), torch.sin(2 * torch.pi * 4 * t / P)
    assert torch.allclose(frequency_projector(P, 4, component="cos") @ (cos + sin), cos, atol=1e-12)
    assert torch.allclose(frequency_projector(P, 4, component="sin") @ (cos + sin), sin, atol=1e-12)
    assert torch.allclose(projector @ projector, projector, atol=1e-12)  # a projector


def test_bad_interventions_are_one_line_and_write_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    run = mlp_run(results, [2])
    AnalysisPipeline(run.path).run(analyzers=["input_outcomes"], progress=False)
    before = files_of(run.path)
    for args in (("--ablate-frequency", "7"), ("--ablate-frequency", "2", "--ablate-head", "0"), ("--ablate-head", "0"),
                 ("--ablate-neurons", "3,99"), ("--ablate-neurons", "x"), ("--ablate-frequency", "2", "--gain", "nan"),
                 ("--ablate-frequency", "2", "--probe", "a < c"), ("--ablate-frequency", "2", "--probe", "20+1"),
                 ("--ablate-frequency", "2", "--epoch", "5"), ("--ablate-frequency", "2", "--where", "neurons", "--component", "sin"),
                 ("--ablate-neurons", "1", "--component", "cos")):
        epoch = () if "--epoch" in args else ("--epoch", "1")
        code, _, err = cli(capsys, "intervene", str(run.path), *epoch, *args, "--db", str(tmp_path / "w" / "tdw.duckdb"))
        assert code == 2 and len(err.strip().splitlines()) == 1, (args, err)
    assert files_of(run.path) == before


def test_intervene_from_the_cli_on_a_transformer_head_is_queried_in_sql(tmp_path):
    results, db = tmp_path / "results", tmp_path / "warehouse" / "tdw.duckdb"
    run, _ = transformer_run(results)
    assert run_tdw("probe", "add", "firsts", "a < 2", "--db", str(db)).returncode == 0
    out = tdw_here("intervene", str(run.path), "--epoch", "last", "--ablate-head", "1", "--gain", "1", "--probe", "firsts",
                  "--db", str(db), check=True).stdout
    assert "head=1 gain=1" in out
    build_index(results, db)
    same = query("select count(*) as n, count(*) filter (where abs(loss - baseline_loss) < 1e-6) as unchanged "
                 "from intervention_effects where intervention = 'head=1 gain=1'", db)
    assert same.row(0) == (2 * P, 2 * P)  # gain 1 is the identity, on the probe's 2 x 13 pairs
    pairs = query("select count(*) as n from probe_pairs p join intervention_effects e using (variant, a, b) "
                  "where p.probe = 'firsts'", db)
    assert pairs["n"][0] == 2 * P


def test_the_python_api_names_probes_and_intervenes_as_the_cli_does(tmp_path):
    import tdw

    db = str(tmp_path / "warehouse" / "tdw.duckdb")
    run = mlp_run(tmp_path / "results", [2, 5])
    tdw.add_probe("diagonal", "a == b", db=db)
    assert tdw.list_probes(db) == {"diagonal": "a == b"}
    with pytest.raises(TdwError, match="exists"):
        tdw.add_probe("diagonal", "a < b", db=db)
    result = tdw.intervene(str(run.path), [1], probe="diagonal", db=db, frequency=5, where="logits")
    assert result.key == "frequency=5 where=logits gain=0"
    assert result.summary == [f"epoch 1: accuracy 100.0% -> 100.0% on {P} inputs"]  # frequency 2 still answers
    cli = tdw_here("intervene", str(run.path), "--epoch", "1", "--ablate-frequency", "5", "--where", "logits",
                  "--probe", "diagonal", "--db", db, check=True)
    assert f"epoch 1: accuracy 100.0% -> 100.0% on {P} inputs" in cli.stdout


def test_the_trace_section_opens_on_an_input_the_run_traces(tmp_path):
    """The dashboard's Trace section opens on 0+0 where the run traces it, else on the run's first
    traced input in grid order (the published run traces 1,024 sampled inputs: on 0+0 its logit
    lens and frequency split said "not traced")."""
    from dashboards.app import opening_pair
    from dashboards.store import WarehouseStore

    results, db = tmp_path / "results", tmp_path / "warehouse" / "tdw.duckdb"
    run, _ = transformer_run(results)
    assert tdw_here("analyze", str(run.path), "--trace", "a > b and b > 0", "--analyzers", "answer_frequencies",
                    "--db", str(db), "--quiet").returncode == 0
    build_index(results, db)
    store = WarehouseStore(db)
    try:
        assert opening_pair(store, run.variant, "0+0") == "2+1"  # a > b > 0: the first in grid order
        assert opening_pair(store, run.variant, "5+3") == "5+3"  # traced: kept
    finally:
        store.close()
