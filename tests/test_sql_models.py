"""The SQL project checks itself: every view states its grain and holds to it on a real warehouse,
views are created in the order their reads require (not the order of their file names), each
layer is kept as declared once in sql/layers.toml, and only staging reads raw sources."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from dashboards import store as store_module
from tdw.analyzers import all_analyzers
from tdw.errors import TdwError
from tdw.warehouse import query
from tdw.warehouse.sql_models import (
    SQL_DIR,
    final_order_by,
    layer_materializations,
    read_models,
    upstream,
)
from tests.test_warehouse import build_hand_made

MODELS = read_models()


@pytest.fixture(scope="module")
def warehouses(study, tmp_path_factory):
    """The real study, and the hand-made one whose variant groks (the study's 200 epochs do not,
    so it has no key frequencies): between them every view has rows."""
    return [study, build_hand_made(tmp_path_factory.mktemp("hand-made"))[1]]


@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_every_view_is_unique_and_non_null_on_its_grain(warehouses, model):
    keys = ", ".join(f'"{k}"' for k in model.grain)
    rows = 0
    for db in warehouses:
        rows += query(f"select count(*) as n from {model.name}", db)["n"][0]
        duplicated = query(f"select count(*) as n from (select {keys} from {model.name} group by all "
                           "having count(*) > 1)", db)["n"][0]
        nulls = query(f"select count(*) as n from {model.name} where "
                      + " or ".join(f"{k} is null" for k in keys.split(", ")), db)["n"][0]
        assert (duplicated, nulls) == (0, 0), (model.name, db)
    assert rows > 0, f"{model.name}: no rows on any test warehouse, so its grain is not tested"


def test_the_grain_check_catches_a_duplicate(study):
    """The query above really fails on a relation whose rows repeat its keys."""
    duplicated = query("select count(*) as n from (select variant from checkpoints group by all having count(*) > 1)",
                       study)["n"][0]
    assert duplicated == 3  # three variants, each with many checkpoints: 'variant' alone is no grain of checkpoints


def test_every_layer_is_kept_as_declared_once(study):
    declared = layer_materializations()
    assert set(declared) == {m.layer for m in MODELS}
    kinds = dict(query("select table_name, table_type from information_schema.tables", study).iter_rows())
    for model in MODELS:
        assert kinds[model.name] == {"view": "VIEW", "table": "BASE TABLE"}[declared[model.layer]], model.name


def test_every_sql_table_reads_in_its_own_or_its_grains_order(warehouses):
    """A `select *` with no ORDER BY (a researcher's first query, an export) reads a kept SQL
    table's rows in the order its query ends with (variant_summary: p, seed, variant), else in its
    grain's: `intervention_summary` came out epoch 24999 before 14000."""
    checked = 0
    for db in warehouses:
        for model in MODELS:
            if model.materialized != "table" or model.is_python:
                continue
            order = f"order by {model.own_order}" if model.own_order else model.storage_order
            stored = query(f"select * from {model.name}", db)
            assert stored.equals(query(f"select * from {model.name} {order}", db)), (model.name, db)
            checked += stored.height > 1
    assert checked > 30


def test_only_a_final_order_by_is_a_views_own():
    assert final_order_by("create or replace view v as\nselect p, seed -- order by seed\nfrom t\norder by p, seed;\n") == "p, seed"
    assert final_order_by("select * from t order by e desc limit 10 offset 2") == "e desc"
    for text in ("select list(f order by f) as fs from t group by v",  # an aggregate's
                 "select row_number() over (order by e) from t",  # a window's
                 "select * from (select * from t order by e) where e > 0",  # a subquery's
                 "select * from t where s = ') order by x'",  # a string's
                 "select * from t order by e union all select * from u"):  # a set operation's first part's
        assert final_order_by(text) is None, text


def test_every_artifact_table_has_a_staging_view_and_only_staging_reads_sources():
    staged = {m.name for m in MODELS if m.layer == "10_staging"}
    tables = {table for analyzer in all_analyzers().values() for table in analyzer.tables}
    assert tables <= staged, tables - staged
    for analyzer in all_analyzers().values():  # a replaced table reads as one of its analyzer's own, and is none
        for old, how in analyzer.replaces.items():
            assert how.into in analyzer.tables and old not in tables, (analyzer.name, old, how.into)
    for model in MODELS:
        sources = {r for r in model.reads if r.startswith(("src_", "catalog_"))}
        assert bool(sources) == (model.layer == "10_staging"), (model.name, sources)
    # the dashboard's store reads views of sql/ too, never a raw source
    assert not re.search(r"\b(src|catalog)_\w+", (SQL_DIR.parent / "dashboards" / "store.py").read_text())
    assert store_module.__name__ == "dashboards.store"


def write(folder, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def tiny_project(tmp_path, first_reads: str = "z_last", first_layer: str = "20_b"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "layers.toml").write_text('[10_a]\nmaterialized = "view"\n[20_b]\nmaterialized = "table"\n')
    write(tmp_path / "10_a", "base.sql", "-- grain: id\ncreate or replace view base as select 1 as id from src_x;\n")
    write(tmp_path / first_layer, "a_first.sql", f"-- grain: id\ncreate or replace view a_first as select * from {first_reads};\n")
    write(tmp_path / "20_b", "z_last.sql", "-- grain: id\ncreate or replace view z_last as select * from base;\n")
    return tmp_path


def test_views_are_ordered_by_what_they_read_not_by_file_name(tmp_path):
    models = read_models(tiny_project(tmp_path))
    assert [m.name for m in models] == ["base", "z_last", "a_first"]
    assert [m.materialized for m in models] == ["view", "table", "table"]


def test_a_cycle_a_higher_layer_read_or_a_missing_grain_is_one_line(tmp_path):
    project = tiny_project(tmp_path / "cycle")
    (project / "20_b" / "z_last.sql").write_text("-- grain: id\ncreate or replace view z_last as select * from a_first;\n")
    with pytest.raises(TdwError, match="views read each other in a cycle"):
        read_models(project)
    with pytest.raises(TdwError, match="reads 'z_last' from a higher layer"):
        read_models(tiny_project(tmp_path / "higher", first_layer="10_a"))
    project = tiny_project(tmp_path / "grain")
    (project / "10_a" / "base.sql").write_text("create or replace view base as select 1 as id;\n")
    with pytest.raises(TdwError, match=r"base.sql: no `-- grain: column, \.\.\.` header line"):
        read_models(project)


def test_a_python_models_imports_are_read_checked_and_imported_ahead(tmp_path):
    """IMPORTS names the libraries a Python model's function imports where it runs (ruptures,
    hmmlearn: 0.6-0.75 s each), so an index computing it imports them in a background thread while
    it copies the runs' rows. Read from the file; not a tuple of names is one line; `imported_ahead`
    has imported them when its block ends (a module nothing else here imports, in a fresh process),
    and a module that does not exist is left for the model's own import to report."""
    project = tiny_project(tmp_path / "ok")
    write(project / "20_b", "counted.py", '"""counted\n\n-- grain: id\n"""\nREADS = ("base",)\n'
          'IMPORTS = ("wave", "tdw_no_such_module")\n\n\ndef model(con, variants):\n    import wave\n')
    models = {m.name: m for m in read_models(project)}
    assert models["counted"].imports == ("wave", "tdw_no_such_module") and models["base"].imports == ()
    project = tiny_project(tmp_path / "wrong")
    write(project / "20_b", "counted.py", '"""counted\n\n-- grain: id\n"""\nREADS = ("base",)\nIMPORTS = "wave"\n\n\n'
          "def model(con, variants):\n    pass\n")
    with pytest.raises(TdwError, match=r"counted.py: IMPORTS is a tuple of module names"):
        read_models(project)
    code = ("import pathlib, sys, threading; from tdw.warehouse.sql_models import read_models; "
            "from tdw.warehouse.materialize import imported_ahead; "
            f"models = [m for m in read_models(pathlib.Path({str(tmp_path / 'ok')!r})) if m.is_python]; before = 'wave' in sys.modules\n"
            "with imported_ahead(models):\n    pass\n"
            "print(before, 'wave' in sys.modules, 'tdw_no_such_module' in sys.modules, threading.active_count())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True", "False", "1"], done.stdout + done.stderr
    real = {m.name: m for m in read_models()}
    assert real["metric_events"].imports == ("ruptures",) and real["training_phases"].imports == ("hmmlearn.hmm",)


def test_a_python_model_runs_only_once_its_imports_ahead_are_done(tmp_path):
    """Computed while the background thread still imported its library, a model imported it too,
    and two threads importing one module at once can deadlock on its lock, which Python breaks by
    handing one of them the module half made: a CI run's LLC job failed its index so (`cannot
    import name 'euclidean' from partially initialized module 'scipy.spatial.distance'`, ruptures
    in the model, hmmlearn in the thread). A library half a second to import, in a fresh process:
    the model sees it whole."""
    (tmp_path / "slow_library.py").write_text("import time\n\ntime.sleep(0.5)\nREADY = True\n")
    project = tiny_project(tmp_path / "project")
    write(project / "20_b", "waits.py", '"""waits\n\n-- grain: id\n"""\nimport sys\n\nimport polars as pl\n\n'
          'READS = ("base",)\nIMPORTS = ("slow_library",)\n\n\ndef model(con, variants):\n'
          '    module = sys.modules.get("slow_library")\n'
          '    return pl.DataFrame({"id": [1], "ready": [getattr(module, "READY", False)]})\n')
    code = ("import pathlib, sys; import duckdb; from tdw.warehouse.sql_models import read_models; "
            "from tdw.warehouse.materialize import imported_ahead, python_rows; "
            f"sys.path.insert(0, {str(tmp_path)!r}); "
            f"models = [m for m in read_models(pathlib.Path({str(project)!r})) if m.is_python]\n"
            "with imported_ahead(models):\n    frame = python_rows(duckdb.connect(), models[0], None)\n"
            "print(frame['ready'].to_list())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[True]"], done.stdout + done.stderr


def test_upstream_is_a_view_and_everything_it_reads_in_creation_order():
    models = upstream("variant_summary")
    names = [m.name for m in models]
    assert names[-1] == "variant_summary" and "src_losses" not in names  # raw sources are not models
    assert {"losses", "grokking_turn", "key_frequencies", "neuron_specialization", "participation_ratio",
            "cos_sin_balance", "variants"} <= set(names)
    assert "attention" not in names  # variant_summary reads nothing of the attention tables
    for model in models:  # each after every model it reads
        assert all(names.index(read) < names.index(model.name) for read in model.reads if read in names), model.name
    assert [m.name for m in upstream("grokking_turn")] == ["losses", "int_test_loss__smoothed", "grokking_turn"]
