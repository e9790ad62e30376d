"""Analyzers give known answers; the pipeline shares work, resumes and honours versions."""

from __future__ import annotations

import json
import math
import shutil

import polars as pl
import pytest
import torch
from conftest import tdw_here, tiny_config, torch_threads
from polars.testing import assert_frame_equal

from tdw.analysis.artifacts import artifact_path, file_digest
from tdw.analysis.context import RunFacts
from tdw.analysis.fourier import fourier_basis, frequency_fractions_2d, gini
from tdw.analysis.key_frequencies import key_frequencies, neuron_key_frequencies
from tdw.analysis.pca import pca
from tdw.analysis.pipeline import AnalysisPipeline
from tdw.analyzers import all_analyzers
from tdw.analyzers.coarseness import coarseness_metrics
from tdw.analyzers.embedding_fourier import fourier_norm_frame
from tdw.analyzers.neuron_activations import dequantize, quantize
from tdw.analyzers.progress import key_frequency_projection
from tdw.analyzers.trajectory import velocity
from tdw.families import get_family
from tdw.probes import parse_probe
from tdw.run_dir import RunDir
from tdw.training.trainer import train
from tdw.warehouse.indexer import build_index
from tdw.warehouse.query import query

P = 13


def test_planted_embedding_frequencies_are_recovered():
    x = torch.arange(P, dtype=torch.float64)
    planted = {3: ("cos", 2.0), 5: ("sin", 1.0)}
    W_E = torch.zeros(P, 8, dtype=torch.float64)
    W_E[:, 0] = 2.0 * torch.cos(2 * math.pi * 3 * x / P)
    W_E[:, 1] = 1.0 * torch.sin(2 * math.pi * 5 * x / P)
    frame = fourier_norm_frame(W_E, P)
    strong = frame.filter(pl.col("value") > 1e-4).sort("frequency")
    assert strong.select("frequency", "component").rows() == [(3, "cos"), (5, "sin")]
    # norm of a*cos over p tokens is a*sqrt(p/2)
    assert strong["value"].to_list() == pytest.approx([2.0 * math.sqrt(P / 2), math.sqrt(P / 2)], rel=1e-5)
    assert key_frequencies(W_E.float()) == sorted(planted)


def test_key_frequencies_are_the_group_above_the_largest_norm_gap():
    """Norms 6, 5.5, 5, then leftovers 1.2, 0.5, 0.3: the gap 5 -> 1.2 (4.2x) separates three keys,
    although the leftovers exceed 3x the median norm^2 (the previous rule's threshold)."""
    p = 29
    x = torch.arange(p, dtype=torch.float64)
    norms = {4: 6.0, 9: 5.5, 11: 5.0, 2: 1.2, 7: 0.5, 13: 0.3}
    W_E = torch.zeros(p, 16, dtype=torch.float64)
    for column, (k, norm) in enumerate(norms.items()):
        W_E[:, column] = norm * torch.cos(2 * math.pi * k * x / p) / math.sqrt(p / 2)
    assert key_frequencies(W_E) == [4, 9, 11]
    # a weaker key (40% of the largest) still counts when the largest gap lies below it ...
    W_E[:, 3] = 2.4 * torch.cos(2 * math.pi * 2 * x / p) / math.sqrt(p / 2)
    assert key_frequencies(W_E) == [2, 4, 9, 11]
    # ... but nothing under a quarter of the largest does, whatever gap lies below it
    W_E[:, 3] = 1.4 * torch.cos(2 * math.pi * 2 * x / p) / math.sqrt(p / 2)
    assert key_frequencies(W_E) == [4, 9, 11]


def test_where_the_embedding_has_no_gap_the_clusters_of_specialized_neurons_are_the_key_frequencies():
    """Planted neurons over a p=29 grid: 60 on cos(w_8 (a + b)), 30 on cos(w_5 a) cos(w_5 b), 10
    on frequency 3 (a sixth of the largest cluster: not key), 20 of noise (specialized on
    nothing). Keys 5 and 8. A cluster of a quarter of the largest counts; none counts when the
    largest holds under 5% of the neurons, or when no neuron is specialized."""
    p = 29
    a = torch.arange(p, dtype=torch.float64)[:, None]
    b = torch.arange(p, dtype=torch.float64)[None, :]
    w = 2 * math.pi / p
    generator = torch.Generator().manual_seed(0)

    def neurons(count: int, k: int, product: bool = False) -> torch.Tensor:
        phases = torch.rand(count, 1, 1, generator=generator, dtype=torch.float64) * 2 * math.pi
        if product:
            return torch.cos(w * k * a + phases) * torch.cos(w * k * b)
        return torch.cos(w * k * (a + b) + phases)

    noise = torch.randn(20, p, p, generator=generator, dtype=torch.float64)
    maps = torch.cat((neurons(60, 8), neurons(30, 5, product=True), neurons(10, 3), noise))
    assert neuron_key_frequencies(maps.float(), specialized_share=0.5) == [5, 8]
    assert neuron_key_frequencies(torch.cat((maps, neurons(5, 3))), specialized_share=0.5) == [3, 5, 8]  # 15 >= 60 / 4
    assert neuron_key_frequencies(torch.cat((neurons(4, 8), noise, noise, noise, noise)), 0.5) == []  # 4 of 84: under 5%
    assert neuron_key_frequencies(noise, 0.5) == []
    # the mlp family's picture, every frequency used: 5 neurons on each of frequencies 1-3, 3 on
    # each of the other 11; a quarter of the largest cluster names all 14, over half: none. Half is
    # the most, as the gap rule's
    spread = torch.cat([neurons(3 + (k <= 3) * 2, k) for k in range(1, 15)])
    assert spread.shape[0] == 48 and neuron_key_frequencies(spread, 0.5) == []
    assert neuron_key_frequencies(torch.cat([neurons(5, k) for k in range(1, 8)]), 0.5) == list(range(1, 8))  # 7 of 14


def test_random_embeddings_have_no_key_frequencies():
    for seed in range(20):
        W_E = torch.randn(113, 128, generator=torch.Generator().manual_seed(seed)) / 128 ** 0.5
        assert key_frequencies(W_E) == [], seed


def test_neuron_built_as_cos_of_a_plus_b_is_explained_by_its_frequency():
    a = torch.arange(P, dtype=torch.float64)[:, None]
    b = torch.arange(P, dtype=torch.float64)[None, :]
    w = 2 * math.pi * 4 / P
    maps = torch.stack((torch.cos(w * (a + b)), torch.relu(torch.cos(w * (a + b)) + 0.3)))
    fractions = frequency_fractions_2d(maps)
    assert fractions.shape == (2, P // 2)
    assert fractions[0, 3] > 0.99 and fractions[0].sum() == pytest.approx(1.0, abs=1e-9)
    assert fractions[1].argmax() == 3  # ReLU adds harmonics, the fundamental still dominates


@pytest.mark.parametrize("p", [113, 12, 13, 4])
def test_frequency_fractions_equal_the_projection_on_the_real_fourier_basis(p):
    """The FFT form equals the definition: each map projected on the orthonormal real basis, the
    squared coefficients summed over frequency k's products (k x k, k x const, const x k) over all
    but const x const; for odd and even p (an even p's Nyquist frequency has no sine), in float64
    to 1e-10 relative and in float32 (neuron_freq's) to 1e-5."""
    generator = torch.Generator().manual_seed(p)
    a, b = torch.arange(p, dtype=torch.float64)[:, None], torch.arange(p, dtype=torch.float64)[None]
    planted = torch.cos(2 * math.pi * (p // 3) * (a + b) / p + 0.4)  # one frequency over the noise
    maps = torch.relu(torch.randn(6, p, p, generator=generator, dtype=torch.float64)) + torch.arange(6)[:, None, None] * planted
    x = torch.arange(p, dtype=torch.float64)
    rows, frequency_of = [torch.ones(p, dtype=torch.float64)], [0]  # the real basis, built here in float64
    for k in range(1, p // 2 + 1):
        rows.append(torch.cos(2 * math.pi * k * x / p))
        frequency_of.append(k)
        if 2 * k != p:
            rows.append(torch.sin(2 * math.pi * k * x / p))
            frequency_of.append(k)
    basis = torch.stack(rows)
    basis = basis / basis.norm(dim=1, keepdim=True)
    frequency_of = torch.tensor(frequency_of)
    power = ((basis @ maps) @ basis.T).square()  # [map, basis row, basis column]
    total = power.sum((1, 2)) - power[:, 0, 0]
    expected = torch.stack([power[:, frequency_of == k][:, :, (frequency_of == k) | (frequency_of == 0)].sum((1, 2))
                            + power[:, frequency_of == 0][:, :, frequency_of == k].sum((1, 2))
                            for k in range(1, p // 2 + 1)], dim=1) / total[:, None]
    torch.testing.assert_close(frequency_fractions_2d(maps), expected, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(frequency_fractions_2d(maps.float()).double(), expected, rtol=1e-5, atol=1e-8)
    assert expected[-1, p // 3 - 1] > 0.9  # the planted frequency dominates where it is strong


def test_fourier_basis_is_orthonormal():
    basis, labels = fourier_basis(P)
    assert torch.allclose(basis @ basis.T, torch.eye(P), atol=1e-6)
    assert labels[0] == (0, "const") and labels[-1] == (6, "sin")


def test_known_singular_values_are_reported_per_matrix():
    from types import SimpleNamespace

    from tdw.analyzers.singular_values import SingularValues
    from tdw.families import get_family

    generator = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(32, 32, generator=generator, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(64, 64, generator=generator, dtype=torch.float64))
    known = torch.linspace(10, 0.5, 32, dtype=torch.float64)
    weights = get_family("modular_addition").build_model(tiny_config()).state_dict()
    weights["blocks.0.mlp.W_in"] = (u @ torch.diag(known) @ v[:, :32].T).float()  # [d_model 32, d_mlp 64]
    frame = SingularValues().analyze(SimpleNamespace(weights=weights, family=get_family("modular_addition")))["singular_values"]
    w_in = frame.filter(matrix="W_in", head=-1).sort("index")["value"].to_numpy()
    assert w_in == pytest.approx(known.numpy(), rel=1e-5)
    assert frame.filter(matrix="W_Q", head=1).height == 16  # per-head [d_model 32, d_head 16]
    assert frame.filter(matrix="W_O", head=-1).height == 32  # stacked [head * d_head, d_model]


def test_velocity_is_normalized_by_the_epoch_gap():
    # constant speed 2 per epoch along one axis, on a very uneven schedule: no spikes
    epochs = [0, 1, 2, 10, 100, 1000]
    points = torch.tensor([[2.0 * e, 0.0] for e in epochs])
    speed = velocity(points, epochs)
    assert math.isnan(speed[0]) and torch.allclose(speed[1:], torch.full((5,), 2.0, dtype=torch.float64))


def test_pca_sign_convention_is_deterministic():
    points = torch.randn(20, 6, generator=torch.Generator().manual_seed(3))
    coords, ratio = pca(points, 3)
    mirrored, _ = pca(-points, 3)  # same axes after the sign rule, so every coordinate flips
    assert torch.allclose(mirrored, -coords, atol=1e-9)
    again, _ = pca(points.clone(), 3)
    assert torch.equal(again, coords)
    assert ratio.sum() <= 1 + 1e-9 and (ratio[:-1] >= ratio[1:]).all()


def test_coarseness_separates_blobs_from_fine_grids():
    x = torch.arange(P * 4, dtype=torch.float64)
    blob = torch.outer(torch.sin(math.pi * x / len(x)), torch.sin(math.pi * x / len(x)))
    grid = torch.outer(torch.cos(math.pi * x), torch.cos(math.pi * x))  # checkerboard: highest frequency
    metrics = coarseness_metrics(torch.stack((blob, grid)))
    assert metrics[0, 0] > 0.9 and metrics[1, 0] < 0.01  # fft_low_freq
    assert metrics[0, 1] > 0.9 and metrics[1, 1] < 0.1  # variance_kept
    assert metrics[1, 2] > metrics[0, 2]  # gradient


@pytest.mark.parametrize("h, w", [(23, 23), (24, 24), (23, 30), (113, 113)])
def test_coarseness_from_the_half_spectrum_equals_the_full_spectrum_form(h, w):
    """The low-frequency share read from rfft2 with conjugate weights equals the full fftshifted
    spectrum's (the analyzer's first form), odd and even sizes, on random and structured maps."""
    torch.manual_seed(0)
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    maps = torch.cat((torch.randn(5, h, w, dtype=torch.float64), torch.cos(2 * math.pi * (2 * y / h + 3 * x / w))[None]))
    power = torch.fft.fftshift(torch.fft.fft2(maps), dim=(-2, -1)).abs().pow(2)
    cy, cx = h // 2, w // 2
    yy, xx = torch.meshgrid(torch.arange(h) - cy, torch.arange(w) - cx, indexing="ij")
    low = (yy.double().pow(2) + xx.double().pow(2)).sqrt() <= 0.125 * min(h, w)
    power[:, cy, cx] = 0.0
    reference = power[:, low].sum(1) / power.sum((1, 2))
    torch.testing.assert_close(coarseness_metrics(maps)[:, 0], reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("h, w", [(23, 23), (24, 30), (113, 113)])
def test_variance_kept_equals_resizing_with_interpolate(h, w):
    """The coarse-map identity gives what downsampling to 14 x 14 and back with F.interpolate
    gives (the analyzer's first form), on random, structured and near-constant maps."""
    import torch.nn.functional as F

    from tdw.analyzers.coarseness import variance_kept

    torch.manual_seed(1)
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    maps = torch.cat((torch.randn(4, h, w, dtype=torch.float64), torch.cos(2 * math.pi * (y / h + 2 * x / w))[None],
                      5.0 + 1e-3 * torch.randn(1, h, w, dtype=torch.float64)))
    variance, mean = torch.var_mean(maps.flatten(1), 1, correction=0)
    coarse = F.interpolate(maps[:, None], size=(14, 14), mode="bilinear", align_corners=False)
    restored = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    reference = restored.flatten(1).var(1, correction=0) / variance
    torch.testing.assert_close(variance_kept(maps, 14, variance, mean), reference, rtol=1e-9, atol=1e-12)


def test_gini_known_values():
    assert gini(torch.ones(10)) == pytest.approx(0.0)
    assert gini(torch.tensor([0.0, 0.0, 0.0, 1.0])) == pytest.approx(0.75)


def test_quantized_activation_maps_round_trip_within_one_level():
    maps = torch.randn(3, P, P)
    codes, lo, hi = quantize(maps)
    back = dequantize(codes[1].numpy().tobytes(), float(lo[1]), float(hi[1]), P)
    assert abs(back - maps[1].numpy()).max() <= float(hi[1] - lo[1]) / 255 / 2 + 1e-6


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A p=23 run that groks cleanly by epoch 899 (key frequencies 2 and 5, standing apart by a
    norm ratio above 5). A full-batch run follows the CPU's rounding, so the seed is one whose run
    takes the same path at one and two threads: seed 3's did not, and on an AMD EPYC its final
    frequencies (8, 5, 4) stood apart by ratios of 1.9, under the key-frequency rule's 2."""
    results = tmp_path_factory.mktemp("analysis") / "results"
    config = tiny_config(p=23, seed=5, train_frac=0.6, d_model=64, n_heads=4, d_head=16, d_mlp=128, lr=1e-2,
                         num_epochs=900, checkpoint_epochs=(0, 100, 300, 500, 700))
    return train(config, results, device="cpu", progress=False)


def test_pipeline_writes_every_table_and_second_call_does_nothing(trained_run):
    """Every table of the default set (all analyzers but the opt-in ones, which only run when named)."""
    pipeline = AnalysisPipeline(trained_run.path)
    report = pipeline.run(progress=False)
    checkpoints = len(trained_run.checkpoint_epochs())
    default = [a for a in all_analyzers().values() if a.default]
    assert {a.name for a in all_analyzers().values()} - {a.name for a in default} == {"llc"}
    per_checkpoint = [a for a in default if a.requires != "run"]
    run_level = [a for a in default if a.requires == "run"]
    assert report.checkpoint_loads == checkpoints and report.forward_passes == checkpoints
    tables = {t for a in default for t in a.tables}
    assert {p.name for p in trained_run.artifacts_dir.iterdir()} == tables | {"manifest.json"}
    assert len(report.written) == checkpoints * sum(len(a.tables) for a in per_checkpoint) + sum(len(a.tables) for a in run_level)
    again = AnalysisPipeline(trained_run.path).run(progress=False)
    assert again.written == [] and again.summary().startswith("nothing to do")
    frame = pl.read_parquet(trained_run.artifacts_dir / "neuron_freq" / "epoch_00300.parquet")
    assert frame.columns == ["variant", "epoch", "neuron", "frequency", "value"]
    assert frame.height == 128 * 11 and frame["value"].dtype == pl.Float32
    assert frame.select("neuron", "frequency").rows() == sorted(frame.select("neuron", "frequency").rows())


def test_worker_processes_write_what_one_process_writes(trained_run, tmp_path):
    """`tdw analyze --workers 2`: the checkpoints analyzed in two spawned processes give the
    one-process pipeline's artifacts, value for value, and every one is in the manifest (a second
    call finds nothing to do); so do the traces extended to inputs added to the traced probe."""
    runs = []
    for name in ("one_process", "two_workers"):
        target = tmp_path / name / trained_run.variant
        shutil.copytree(trained_run.path, target, ignore=shutil.ignore_patterns("artifacts"))
        runs.append(RunDir(target))
        runs[-1].write_trace_spec("sample:40")  # not the whole grid, so that inputs can be added to it
    one = AnalysisPipeline(runs[0].path).run(progress=False)
    two = AnalysisPipeline(runs[1].path).run(progress=False, workers=2)
    assert sorted(two.written, key=str) == sorted(one.written, key=str) and len(one.written) > 50
    assert (two.checkpoint_loads, two.forward_passes) == (one.checkpoint_loads, one.forward_passes) == (6, 6)
    files = sorted(p.relative_to(runs[0].artifacts_dir) for p in runs[0].artifacts_dir.rglob("*.parquet"))
    assert files == sorted(p.relative_to(runs[1].artifacts_dir) for p in runs[1].artifacts_dir.rglob("*.parquet"))
    for file in files:  # one thread per worker against this process's: the same values to float rounding
        assert_frame_equal(pl.read_parquet(runs[1].artifacts_dir / file), pl.read_parquet(runs[0].artifacts_dir / file),
                           check_exact=False, rel_tol=1e-5, abs_tol=1e-7)
    manifests = [json.loads((run.artifacts_dir / "manifest.json").read_text()) for run in runs]
    assert manifests[1].keys() == manifests[0].keys() and len(manifests[1]) == len(files)
    again = AnalysisPipeline(runs[1].path).run(progress=False, workers=2)
    assert again.written == [] and again.summary().startswith("nothing to do")
    for run in runs:
        run.write_trace_spec("sample:40 | a == b")
    extended = [AnalysisPipeline(runs[0].path).run(progress=False), AnalysisPipeline(runs[1].path).run(progress=False, workers=2)]
    config = runs[0].read_config()
    sampled = parse_probe("sample:40").select(config.p, get_family(config.family).task_data(config).train_mask)
    added = int((~sampled[:: config.p + 1]).sum())  # the diagonal's pairs the sample lacks
    checkpoints = len(runs[0].checkpoint_epochs())
    assert added > 0 and extended[0].extended == extended[1].extended == {
        ("answer_frequencies", 40, added): checkpoints, ("logit_lens", 40, added): checkpoints}
    for file in [f for f in files if f.parts[0] in ("answer_frequencies", "logit_lens")]:
        frame = pl.read_parquet(runs[1].artifacts_dir / file)
        assert frame.select("a", "b").n_unique() == 40 + added
        assert_frame_equal(frame, pl.read_parquet(runs[0].artifacts_dir / file), check_exact=False, rel_tol=1e-5, abs_tol=1e-7)


def test_auto_workers_take_one_process_per_thread_where_checkpoints_repay_it():
    from tdw.analysis.pipeline import auto_workers

    with torch_threads(2):
        assert [auto_workers(n) for n in (0, 1, 31, 32, 118)] == [1, 1, 1, 2, 2]
        torch.set_num_threads(16)
        assert [auto_workers(n) for n in (32, 48, 118)] == [2, 2, 2]  # more is asked for (--workers N)
        assert auto_workers(118, torch.device("cuda")) == 1  # processes sharing a GPU: never measured
        torch.set_num_threads(1)  # a job worker's or a pytest worker's one thread: no pool
        assert auto_workers(118) == 1


def test_weight_only_analyzers_need_no_forward_pass(trained_run):
    report = AnalysisPipeline(trained_run.path).run(["singular_values", "embedding_fourier"], force=True, progress=False)
    assert report.forward_passes == 0 and report.checkpoint_loads == len(trained_run.checkpoint_epochs())


def test_a_trained_runs_neurons_give_the_key_frequencies_its_embedding_gives(trained_run):
    """The fallback reads a real model's neurons the right way round: on the fixture run (keys 2
    and 5 by its embedding's gap) its final checkpoint's specialized neurons, through the family's
    "neurons" hook over the whole grid, give the same two frequencies."""
    config = trained_run.read_config()
    family = get_family(config.family)
    facts = RunFacts(trained_run, config, trained_run.checkpoint_epochs(), family)
    assert facts.key_frequencies == key_frequencies(family.embedding(facts.final_weights, config.p)) == [2, 5]
    maps = facts.final_neuron_maps()
    assert maps.shape == (config.d_mlp, config.p, config.p)
    assert neuron_key_frequencies(maps, family.specialized_share) == [2, 5]


def test_the_warehouse_says_which_rule_found_a_runs_key_frequencies(trained_run, tmp_path, monkeypatch):
    """The fixture run's keys come from its embedding's gap. Asking a gap no embedding has (the
    rule's threshold raised to 100) leaves the neurons to decide: the same keys, analyzed and
    indexed as a user runs them, now say `neuron_clusters` in the key_frequencies view and in
    variant_summary, and the restricted loss still reads them."""
    target = tmp_path / "results" / "modular_addition" / trained_run.variant
    shutil.copytree(trained_run.path, target, ignore=shutil.ignore_patterns("artifacts"))
    db = tmp_path / "warehouse" / "tdw.duckdb"
    chosen = ["key_frequencies", "progress"]

    def indexed() -> tuple[list, list, float]:
        build_index(tmp_path / "results", db)
        keys = query("select frequency, rule from key_frequencies order by frequency", db).rows()
        summary = query("select key_frequencies, key_frequency_rule from variant_summary", db).row(0)
        restricted = query("select value from progress where measure = 'restricted_loss' order by epoch desc limit 1", db).item()
        return keys, list(summary), restricted

    AnalysisPipeline(target).run(chosen, progress=False)
    keys, summary, by_gap = indexed()
    assert keys == [(2, "embedding_gap"), (5, "embedding_gap")] and summary == [[2, 5], "embedding_gap"]
    monkeypatch.setattr("tdw.analysis.key_frequencies.MIN_GAP", 100.0)
    AnalysisPipeline(target).run(chosen, force=True, progress=False)
    keys, summary, by_neurons = indexed()
    assert keys == [(2, "neuron_clusters"), (5, "neuron_clusters")] and summary == [[2, 5], "neuron_clusters"]
    assert by_neurons == by_gap < 0.1  # the same keys restrict the logits alike
    # checkpoints analyzed in worker processes take the keys the parent found, once: here none (no
    # neuron cluster big enough either), where workers finding their own, with the thresholds
    # they import unchanged, would say 2 and 5
    monkeypatch.setattr("tdw.analysis.key_frequencies.MIN_NEURON_SHARE", 2.0)
    AnalysisPipeline(target).run(["progress"], force=True, progress=False, workers=2)
    build_index(tmp_path / "results", db)
    counts = query("select distinct value from progress where measure = 'key_frequency_count'", db)["value"].to_list()
    assert counts == [0.0]


def test_newer_analyzer_version_invalidates_older_artifacts(trained_run, monkeypatch):
    analyzer = all_analyzers()["embedding_fourier"]
    AnalysisPipeline(trained_run.path).run(["embedding_fourier"], progress=False)
    monkeypatch.setattr(type(analyzer), "version", analyzer.version + 1)
    report = AnalysisPipeline(trained_run.path).run(["embedding_fourier"], progress=False)
    assert len(report.written) == len(trained_run.checkpoint_epochs())


def test_a_replaced_table_reads_as_its_successor_until_analyzing_rewrites_it(trained_run, tmp_path):
    """neuron_activations v2 writes `neuron_maps` (binary codes); a run analyzed by v1 has
    list-coded maps under `neuron_activations`. Until `tdw analyze` rewrites an epoch, the
    warehouse reads v1's file as `neuron_maps` (a bundle without checkpoints can only be read so):
    byte for byte the codes v2 writes. Analyzing one epoch deletes only that epoch's old file;
    analyzing all deletes the old table, manifest entries first."""
    target = tmp_path / "results" / "modular_addition" / trained_run.variant
    shutil.copytree(trained_run.path, target, ignore=shutil.ignore_patterns("artifacts"))
    run = RunDir(target)
    AnalysisPipeline(run.path).run(["neuron_activations"], epochs=[300, 500], progress=False)
    new = {epoch: pl.read_parquet(artifact_path(run.artifacts_dir, "neuron_maps", epoch)) for epoch in (300, 500)}
    old_folder = run.artifacts_dir / "neuron_activations"  # what v1 left: list codes, listed in the manifest
    old_folder.mkdir()
    manifest = json.loads((run.artifacts_dir / "manifest.json").read_text())
    for epoch, frame in new.items():
        v1 = frame.with_columns(pl.col("codes").map_elements(list, return_dtype=pl.List(pl.UInt8)))
        v1.write_parquet(old_folder / f"epoch_{epoch:05d}.parquet")
        artifact_path(run.artifacts_dir, "neuron_maps", epoch).unlink()
        del manifest[f"neuron_maps/epoch_{epoch:05d}.parquet"]
        manifest[f"neuron_activations/epoch_{epoch:05d}.parquet"] = file_digest(old_folder / f"epoch_{epoch:05d}.parquet")
    (run.artifacts_dir / "manifest.json").write_text(json.dumps(manifest))
    db = tmp_path / "warehouse" / "tdw.duckdb"

    def indexed_maps() -> pl.DataFrame:
        build_index(tmp_path / "results", db)
        return query("select epoch, neuron, lo, hi, codes from neuron_maps order by epoch, neuron", db)

    def expected(epochs) -> pl.DataFrame:
        return pl.concat([new[e] for e in epochs]).select("epoch", "neuron", "lo", "hi", "codes")

    assert_frame_equal(indexed_maps(), expected([300, 500]), check_dtypes=False)  # both read from v1's files

    report = AnalysisPipeline(run.path).run(["neuron_activations"], epochs=[500], progress=False)
    assert report.written == [("neuron_maps", 500)]
    assert sorted(p.name for p in old_folder.iterdir()) == ["epoch_00300.parquet"]
    kept = json.loads((run.artifacts_dir / "manifest.json").read_text())
    assert [key for key in kept if key.startswith("neuron_activations/")] == ["neuron_activations/epoch_00300.parquet"]
    assert_frame_equal(indexed_maps(), expected([300, 500]), check_dtypes=False)  # 300 from v1, 500 from v2

    report = AnalysisPipeline(run.path).run(["neuron_activations"], progress=False)
    assert not old_folder.exists()
    kept = json.loads((run.artifacts_dir / "manifest.json").read_text())
    assert not [key for key in kept if key.startswith("neuron_activations/")]
    assert {table for table, _ in report.written} == {"neuron_maps"} and len(report.written) == 5  # 500 was there
    assert_frame_equal(indexed_maps().filter(pl.col("epoch").is_in([300, 500])), expected([300, 500]),
                       check_dtypes=False)
    row = new[500].filter(pl.col("neuron") == 3).row(0, named=True)
    assert len(row["codes"]) == 23 * 23
    assert dequantize(row["codes"], row["lo"], row["hi"], 23).max() == pytest.approx(row["hi"], rel=1e-6)


def test_restricted_loss_falls_below_test_loss_after_grokking(trained_run):
    AnalysisPipeline(trained_run.path).run(["progress"], progress=False)
    progress = pl.read_parquet(trained_run.artifacts_dir / "progress" / "*.parquet")
    losses = trained_run.read_losses().filter(split="test")
    final = trained_run.checkpoint_epochs()[-1]
    test_loss = losses.filter(epoch=final)["loss"][0]
    restricted = progress.filter(epoch=final, measure="restricted_loss")["value"][0]
    assert losses.filter(epoch=final)["accuracy"][0] > 0.95, "the fixture run should grok"
    assert restricted < test_loss


def test_key_frequency_projection_equals_the_projection_onto_explicit_directions():
    """The residue-sum projection against its definition: orthonormal cube-sized directions
    cos/sin(w_k(a+b-c)), built one by one, on logits with planted key-frequency terms and noise."""
    a, b, c = torch.meshgrid(torch.arange(P), torch.arange(P), torch.arange(P), indexing="ij")
    angle = (a + b - c).double() * 2 * math.pi / P
    keys = [2, 5]
    directions = [fn(k * angle) for k in keys for fn in (torch.cos, torch.sin)]
    directions = torch.stack([d / d.norm() for d in directions])
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.cos(2 * angle) - torch.sin(5 * angle) + torch.randn(P, P, P, generator=generator, dtype=torch.float64)
    explicit = torch.einsum("k,kabc->abc", torch.einsum("kabc,abc->k", directions, logits), directions)
    fast = key_frequency_projection(logits, keys)
    assert torch.allclose(fast, explicit, rtol=0, atol=1e-12)
    planted = 3 * torch.cos(2 * angle) - torch.sin(5 * angle)
    assert torch.allclose(key_frequency_projection(planted, keys), planted, rtol=0, atol=1e-12)  # kept whole
    assert torch.equal(key_frequency_projection(logits, []), torch.zeros_like(logits))


def test_analyze_cli_bad_input_is_one_line(trained_run):
    result = tdw_here("analyze", str(trained_run.path), "--analyzers", "nope")
    assert result.returncode == 2 and result.stderr.strip().startswith("tdw analyze: --analyzers: unknown analyzer 'nope'")
    result = tdw_here("analyze", str(trained_run.path), "--epochs", "5")
    assert result.returncode == 2 and "no checkpoint at epoch 5" in result.stderr


def test_analyze_as_a_job_takes_force_and_workers_too(trained_run, tmp_path):
    """`tdw analyze RUN --job-db DB` (the dashboard's Analyze page) runs the same pipeline as a
    tracked job: --force recomputes what is up to date instead of being ignored, and the job's
    record keeps the options it ran with."""
    from tdw.warehouse.catalog import Catalog

    target = tmp_path / "results" / "modular_addition" / trained_run.variant
    shutil.copytree(trained_run.path, target, ignore=shutil.ignore_patterns("artifacts"))
    db = tmp_path / "warehouse" / "tdw.duckdb"
    tdw_here("analyze", str(target), "--analyzers", "embedding_fourier", "--job-db", str(db), check=True)
    artifact = artifact_path(target / "artifacts", "embedding_fourier", 500)
    written = artifact.stat().st_mtime_ns
    result = tdw_here("analyze", str(target), "--analyzers", "embedding_fourier", "--job-db", str(db), "--force",
                      "--workers", "1", check=True)
    assert result.stdout.strip().endswith(f"{trained_run.variant}: done")
    assert artifact.stat().st_mtime_ns > written
    catalog = Catalog(db.with_name("catalog.sqlite"))
    jobs = sorted(catalog.jobs(), key=lambda job: job["id"])
    catalog.dispose()
    assert [job["state"] for job in jobs] == ["done", "done"]
    assert (jobs[0]["params"]["force"], jobs[1]["params"]["force"], jobs[1]["params"]["workers"]) == (False, True, 1)


@pytest.mark.parametrize("stood_at", [100, 300])
def test_a_run_analyzed_while_training_then_extended_equals_a_fresh_analysis(trained_run, tmp_path, stood_at):
    """Analyze the run as it stood at epoch 100 or 300 (later checkpoints not written yet), let it
    "grow" to its end, analyze again: every table equals a fresh analysis of the whole run, and
    the second pass names what it invalidated (key frequencies: the final checkpoint changed;
    trajectory: the set of checkpoints changed). The progress measures read the keys: at 100 the
    run had none (invalidated: the key frequencies changed), at 300 it had its final 2 and 5 (by
    its neurons; by the gap from 500), so its earlier checkpoints' progress stands."""
    grown, fresh = tmp_path / "grown" / trained_run.variant, tmp_path / "fresh" / trained_run.variant
    for target in (grown, fresh):
        shutil.copytree(trained_run.path, target, ignore=shutil.ignore_patterns("artifacts"))
    later = tmp_path / "not-yet-written"
    later.mkdir()
    for path in (grown / "checkpoints").iterdir():
        if int(path.stem.rsplit("_", 1)[1]) > stood_at:
            path.rename(later / path.name)
    AnalysisPipeline(grown).run(progress=False)
    for path in later.iterdir():
        path.rename(grown / "checkpoints" / path.name)

    result = tdw_here("analyze", str(grown), "--quiet", check=True)
    invalidated_progress = [line for line in result.stdout.splitlines() if " progress artifact" in line]
    expected = ["invalidated 2 progress artifacts (the key frequencies changed)"] if stood_at == 100 else []
    assert invalidated_progress == expected
    assert "invalidated 1 final_key_frequencies artifact (the final checkpoint changed)" in result.stdout
    assert "invalidated 1 trajectory artifact (the set of checkpoints changed)" in result.stdout
    assert "invalidated 3 neuron_freq" not in result.stdout  # per-checkpoint tables of old epochs stay
    AnalysisPipeline(fresh).run(progress=False)
    for table in sorted(p.name for p in (fresh / "artifacts").iterdir() if p.is_dir()):
        expected = pl.read_parquet(fresh / "artifacts" / table / "*.parquet")
        assert_frame_equal(pl.read_parquet(grown / "artifacts" / table / "*.parquet"), expected, check_exact=True)
    assert AnalysisPipeline(grown).run(progress=False).written == []


def test_worker_threads_keep_order_and_values_and_restore_the_callers_threads():
    import threading

    from tdw.analysis.worker_threads import map_on_single_threaded_workers

    def probe(i: int) -> tuple[int, int, int, bool]:
        return i * i, threading.get_ident(), torch.get_num_threads(), torch.is_grad_enabled()

    with torch_threads(2):
        with torch.no_grad():
            results = map_on_single_threaded_workers(probe, iter(range(40)))
        assert [r[0] for r in results] == [i * i for i in range(40)]  # in the items' order
        assert threading.get_ident() not in {r[1] for r in results}  # on workers
        assert {r[2] for r in results} == {1} and {r[3] for r in results} == {False}  # one thread each; no_grad carried
        assert torch.get_num_threads() == 2 and torch.is_grad_enabled()
        torch.set_num_threads(1)  # one thread: in turn, here
        assert {r[1] for r in map_on_single_threaded_workers(probe, range(3))} == {threading.get_ident()}


@pytest.mark.parametrize("family_changes", [{}, {"family": "mlp", "d_model": None, "n_heads": None, "d_head": None}])
def test_batched_flatness_equals_a_serial_loop_over_the_perturbations(trained_run, family_changes):
    """One vmapped forward per radius (flatness's GPU path) and the CPU's worker threads give the
    losses of a serial loop through the training forward (v2's form, the reference below), for both
    families, and the analyzer the statistics of a serial loop through its read-only loss."""
    from tdw.analysis.context import CheckpointContext, RunFacts
    from tdw.analyzers.flatness import (
        RADII,
        SAMPLES,
        Flatness,
        cpu_increases,
        train_loss,
        vmapped_increases,
    )
    from tdw.families import get_family

    epoch = 300  # memorized and not yet cleaned up: the perturbations still move its loss
    if family_changes:
        config = tiny_config(**family_changes, num_epochs=2)
        family = get_family("mlp")
        weights = family.build_model(config).state_dict()
        facts = RunFacts(trained_run, config, [0], family)
    else:
        config = trained_run.read_config()
        family = get_family(config.family)
        weights = trained_run.load_weights(epoch)
        facts = RunFacts(trained_run, config, trained_run.checkpoint_epochs(), family)
    ctx = CheckpointContext(facts, family, family.task_data(config), epoch, weights, None)

    def training_forward_loss(_ctx, weights: dict[str, torch.Tensor]) -> float:
        return float(family.losses(weights, ctx.data, with_test=False).train_loss)

    def serial(radius: float, generator: torch.Generator, train_loss=training_forward_loss) -> torch.Tensor:
        base = train_loss(ctx, weights)
        increases = []
        for _ in range(SAMPLES):
            perturbed = {}
            for name, w in sorted(weights.items()):
                if name.split(".")[-1].startswith("b_") and not config.train_biases:
                    perturbed[name] = w
                    continue
                direction = torch.randn(w.shape, generator=generator).to(w)
                perturbed[name] = w + direction * (radius * w.norm() / direction.norm().clamp_min(1e-12))
            increases.append(train_loss(ctx, perturbed) - base)
        return torch.tensor(increases, dtype=torch.float64)

    reference_generator = torch.Generator().manual_seed(7)
    references = [serial(radius, reference_generator) for radius in RADII]  # drawn radius by radius
    for path in (vmapped_increases, cpu_increases):  # the GPU's batched form, the CPU's workers
        values = path(ctx, torch.Generator().manual_seed(7))
        assert [v.shape for v in values] == [(SAMPLES,)] * len(RADII)
        for value, reference in zip(values, references, strict=True):
            torch.testing.assert_close(value, reference, rtol=1e-4, atol=1e-6)
    assert references[-1].abs().max() > 1e-4  # the largest radius really moves the loss
    # the analyzer (on a CPU: all 65 losses on worker threads, drawn radius by radius from one
    # generator) gives the serial loop's statistics; two threads, so the workers run (under
    # pytest-xdist every process has one, and then the losses are computed in turn)
    with torch_threads(2):
        frame = Flatness().analyze(ctx)["flatness"]
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    expected = []
    for radius in RADII:
        inc = serial(radius, generator, train_loss)  # the analyzer's read-only train loss
        q = torch.quantile(inc, torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64))
        expected += [inc.mean(), inc.std(), q[0], q[1], q[2]]
    assert frame["statistic"].to_list() == ["mean", "std", "p05", "p50", "p95"] * len(RADII)
    torch.testing.assert_close(torch.tensor(frame["value"].to_list(), dtype=torch.float64), torch.stack(expected), rtol=1e-5, atol=1e-9)
