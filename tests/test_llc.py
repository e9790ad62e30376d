"""The local learning coefficient: known answers on models whose effective dimension is known, the
same chain as devinterp's SGLD sampler, and the analyzer on real runs of both families."""

from __future__ import annotations

import math
import warnings

import polars as pl
import pytest
import torch

from tdw.analysis.llc import SPIKE_NATS, SGLDSettings, estimate_llc, sgld_chain, sound_chain
from tdw.analysis.pipeline import AnalysisPipeline
from tests.test_traces import mlp_run, transformer_run

N = 20_000


class Regression:
    """N samples of y = x . w + unit Gaussian noise, kept as sufficient statistics: the mean
    negative log-likelihood (less its constant) 0.5 * mean((y - x . w)^2) of any coefficients
    is then a d x d product, not a pass over N rows, so a long chain takes a second."""

    def __init__(self, columns: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(N, columns, generator=generator, dtype=torch.float64)
        y = x @ torch.linspace(-1.0, 1.0, columns, dtype=torch.float64) + torch.randn(N, generator=generator, dtype=torch.float64)
        self.gram, self.moment, self.energy = x.T @ x / N, x.T @ y / N, float(y @ y / N)
        self.fit = torch.linalg.solve(self.gram, self.moment)

    def loss(self, coefficients: torch.Tensor) -> torch.Tensor:
        return 0.5 * (coefficients @ self.gram @ coefficients - 2 * coefficients @ self.moment + self.energy)


# Full-batch chains: the estimate's spread over seeds is about 0.1 at lambda = 2 with these settings
# (our measurement: 1.87-2.08 over four seeds), so the tolerances are 15%.
KNOWN_ANSWER = SGLDSettings(step_size=4e-5, localization=1.0, chains=4, draws=2500, burn_in=200)


def test_a_regular_linear_model_has_half_its_dimension():
    """y = x . w, 4 parameters, all of them used: lambda = d / 2 = 2."""
    data = Regression(4)
    estimate = estimate_llc(lambda params, rows: data.loss(params["w"]), {"w": data.fit}, ["w"], N,
                            KNOWN_ANSWER, torch.Generator().manual_seed(1))
    assert not estimate.diverged
    assert estimate.llc == pytest.approx(2.0, abs=0.3)
    assert estimate.nbeta == pytest.approx(N / math.log(N))


def test_a_redundant_parameter_adds_nothing():
    """y = (u + v) x1 + w x2: three parameters, two effective dimensions (u - v is flat), lambda = 1."""
    data = Regression(2)
    center = {"u": data.fit[:1] / 2, "v": data.fit[:1] / 2, "w": data.fit[1:]}

    def loss(params, rows):
        return data.loss(torch.cat([params["u"] + params["v"], params["w"]]))

    estimate = estimate_llc(loss, center, ["u", "v", "w"], N, KNOWN_ANSWER, torch.Generator().manual_seed(2))
    assert estimate.llc == pytest.approx(1.0, abs=0.15)
    # sampling only the redundant pair measures one dimension's worth: 1/2
    half = estimate_llc(loss, center, ["u", "v"], N, KNOWN_ANSWER, torch.Generator().manual_seed(3))
    assert half.llc == pytest.approx(0.5, abs=0.1)


def test_the_chain_is_devinterps_sgld_step_for_step():
    """devinterp's SGLD optimizer (installed without its dependencies: the sampler needs only torch)
    and our update, from one point with one noise generator, give the same draws."""
    from devinterp.optim import SGLD

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
    x = torch.randn(256, 3, dtype=torch.float64)
    labels = (x[:, 0] > x[:, 1]).long()
    names = [name for name, _ in model.named_parameters()]
    center = {name: p.detach().clone() for name, p in model.named_parameters()}
    settings = SGLDSettings(step_size=1e-3, localization=10.0, chains=1, draws=40)
    nbeta = 256 / math.log(256)

    def loss(params, rows):
        return torch.nn.functional.cross_entropy(torch.func.functional_call(model, params, (x,)), labels)

    ours = sgld_chain(loss, center, names, {}, 256, 256, nbeta, settings, torch.Generator().manual_seed(7))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        optimizer = SGLD(model.parameters(), lr=settings.step_size, localization=settings.localization, nbeta=nbeta)
    generator = torch.Generator().manual_seed(7)
    theirs = []
    for _ in range(settings.draws):
        optimizer.zero_grad()
        value = torch.nn.functional.cross_entropy(model(x), labels)
        value.backward()
        theirs.append(float(value.detach()))
        optimizer.step(noise_generator=generator)
    torch.testing.assert_close(ours, torch.tensor(theirs, dtype=torch.float64), rtol=1e-12, atol=1e-12)
    assert ours[-1] != ours[0]  # the chain moved


def test_the_analyzer_estimates_each_component_reproducibly(tmp_path):
    """At a transformer's initialization (not a minimum, so the value itself means little) every
    component is estimated, finite and reproducible from its seed."""
    run, _weights = transformer_run(tmp_path / "results")
    AnalysisPipeline(run.path).run(["llc"], None, False, progress=False)
    first = pl.read_parquet(run.artifacts_dir / "llc" / "epoch_00000.parquet")
    wide = {(r["component"], r["statistic"]): r["value"] for r in first.iter_rows(named=True)}
    assert {c for c, _ in wide} == {"all", "attention", "mlp"}
    assert {s for _, s in wide} == {"llc", "llc_std", "init_loss", "mean_loss", "nbeta", "diverged", "step_size"}
    for component in ("all", "attention", "mlp"):
        assert wide[(component, "diverged")] == 0 and math.isfinite(wide[(component, "llc")])
    AnalysisPipeline(run.path).run(["llc"], None, True, progress=False)
    again = pl.read_parquet(run.artifacts_dir / "llc" / "epoch_00000.parquet")
    assert again.equals(first)


def test_the_analytic_fourier_mlp_is_a_minimum_with_a_positive_coefficient_below_half_its_dimension(tmp_path):
    """The MLP family's hand-set Fourier solution: one component ("all"), and at a true minimum the
    chains only climb, so 0 < llc < d / 2 (its many symmetric neurons make it far below)."""
    run = mlp_run(tmp_path / "results", [2, 5])
    AnalysisPipeline(run.path).run(["llc"], [0], False, progress=False)
    frame = pl.read_parquet(run.artifacts_dir / "llc" / "epoch_00000.parquet")
    assert set(frame["component"]) == {"all"}
    wide = dict(zip(frame["statistic"], frame["value"], strict=True))
    dimension = sum(w.numel() for w in run.load_weights(0).values())
    assert wide["diverged"] == 0 and 0 < wide["llc"] < dimension / 2
    assert wide["mean_loss"] > wide["init_loss"]


def test_on_the_published_run_the_chains_are_sound_through_memorization_and_the_llc_falls_after_grokking():
    """v2's step (twice v3's, 20 burn-in steps) spiked with all weights sampled over the whole
    memorization plateau (epochs 2,500-10,000: NaN), so calibrating from it picks v3's; v3's step
    is sound and reads the plateau of the loss trace (165 at epoch 5,000 from chains of 200
    burn-in steps and 200 draws, benchmarks/llc_settings.py); after grokking the estimate is a
    small fraction of it."""
    from tdw.analyzers.llc import calibrate_step
    from tdw.run_dir import RunDir
    from tests.test_science import PUBLISHED

    run = RunDir(PUBLISHED)
    calibration = calibrate_step(run, [5000], factors=(2.0, 1.0))
    assert math.isnan(calibration.trials[2.0][5000]) and calibration.chosen == 1.0
    plateau = calibration.trials[1.0][5000]
    assert 140 < plateau < 185
    assert calibrate_step(run, [15_000], factors=(1.0,)).trials[1.0][15_000] < 0.05 * plateau


def test_a_chain_is_unsound_when_it_spikes_leaves_the_finite_numbers_or_rises_past_its_dimension():
    """Known answers for `sound_chain`, on draws built by hand: a steady chain, however high above
    the checkpoint (2.3 nats: a p=23 run's memorized checkpoint), is sound, and so is a wide one;
    three spikes of 10 nats in 60 draws (an unstable step) are not, nor a NaN, nor a rise that
    makes llc > d."""
    steady = 2.3 + 0.05 * torch.sin(torch.arange(60, dtype=torch.float64))
    assert sound_chain(steady, 0.0, nbeta=47.0, dimension=200_000)
    spiky = steady.clone()
    spiky[[10, 30, 50]] += 10.0
    assert float(spiky.mean() - spiky.median()) > SPIKE_NATS
    assert not sound_chain(spiky, 0.0, nbeta=47.0, dimension=200_000)
    # a wide, skewed but steady chain (p=13, n_beta 19): its mean 0.105 nat above its median, its
    # largest draw only 2.1 times the median's rise
    wide = torch.cat([torch.full((57,), 1.9, dtype=torch.float64), torch.full((3,), 4.0, dtype=torch.float64)])
    assert float(wide.mean() - wide.median()) > SPIKE_NATS and sound_chain(wide, 0.0, nbeta=19.0, dimension=200_000)
    assert not sound_chain(torch.cat([steady[:59], torch.tensor([float("nan")], dtype=torch.float64)]), 0.0, 47.0, 200_000)
    assert not sound_chain(steady, 0.0, nbeta=47.0, dimension=100)  # llc = 47 * 2.3 = 108 > 100
    assert sound_chain(steady, 0.0, nbeta=47.0, dimension=110)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A p=23 run (the transformer, its default widths) trained 300 epochs: memorized, with its
    LLC estimated at the last checkpoint and the default analyzers' progress at both. The LLC by
    `tdw analyze`, as the tests redo it: its chains follow the reductions' order, which a process's
    thread count sets, and this one's (pytest run alone, after other tests) may differ from a
    fresh process's."""
    from tdw.config import VariantConfig
    from tdw.training.trainer import train
    from tests.conftest import run_tdw

    config = VariantConfig(p=23, train_frac=0.5, num_epochs=300, checkpoint_epochs=(0, 299))
    run = train(config, tmp_path_factory.mktemp("small") / "results", device="cpu", progress=False)
    AnalysisPipeline(run.path).run(["progress"], [0, 299], progress=False)
    run_tdw("analyze", str(run.path), "--analyzers", "llc", "--epochs", "299", "--quiet", check=True)
    return run


def llc_rows(run, epoch: int) -> dict[tuple[str, str], float]:
    frame = pl.read_parquet(run.artifacts_dir / "llc" / f"epoch_{epoch:05d}.parquet")
    return {(r["component"], r["statistic"]): r["value"] for r in frame.iter_rows(named=True)}


def test_a_small_runs_sound_chains_may_rise_more_than_a_nat(small_run):
    """At p=23 (264 train pairs, n_beta 47) a memorized checkpoint's llc of about 100 is a rise of
    about 2 nats above the checkpoint's loss: v2's one-nat bound called every trained checkpoint's
    chains diverged. They are sound, and the two chains agree."""
    wide = llc_rows(small_run, 299)
    assert wide[("all", "mean_loss")] - wide[("all", "init_loss")] > 1.0
    for component in ("all", "attention", "mlp"):
        assert wide[(component, "diverged")] == 0
        assert wide[(component, "llc")] > 0 and wide[(component, "llc_std")] < 0.2 * wide[(component, "llc")]


def test_a_runs_llc_step_is_recorded_and_its_estimates_redone_with_it_alone(small_run):
    """`tdw analyze RUN --llc-step 0.5`: the run keeps the factor, its LLC estimates are redone at
    half the default step (the `step_size` statistic says which), nothing else is; back to 1, the
    setting is gone and the estimates are the default's again, bit for bit; `auto` keeps the
    default where its chains are sound."""
    from tdw.analyzers.llc import settings_for
    from tests.conftest import run_tdw

    default_step = settings_for(264).step_size
    before = llc_rows(small_run, 299)
    progress = {p: p.read_bytes() for p in (small_run.artifacts_dir / "progress").glob("*.parquet")}
    assert before[("all", "step_size")] == pytest.approx(default_step, rel=1e-6)

    result = run_tdw("analyze", str(small_run.path), "--llc-step", "0.5", "--quiet", check=True)
    assert "llc step factor 0.5 from now on (was 1)" in result.stdout
    assert small_run.analysis_settings("llc") == {"step_factor": 0.5}
    halved = llc_rows(small_run, 299)
    assert halved[("all", "step_size")] == pytest.approx(default_step / 2, rel=1e-6)
    assert halved[("all", "llc")] != before[("all", "llc")] and halved[("all", "diverged")] == 0
    assert not (small_run.artifacts_dir / "llc" / "epoch_00000.parquet").exists()  # only where it had estimates
    assert {p: p.read_bytes() for p in progress} == progress

    run_tdw("analyze", str(small_run.path), "--llc-step", "1", "--quiet", check=True)
    assert small_run.analysis_settings("llc") == {}
    assert llc_rows(small_run, 299) == before

    result = run_tdw("analyze", str(small_run.path), "--llc-step", "auto", "--epochs", "299", "--quiet", check=True)
    assert "llc step factor 1 from now on (was 1)" in result.stdout and "nothing to do" in result.stdout


@pytest.mark.parametrize("value", ["0", "-0.5", "1.5", "half"])
def test_a_bad_llc_step_is_one_line_and_changes_nothing(small_run, value):
    from tests.conftest import run_tdw

    files = {p: p.read_bytes() for p in small_run.path.rglob("*") if p.is_file()}
    result = run_tdw("analyze", str(small_run.path), "--llc-step", value)
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"tdw analyze: --llc-step {value}: expected a number in (0, 1], the step as a fraction of the default, or auto"]
    assert {p: p.read_bytes() for p in small_run.path.rglob("*") if p.is_file()} == files


def test_the_llc_step_is_never_changed_under_a_running_analysis(small_run):
    from tdw.locks import exclusive
    from tests.conftest import run_tdw

    files = {p: p.read_bytes() for p in small_run.path.rglob("*") if p.is_file()}
    with exclusive(small_run.path, "analyze", "analyzed"):
        result = run_tdw("analyze", str(small_run.path), "--llc-step", "0.5")
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "is being analyzed by" in result.stderr
    assert {p: p.read_bytes() for p in small_run.path.rglob("*") if p.is_file()} == files
