"""Shared trajectory bases: runs whose paths through weight space are known by construction, fitted
into one basis from the CLI, indexed, and measured by trajectory_loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import tdw
from tdw.analysis.pca import pooled_pca
from tdw.analysis.pipeline import AnalysisPipeline
from tdw.families import get_family
from tdw.run_dir import RunDir
from tdw.warehouse import build_index, query
from tests.conftest import tiny_config
from tests.test_traces import cli, files_of

TRANSFORMER = get_family("modular_addition")
# crosses itself (segment 3 crosses segment 0), and both coordinates are uncorrelated with time, so
# that the drift alone is PC1 and the loop's plane is PC2/PC3 exactly
LOOP = np.array([[-1.0, 0], [1, 0], [1, 1], [0, 1], [0, -1], [-0.2, 0.6]])
DRIFT = 10.0  # PC1: a steady drift much larger than the loop


def planted_run(results, seed: int, angle: float, p: int = 13) -> RunDir:
    """A run whose checkpoints are base + drift(t) s + R(angle) loop(t) in the plane (u, v): three
    orthonormal directions of parameter space shared by every run planted with the same p."""
    config = tiny_config(seed=seed, p=p, num_epochs=len(LOOP))
    base = TRANSFORMER.build_model(tiny_config(seed=1, p=p)).state_dict()
    names = sorted(base)
    flat = torch.cat([base[n].flatten() for n in names]).double()
    directions = torch.linalg.qr(torch.randn(flat.numel(), 3, generator=torch.Generator().manual_seed(5),
                                             dtype=torch.float64)).Q.T
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    run = RunDir.for_config(results, config)
    run.path.mkdir(parents=True)
    run.write_config(config)
    run.update_metadata(status="complete")
    for t, (x, y) in enumerate(LOOP @ rotation.T):
        point = flat + DRIFT * t * directions[0] + x * directions[1] + y * directions[2]
        weights, offset = {}, 0
        for n in names:
            size = base[n].numel()
            weights[n] = point[offset:offset + size].reshape(base[n].shape).float()
            offset += size
        run.save_checkpoint(t * 100, weights, None)
    return run


def test_runs_that_differ_by_a_rotation_share_a_basis_and_their_loops_measure_alike(tmp_path, capsys):
    results, db = tmp_path / "results", tmp_path / "warehouse" / "tdw.duckdb"
    first, turned = planted_run(results, 1, 0.0), planted_run(results, 2, 1.1)
    for run in (first, turned):
        AnalysisPipeline(run.path).run(["trajectory"], None, False, progress=False)
    code, out, _ = cli(capsys, "analyze", "--trajectory-basis", "twins", "--variants",
                       f"{first.variant},{turned.variant}", "--results", str(results))
    assert code == 0 and "fitted on 2 runs" in out
    build_index(results, db)
    loops = query("select variant, basis, self_intersects, loop_start_epoch, loop_close_epoch, loop_area, "
                  "max_excursion_from_start from trajectory_loops where \"group\" = 'all' order by basis, variant", db)
    assert loops.height == 4 and set(loops["basis"]) == {"own", "twins"}
    assert loops["self_intersects"].all()
    expected = loops.row(0, named=True)
    for row in loops.iter_rows(named=True):  # both runs, in their own PCA and in the shared one
        assert (row["loop_start_epoch"], row["loop_close_epoch"]) == (expected["loop_start_epoch"], expected["loop_close_epoch"])
        assert row["loop_area"] == pytest.approx(expected["loop_area"], rel=1e-4)
        assert row["max_excursion_from_start"] == pytest.approx(expected["max_excursion_from_start"], rel=1e-4)
    # in the shared basis the two paths are one coordinate system: the turned one's PC2/PC3 points are
    # the first one's turned by the planted angle (about the pooled mean)
    shared = query("pivot (select variant, epoch, component, value from trajectory_basis where \"group\" = 'all') "
                   "on component using first(value) order by variant, epoch", db)
    a = shared.filter(shared["variant"] == first.variant).select("pc2", "pc3").to_numpy()
    b = shared.filter(shared["variant"] == turned.variant).select("pc2", "pc3").to_numpy()
    distances = lambda points: np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.testing.assert_allclose(distances(a), distances(b), atol=1e-4)
    np.testing.assert_allclose(distances(a), distances(LOOP), atol=1e-4)
    np.testing.assert_allclose(shared.filter(shared["variant"] == first.variant)["pc1"].to_numpy(),
                               shared.filter(shared["variant"] == turned.variant)["pc1"].to_numpy(), atol=1e-4)


def test_the_shared_pca_is_numpys_svd_of_the_pooled_points():
    generator = np.random.default_rng(0)
    blocks = [generator.normal(size=(7, 50)) * np.linspace(3, 0.1, 50), generator.normal(size=(5, 50)) + 0.3]
    coords, ratio = pooled_pca([torch.from_numpy(b).float() for b in blocks], 3)
    pooled = np.vstack(blocks).astype(np.float32).astype(np.float64)
    centered = pooled - pooled.mean(0)
    _u, s, vt = np.linalg.svd(centered, full_matrices=False)
    signs = np.sign(vt[np.arange(3), np.abs(vt[:3]).argmax(1)])
    reference = centered @ (vt[:3] * signs[:, None]).T
    np.testing.assert_allclose(np.vstack([c.numpy() for c in coords]), reference, atol=1e-8)
    np.testing.assert_allclose(ratio, (s[:3] ** 2) / (s ** 2).sum(), atol=1e-10)


def test_a_refit_without_variants_reuses_the_members_and_bad_bases_are_one_line(tmp_path, capsys):
    results = tmp_path / "results"
    first, second = planted_run(results, 1, 0.0), planted_run(results, 2, 0.5)
    other_p = planted_run(results, 3, 0.0, p=11)
    before = files_of(results)
    for args, says in [
        (("--variants", f"{first.variant},nope"), "no run named 'nope'"),
        (("--variants", first.variant), "at least two runs"),
        (("--variants", f"{first.variant},{other_p.variant}"), "one shape"),
        ((), "no run under"),
    ]:
        code, _out, err = cli(capsys, "analyze", "--trajectory-basis", "twins", "--results", str(results), *args)
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, (args, err)
    code, _out, err = cli(capsys, "analyze", "--trajectory-basis", "own", "--variants", f"{first.variant},{second.variant}",
                          "--results", str(results))
    assert code == 2 and "not 'own'" in err
    assert files_of(results) == before
    assert cli(capsys, "analyze", "--trajectory-basis", "twins", "--variants", f"{first.variant},{second.variant}",
               "--results", str(results))[0] == 0
    fitted = lambda: {name: digest for name, digest in files_of(results).items() if "trajectory_basis" in name}
    written = fitted()
    assert len(written) == 2
    code, out, _ = cli(capsys, "analyze", "--trajectory-basis", "twins", "--results", str(results))
    assert code == 0 and f"({first.variant}, {second.variant})" in out
    assert fitted() == written  # the same members, the same fit, byte for byte
    refit = tdw.fit_trajectory_basis("twins", results=str(results))  # a notebook's way, the same refit
    assert refit.members == [first.variant, second.variant] and fitted() == written
    assert set(refit.explained) == {"all", "embedding", "attention", "mlp", "unembedding"}
