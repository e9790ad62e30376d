"""Study bundles (tdw/warehouse/bundle.py): exported from the shared study, copied elsewhere and
queried by a fresh Python with plain DuckDB and no tdw; imported into an empty results folder and
re-indexed to the same variant_summary; refused, writing nothing, when tampered with, conflicting,
or asked for something that does not exist; and opened read-only by `tdw serve --bundle`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tdw.cli import main
from tdw.warehouse.query import query
from tests.conftest import run_tdw
from tests.dashboard_harness import STUDY_VARIANTS, browser_page, served

SUMMARY = "select * exclude (key_frequencies), key_frequencies::varchar as keys from variant_summary order by variant"


def refused_line(capsys, *args: str) -> str:
    """Run `tdw ARGS` in this process (the CLI's own main); it must refuse with exit 2 and one line."""
    capsys.readouterr()
    code = main(list(args))
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0, (code, err)
    return err


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.exists() else {}


@pytest.fixture(scope="module")
def bundle(study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "study"
    run_tdw("bundle", "export", str(out), "--db", str(study), check=True)
    return out


def test_a_bundle_copied_elsewhere_is_queried_by_plain_duckdb_without_tdw(bundle, study, tmp_path):
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == 1 and sorted(manifest["variants"]) == sorted(STUDY_VARIANTS)
    assert manifest["runs"]["p13_seed3"]["config"]["p"] == 13
    assert manifest["analyzer_versions"]["p13_seed3"]["neuron_freq"]["version"] != ""
    assert "one row per variant" in manifest["tables"]["variant_summary"]["definition"]
    assert not any(name.startswith("runs/") and "/checkpoints/" in name for name in manifest["files"])  # no --with-checkpoints
    elsewhere = tmp_path / "colleague" / "study"
    shutil.copytree(bundle, elsewhere)
    somewhere_else = tmp_path / "cwd"
    somewhere_else.mkdir()
    code = ("import sys, json, duckdb; sys.modules['tdw'] = None; folder = sys.argv[1]; "
            "con = duckdb.connect(folder + '/bundle.duckdb', read_only=True, config={'file_search_path': folder}); "
            f"print(json.dumps(con.sql({SUMMARY!r}).pl().to_dicts(), default=str))")
    fresh = subprocess.run([sys.executable, "-I", "-c", code, str(elsewhere)], cwd=somewhere_else, capture_output=True,
                           text=True, env={"PATH": "/usr/bin:/bin"}, check=False)
    assert fresh.returncode == 0, fresh.stderr
    expected = query(SUMMARY, study).to_dicts()
    assert json.loads(fresh.stdout) == json.loads(json.dumps(expected, default=str))
    # in the bundle's own folder the views need no setting at all
    here = subprocess.run([sys.executable, "-I", "-c", ("import duckdb; print(duckdb.connect('bundle.duckdb', read_only=True)"
                           ".sql('select count(*) from losses').fetchall()[0][0])")], cwd=elsewhere, capture_output=True, text=True,
                          check=False)
    assert int(here.stdout) == query("select count(*) as n from losses", study)["n"][0]


def test_importing_a_bundle_into_an_empty_results_folder_reproduces_variant_summary(bundle, study, tmp_path, capsys):
    results, db = tmp_path / "results", tmp_path / "warehouse" / "tdw.duckdb"
    done = run_tdw("bundle", "import", str(bundle), "--results", str(results), "--db", str(db), check=True)
    assert "imported 3 runs" in done.stdout
    assert query(SUMMARY, db).equals(query(SUMMARY, study))
    capsys.readouterr()
    assert main(["bundle", "import", str(bundle), "--results", str(results), "--db", str(db)]) == 0
    assert "imported 0 runs" in capsys.readouterr().out  # the same runs again: nothing to do


def test_a_conflicting_variant_is_refused_and_nothing_is_written(bundle, tmp_path, capsys):
    results, db = tmp_path / "results", tmp_path / "warehouse" / "tdw.duckdb"
    config = json.loads((bundle / "runs" / "modular_addition" / "p13_seed4" / "config.json").read_text())
    mine = results / "modular_addition" / "p13_seed4"
    mine.mkdir(parents=True)
    (mine / "config.json").write_text(json.dumps({**config, "lr": 1e-3}))
    (mine / "metadata.json").write_text("{}")
    before = snapshot(tmp_path)
    refused = refused_line(capsys, "bundle", "import", str(bundle), "--results", str(results), "--db", str(db))
    assert "p13_seed4 is already in" in refused and "lr" in refused
    assert snapshot(tmp_path) == before


def test_a_tampered_bundle_is_refused_by_import_and_serve(bundle, tmp_path, capsys):
    for damage, says in (("changed", "does not match its checksum"), ("extra", "planted.parquet is not in the manifest"),
                         ("missing", "variant_summary.parquet is missing")):
        copy = tmp_path / damage
        shutil.copytree(bundle, copy)
        target = copy / "tables" / "variant_summary.parquet"
        if damage == "changed":
            data = bytearray(target.read_bytes())
            data[len(data) // 2] ^= 0xFF
            target.write_bytes(bytes(data))
        elif damage == "extra":
            (copy / "tables" / "planted.parquet").write_bytes(b"x")
        else:
            target.unlink()
        results = tmp_path / "results"
        assert says in refused_line(capsys, "bundle", "import", str(copy), "--results", str(results), "--db",
                                    str(tmp_path / "w" / "tdw.duckdb"))
        assert says in refused_line(capsys, "serve", "--bundle", str(copy), "--port", "1")
        assert not results.exists() and not (tmp_path / "w").exists()


def test_bad_export_requests_get_one_line_and_write_nothing(bundle, study, tmp_path, capsys):
    before = snapshot(bundle)
    for args, says in ((["bundle", "export", str(bundle), "--db", str(study)], "exists; pass --force"),
                       (["bundle", "export", str(tmp_path / "b"), "--db", str(study), "--tables", "variant_summary,nope"],
                        "--tables nope: not a warehouse table"),
                       (["bundle", "export", str(tmp_path / "b"), "--db", str(study), "--variants", "p13_seed3,p99"],
                        "--variants p99: not in the warehouse")):
        assert says in refused_line(capsys, *args)
    assert snapshot(bundle) == before and not (tmp_path / "b").exists()
    assert not list(tmp_path.glob(".tmp-*")) and not list(bundle.parent.glob(".tmp-*"))


def test_a_chosen_subset_with_checkpoints_replaces_a_bundle_with_force(study, tmp_path):
    out = tmp_path / "subset"
    assert main(["bundle", "export", str(out), "--db", str(study), "--variants", "p13_seed3", "--tables", "grokking_turn"]) == 0
    assert main(["bundle", "export", str(out), "--db", str(study), "--variants", "p13_seed4", "--tables", "grokking_turn,losses",
                 "--with-checkpoints", "--force"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["variants"] == ["p13_seed4"] and sorted(manifest["tables"]) == ["grokking_turn", "losses"]
    assert not manifest["complete"] and manifest["with_checkpoints"]
    assert len(list((out / "runs" / "modular_addition" / "p13_seed4" / "checkpoints").glob("checkpoint_epoch_*.safetensors"))) == 9
    turns = pl.read_parquet(out / "tables" / "grokking_turn.parquet")
    assert turns["variant"].to_list() == ["p13_seed4"]
    assert turns.equals(query("select * from grokking_turn where variant = 'p13_seed4'", study))


def test_serve_bundle_opens_it_read_only(bundle):
    before = snapshot(bundle)
    with served(bundle / "tdw.duckdb", bundle=bundle) as url, browser_page() as page:
        page.goto(url)
        page.locator(".page-nav").wait_for(timeout=60_000)
        pages = page.locator(".page-nav button").all_inner_texts()
        assert "Variant" in pages and "Compare" in pages and "Train" not in pages and "Analyze" not in pages
        page.locator(".variant-select select").wait_for()
        options = page.locator(".variant-select select option").all_inner_texts()
        assert sorted(options) == sorted(STUDY_VARIANTS)
        assert page.locator(".pair-input").count() == 1 and page.locator(".trace-pair").count() == 0  # it starts no job
    assert snapshot(bundle) == before
