"""Warehouse views on hand-made fixture runs with known answers, on a real DuckDB."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading

import duckdb
import polars as pl
import pytest
from conftest import run_tdw, tdw_here, tiny_config

from tdw.analysis.analyzer import TableSpec
from tdw.analysis.artifacts import artifact_path, tidy, write_artifact
from tdw.analyzers import all_analyzers
from tdw.errors import TdwError
from tdw.run_dir import LOSS_SCHEMA, RunDir
from tdw.warehouse import build_index, query
from tdw.warehouse.catalog import catalog_path
from tdw.warehouse.sql_models import read_models, upstream


def make_run(results, name: str, p: int, seed: int, test_log_loss, test_acc, train_acc, epochs: int) -> RunDir:
    config = tiny_config(p=p, seed=seed, num_epochs=epochs, checkpoint_epochs=(0,), name=name)
    run = RunDir.for_config(results, config)
    run.path.mkdir(parents=True)
    run.write_config(config)
    run.update_metadata(status="complete")
    rows = []
    for e in range(epochs):
        rows.append((name, e, "train", 1e-3, train_acc(e)))
        rows.append((name, e, "test", 10 ** test_log_loss(e), test_acc(e)))
    run.write_losses(pl.DataFrame(rows, schema=LOSS_SCHEMA, orient="row"))
    return run


def knee_curve(turn: int, steep_end: int):
    """log10 test loss: flat at 1 until `turn`, linear down to -2 at `steep_end`, flat after."""
    def f(e: int) -> float:
        if e < turn:
            return 1.0
        if e < steep_end:
            return 1.0 - 3.0 * (e - turn) / (steep_end - turn)
        return -2.0
    return f


def put(run: RunDir, analyzer_name: str, table: str, epoch: int, frame: pl.DataFrame) -> None:
    analyzer = all_analyzers()[analyzer_name]
    spec: TableSpec = analyzer.tables[table]
    write_artifact(artifact_path(run.artifacts_dir, table, epoch), tidy(frame, spec, run.variant, epoch), analyzer, table)


@pytest.fixture
def warehouse(tmp_path):
    return build_hand_made(tmp_path)


def build_hand_made(tmp_path):
    """Two runs with hand-set losses and artifacts of known answers (a knee at 1000, key
    frequencies 1 and 4, found by the embedding's gap in one run and by its neurons in the other,
    a 6:1 cos/sin imbalance, PR 144/84), indexed."""
    results = tmp_path / "results"
    grokker = make_run(results, "p13_seed1", 13, 1, knee_curve(1000, 1500),
                       lambda e: 1.0 if e >= 1300 else 0.3, lambda e: 1.0 if e >= 100 else 0.5, 3000)
    never = make_run(results, "p13_seed2", 13, 2, lambda e: 1.0, lambda e: 0.3, lambda e: 1.0 if e >= 100 else 0.5, 3000)
    # spectra with known participation ratio: s = (3, 1, 1, 1) -> PR = 12^2 / (81 + 3) = 144 / 84
    for run, rule in ((grokker, "embedding_gap"), (never, "neuron_clusters")):
        put(run, "singular_values", "singular_values", 0, pl.DataFrame(
            {"matrix": ["W_in"] * 4 + ["W_U"] * 2, "head": [-1] * 6, "index": [0, 1, 2, 3, 0, 1], "value": [3.0, 1, 1, 1, 2.0, 2.0]}))
        put(run, "embedding_fourier", "embedding_fourier", 0, pl.DataFrame(
            {"frequency": [f for f in range(1, 7) for _ in (0, 1)], "component": ["cos", "sin"] * 6,
             "value": [6.0, 1.0, 0.1, 0.1, 0.1, 0.1, 3.0, 3.0, 0.1, 0.1, 0.1, 0.1]}))
        put(run, "key_frequencies", "final_key_frequencies", None, pl.DataFrame(
            {"epoch": [0, 0], "frequency": [1, 4], "rule": [rule] * 2, "value": [37 ** 0.5, 18 ** 0.5]}))
        put(run, "neuron_freq", "neuron_best_freq", 0, pl.DataFrame(
            {"neuron": [0, 1, 2, 3], "frequency": [1, 1, 4, 2], "value": [0.9, 0.95, 0.5, 0.86]}))
    # the grokker's restricted loss falls from 1,000 to 2,000 (a change of course for the events), and
    # two inputs' outcomes and frequency split (key frequency 1 carries 4,5 of the logit, 4 carries 2)
    for epoch in range(0, 3000, 100):
        put(grokker, "progress", "progress", epoch, pl.DataFrame(
            {"measure": ["restricted_loss"], "value": [10 ** (1 - 3 * min(max(epoch - 1000, 0), 1000) / 1000)]}))
    for epoch, rank in ((0, 1.0), (100, 0.0)):
        put(grokker, "input_outcomes", "input_outcomes", epoch, pl.DataFrame(
            {"a": [0, 0] * 4, "b": [1, 2] * 4, "split": ["train", "test"] * 4,
             "measure": [m for m in ("correct_logit", "margin", "rank", "loss") for _ in (0, 1)],
             "value": [6.5, 6.5, 1.0, 1.0, rank, rank, 0.1, 0.1]}))
        put(grokker, "answer_frequencies", "answer_frequencies", epoch, pl.DataFrame(
            {"a": [0] * 8, "b": [1] * 4 + [2] * 4, "component": ["key", "key", "other", "constant"] * 2,
             "frequency": [1, 4, 0, 0] * 2, "value": [4.5, 2.0, 0.0, 0.0] * 2}))
    # the grokker's LLC of all weights: up from 10 to 150 by 400, creeping to its peak of 154 at 800,
    # down to 5 by 1,200; unsound (NaN) at 700, which no summary may read as a value
    for epoch in range(0, 3000, 100):
        value = hand_made_llc(epoch)
        put(grokker, "llc", "llc", epoch, pl.DataFrame(
            {"component": ["all", "all"], "statistic": ["llc", "diverged"],
             "value": [float("nan") if epoch == 700 else value, 1.0 if epoch == 700 else 0.0]}))
    db = tmp_path / "warehouse" / "tdw.duckdb"
    build_index(results, db)
    return results, db


def hand_made_llc(epoch: int) -> float:
    if epoch <= 400:
        return 10 + 140 * epoch / 400
    if epoch <= 800:
        return 150 + (epoch - 400) / 100
    return max(5.0, 154 - 149 * (epoch - 800) / 400)


def test_grokking_turn_on_a_hand_made_knee(warehouse):
    _, db = warehouse
    turn = query("select * from grokking_turn order by variant", db)
    g = turn.row(0, named=True)
    assert g["memorization_epoch"] == 100 and g["grok_epoch"] == 1300
    k = 3000 // 100  # smoothing half-window in epochs
    assert abs(g["turn_epoch"] - 1000) <= k, g
    assert g["turn_to_grok"] == 1300 - g["turn_epoch"]
    assert abs(g["cleanup_end_epoch"] - 1500) <= 2 * k
    never = turn.row(1, named=True)
    assert never["turn_epoch"] is None and never["grok_epoch"] is None and never["memorization_epoch"] == 100


def test_participation_ratio_and_gap_of_known_spectra(warehouse):
    _, db = warehouse
    pr = query("select * from participation_ratio where variant = 'p13_seed1' order by matrix", db)
    w_in = pr.filter(matrix="W_in").row(0, named=True)
    assert w_in["participation_ratio"] == pytest.approx(144 / 84)
    assert w_in["spectral_gap"] == pytest.approx(3.0) and w_in["gap_index"] == 1 and w_in["top_singular_value"] == 3.0
    assert pr.filter(matrix="W_U")["participation_ratio"][0] == pytest.approx(2.0)


def test_frequency_views(warehouse):
    import holoviews as hv
    import holoviews.plotting.bokeh  # the views set Bokeh options

    from dashboards.store import WarehouseStore
    from dashboards.views import get_view

    _, db = warehouse
    keys = query("select frequency from key_frequencies where variant = 'p13_seed1' order by frequency", db)
    assert keys["frequency"].to_list() == [1, 4]
    rules = query("select variant, key_frequency_rule from variant_summary order by variant", db).rows()
    assert rules == [("p13_seed1", "embedding_gap"), ("p13_seed2", "neuron_clusters")]
    store = WarehouseStore(db)
    try:  # the key frequencies' norms view says where the neurons named them (their norms need not stand apart)
        titles = [hv.Store.lookup_options("bokeh", get_view("frequency_norms").element(store, v), "plot").kwargs["title"]
                  for v in ("p13_seed1", "p13_seed2")]
    finally:
        store.close()
    assert titles == ["Key frequencies: embedding norm", "Key frequencies: embedding norm (keys by neuron clusters)"]
    balance = query("select frequency, imbalance from cos_sin_balance where variant = 'p13_seed1' and frequency in (1, 4) order by 1", db)
    assert balance["imbalance"].to_list() == pytest.approx([6.0, 1.0])
    top = query("select frequency from dominant_frequencies where variant = 'p13_seed1' and rank = 1", db)
    assert top["frequency"].to_list() == [1]
    spec = query("select * from neuron_specialization where variant = 'p13_seed1'", db).row(0, named=True)
    assert spec["specialized_fraction"] == 0.75 and spec["clusters"] == 2


def test_variant_summary_has_one_row_per_variant_with_unique_keys(warehouse):
    _, db = warehouse
    summary = query("select * from variant_summary", db)
    assert summary["variant"].to_list() == ["p13_seed1", "p13_seed2"]
    row = summary.row(0, named=True)
    assert row["key_frequencies"] == [1, 4] and row["key_frequency_count"] == 2
    assert row["pr_w_in_min"] == pytest.approx(144 / 84) and row["max_cos_sin_imbalance"] == pytest.approx(6.0)
    for view, keys in [("grokking_turn", "variant"), ("participation_ratio", "variant, epoch, matrix"),
                       ("dominant_frequencies", "variant, epoch, frequency"), ("neuron_specialization", "variant, epoch")]:
        dupes = query(f"select count(*) - count(distinct ({keys})) as d from {view}", db)["d"][0]
        nulls = query(f"select count(*) as n from {view} where variant is null", db)["n"][0]
        assert dupes == 0 and nulls == 0, view


def test_variant_summary_reads_the_llc_peak_and_its_first_collapse(warehouse):
    """Known answers on the hand-made LLC: the peak of the sound estimates (154 at 800; the NaN
    at 700 is not one), its collapse found where the planted fall begins, and NULLs for the run
    without an LLC."""
    _, db = warehouse
    rows = {r["variant"]: r for r in query("select * from variant_summary", db).iter_rows(named=True)}
    grokker, never = rows["p13_seed1"], rows["p13_seed2"]
    assert grokker["llc_peak"] == pytest.approx(154.0) and grokker["llc_peak_epoch"] == 800
    assert abs(grokker["llc_collapse_epoch"] - 800) <= 100
    assert never["llc_peak"] is None and never["llc_peak_epoch"] is None and never["llc_collapse_epoch"] is None


def test_sql_is_read_only_with_one_line_errors(warehouse):
    _, db = warehouse
    before = db.read_bytes()
    for sql, message in [
        ("delete from variants", "only read queries are allowed (SELECT, WITH, PIVOT, UNPIVOT, EXPLAIN); this is DELETE"),
        ("select * form variants", "syntax error at or near \"variants\" (line 1, column 15)"),
        ("select * from no_such_view", "Table with name no_such_view does not exist"),
        # DuckDB's hints for a mistyped name, on a second line of its message, are kept
        ("select * from variant_sumary", 'does not exist! Did you mean "variant_summary"?'),
        ("select turn_epok\nfrom variant_summary", 'not found in FROM clause! Candidate bindings: "turn_epoch"'),
        ("create table x as select 1", "this is CREATE"),
    ]:
        result = run_tdw("sql", "--db", str(db), sql)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert db.read_bytes() == before


def test_exports_for_papers(warehouse, tmp_path):
    _, db = warehouse
    latex = run_tdw("sql", "--db", str(db), "select variant, grok_epoch from grokking_turn order by 1", "--format", "latex", check=True).stdout
    assert latex.splitlines()[:4] == ["\\begin{tabular}{lr}", "\\toprule", "variant & grok\\_epoch \\\\", "\\midrule"]
    assert "p13\\_seed1 & 1300 \\\\" in latex and "p13\\_seed2 & -- \\\\" in latex and latex.rstrip().endswith("\\end{tabular}")
    out = tmp_path / "summary.parquet"
    run_tdw("sql", "--db", str(db), "select * from variant_summary", "--format", "parquet", "--out", str(out), check=True)
    assert pl.read_parquet(out).height == 2
    # with no --format, the file's suffix names it (a .csv held the terminal's grid)
    for name in ("turn.csv", "turn.parquet", "turn.tex", "turn.md", "turn.json"):
        run_tdw("sql", "--db", str(db), "select variant, grok_epoch from grokking_turn order by 1", "--out", str(tmp_path / name),
                check=True)
    assert pl.read_csv(tmp_path / "turn.csv").equals(pl.read_parquet(tmp_path / "turn.parquet"))
    assert pl.read_csv(tmp_path / "turn.csv").rows() == [("p13_seed1", 1300), ("p13_seed2", None)]
    assert (tmp_path / "turn.tex").read_text().startswith("\\begin{tabular}{lr}")
    assert (tmp_path / "turn.md").read_text().startswith("| variant | grok_epoch |")
    assert pl.read_json(tmp_path / "turn.json").height == 2
    csv = run_tdw("sql", "--db", str(db), "select variant, key_frequencies from variant_summary", "--format", "csv", check=True).stdout
    assert csv.splitlines()[1] == "p13_seed1,1;4"
    # a float keeps its integer digits (a median epoch), others 4 significant digits
    numbers = "select median(x)::double as epoch, 9999.5::double as edge, 0.273125::double as share, 1.4e-7::double as loss " \
              "from (values (14846), (14848)) t(x)"
    markdown = run_tdw("sql", "--db", str(db), numbers, "--format", "markdown", check=True).stdout
    assert markdown.splitlines()[2] == "| 14847 | 10000 | 0.2731 | 1.4e-07 |"


def test_a_result_wider_than_the_terminal_prints_one_block_per_row(warehouse, monkeypatch):
    _, db = warehouse
    monkeypatch.setenv("COLUMNS", "60")  # what shutil.get_terminal_size reads first
    wide = tdw_here("sql", "--db", str(db), "select * from variant_summary order by variant", check=True).stdout
    lines = wide.splitlines()
    assert lines[0].startswith("-[ row 1 ]") and lines[1].split() == ["variant", "|", "p13_seed1"]
    records: list[dict[str, str]] = []
    for line in lines:
        if line.startswith("-[ row "):
            records.append({})
        else:
            key, value = line.split("|", 1)
            records[-1][key.strip()] = value.strip()
    assert records[0]["key_frequencies"] == "[1, 4]" and records[0]["key_frequency_rule"] == "embedding_gap" and records[1]["grok_epoch"] == "null"  # seed 2 never groks
    assert len({line.index("|") for line in lines if "|" in line}) == 1  # the values in one column
    assert sum(line.startswith("-[ row ") for line in lines) == 2
    narrow = tdw_here("sql", "--db", str(db), "select variant from variant_summary order by variant", check=True).stdout
    assert narrow.startswith("shape: (2, 1)") and "│ p13_seed1 │" in narrow
    listed = tdw_here("sql", "--db", str(db), "select [9, 19, 36, 38, 41] as key_frequencies", check=True).stdout
    assert "[9, 19, 36, 38, 41]" in listed  # every element: polars' default showed "[9, 19, … 41]"
    empty = tdw_here("sql", "--db", str(db), "select * from variant_summary where false", check=True).stdout
    assert empty.startswith("(0 rows; columns: variant, family, p, seed,")
    monkeypatch.delenv("COLUMNS")  # piped, no terminal: the grid whole, one line per row, for grep and less -S
    piped = tdw_here("sql", "--db", str(db), "select * from variant_summary order by variant", check=True).stdout
    assert piped.startswith("shape: (2, 25)") and sum("p13_seed" in line for line in piped.splitlines()) == 2
    long = tdw_here("sql", "--db", str(db), "select repeat('ab', 60) || 'END' as method", check=True).stdout
    assert "ab" * 60 + "END" in long  # a long string whole (polars cut it at 60 characters with an ellipsis)


def test_incremental_index_and_reader_during_index(warehouse, tmp_path):
    results, db = warehouse
    assert build_index(results, db).rebuilt is False  # nothing changed: nothing done
    reader = duckdb.connect(str(db), read_only=True)
    assert reader.sql("select count(*) from variants").fetchall()[0][0] == 2
    make_run(results, "p13_seed3", 13, 3, knee_curve(500, 800), lambda e: 1.0 if e >= 700 else 0.3, lambda e: 1.0, 1000)
    errors = []

    def keep_reading():
        try:
            for _ in range(50):
                reader.sql("select count(*) from grokking_turn").fetchall()
        except Exception as error:  # noqa: BLE001 - any failure of the reader fails the test
            errors.append(error)

    thread = threading.Thread(target=keep_reading)
    thread.start()
    report = build_index(results, db)
    thread.join()
    assert errors == [] and report.rebuilt and report.changed == ["p13_seed3"]
    assert reader.sql("select count(*) from variants").fetchall()[0][0] == 2  # the old snapshot, intact
    reader.close()
    assert query("select count(*) as n from variants", db)["n"][0] == 3


def test_connect_gives_a_read_only_polars_friendly_connection(warehouse):
    import tdw

    _, db = warehouse
    con = tdw.connect(str(db))
    assert con.sql("select count(*) as n from variants").pl()["n"][0] == 2
    with pytest.raises(TdwError, match="only read queries are allowed"):
        con.execute("create table t as select 1")
    con.close()
    with pytest.raises(TdwError, match="no warehouse there"):
        tdw.connect(str(db) + ".missing")


def test_an_incremental_index_equals_a_full_build(warehouse, tmp_path):
    """The patched warehouse (a copy of the previous one with the changed variants' rows replaced
    and the by-variant layers recomputed for them alone) holds exactly what a build from scratch
    does, in every source and every model: a run added, a run changed (new checkpoints), a run gone."""
    results, db = warehouse
    make_run(results, "p13_seed3", 13, 3, knee_curve(500, 800), lambda e: 1.0 if e >= 700 else 0.3, lambda e: 1.0, 1000)
    assert build_index(results, db).changed == ["p13_seed3"]
    shutil.rmtree(results / "modular_addition" / "p13_seed2")
    shutil.rmtree(results / "modular_addition" / "p13_seed1")
    changed = make_run(results, "p13_seed1", 13, 1, knee_curve(300, 900), lambda e: 1.0 if e >= 600 else 0.2,
                       lambda e: 1.0, 1500)
    put(changed, "neuron_freq", "neuron_best_freq", 0, pl.DataFrame(
        {"neuron": [0, 1, 2, 3], "frequency": [3, 3, 3, 5], "value": [0.99, 0.7, 0.9, 0.95]}))
    report = build_index(results, db)
    assert report.rebuilt and report.patched and report.changed == ["p13_seed1"]
    assert_equals_a_full_build(results, db, tmp_path / "full")
    assert query("select variant from variants order by variant", db)["variant"].to_list() == ["p13_seed1", "p13_seed3"]


def assert_equals_a_full_build(results, db, folder) -> None:
    """Every source and model of `db` holds what a warehouse built from scratch (with the same
    catalog: the named probes) holds."""
    full = folder / "tdw.duckdb"
    folder.mkdir(parents=True)
    shutil.copyfile(catalog_path(db), catalog_path(full))
    build_index(results, full)
    relations = [m.name for m in read_models()] + ["src_runs", "src_losses", "src_checkpoints", "src_progress",
                                                   "src_neuron_best_freq", "src_singular_values", "catalog_probes"]
    for name in relations:
        patched = query(f"select * from {name} order by all", db)
        rebuilt = query(f"select * from {name} order by all", full)
        assert patched.drop("path", strict=False).equals(rebuilt.drop("path", strict=False)), name


def test_an_index_replaces_only_the_tables_that_changed_and_equals_a_full_build(warehouse, tmp_path):
    """A run whose one table was rewritten (as tracing one more input rewrites two tables of a
    run's twenty) is patched in that table alone, and the models reading it; the warehouse then
    equals a full build. A probe named in the catalog, and nothing else, is indexed too."""
    results, db = warehouse
    run = RunDir(results / "modular_addition" / "p13_seed1")
    put(run, "neuron_freq", "neuron_best_freq", 0, pl.DataFrame(
        {"neuron": [0, 1, 2, 3], "frequency": [2, 2, 2, 6], "value": [0.99, 0.7, 0.9, 0.95]}))
    report = build_index(results, db)
    assert report.patched and report.parts == {"p13_seed1": ["neuron_best_freq"]}
    assert "(1 new or changed: p13_seed1's neuron_best_freq)" in report.summary()
    models = read_models()  # recomputed: the tables that read neuron_best_freq, directly or not, and only those
    readers = {m.name: m.refresh for m in models if m.materialized == "table"
               and "neuron_best_freq" in {u.name for u in upstream(m.name, models)}}
    assert {"neuron_clusters", "neuron_specialization", "variant_summary"} <= set(readers)
    assert report.refreshed == {name: ["p13_seed1"] if refresh == "by_variant" else ["p13_seed1", "p13_seed2"]
                                for name, refresh in readers.items()}
    assert_equals_a_full_build(results, db, tmp_path / "full")
    assert query("select frequency, neurons from neuron_clusters where variant = 'p13_seed1' and epoch = 0 "
                 "order by frequency", db).rows() == [(2, 3), (6, 1)]
    assert tdw_here("probe", "add", "diagonal", "a == b", "--db", str(db)).returncode == 0
    named = build_index(results, db)
    assert named.rebuilt and named.patched and named.parts == {}
    assert query("select probe, count(*) as n from probe_pairs group by probe", db).rows() == [("diagonal", 2 * 13)]
    assert_equals_a_full_build(results, db, tmp_path / "full_with_probe")
    # a run's artifacts changed again, the probe still named: the patch keeps both runs' probe
    # pairs, drawing no split (torch); in a fresh process, and still equal to a full build
    put(run, "neuron_freq", "neuron_best_freq", 0, pl.DataFrame(
        {"neuron": [0, 1, 2, 3], "frequency": [2, 6, 6, 6], "value": [0.99, 0.7, 0.9, 0.95]}))
    code = ("import sys; from tdw.warehouse import build_index; "
            f"report = build_index({str(results)!r}, {str(db)!r}); print(report.patched, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"], done.stdout + done.stderr
    assert_equals_a_full_build(results, db, tmp_path / "full_after_probe")


def test_a_point_lookup_in_a_parquet_backed_table_opens_one_file_and_reads_its_rows(study):
    """neuron_maps and attention stay in Parquet, one file per checkpoint. Each run's view branch
    matches a row's epoch to its file's name, from which DuckDB prunes files: a lookup of one epoch
    opens that file alone (the dashboard's neuron map on the published run: 100 -> 33 ms) and
    returns exactly what the file holds; a scan still reads every file."""
    from tdw.warehouse.query import open_readonly

    con = open_readonly(study)
    try:
        for table, where in (("neuron_maps", "neuron = 5"), ("attention", "head = 1 and source = 'a'")):
            epochs = [row[0] for row in con.execute(
                f"select distinct epoch from {table} where variant = 'p13_seed3' order by epoch").fetchall()]
            epoch = epochs[len(epochs) // 2]
            lookup = f"select * from {table} where variant = 'p13_seed3' and epoch = {epoch} and {where}"
            plan = con.sql("explain analyze " + lookup).fetchall()[0][1]
            assert f"Scanning Files: 1/{len(epochs)}" in plan, (table, plan)
            path = study.parent.parent / "results" / "modular_addition" / "p13_seed3" / "artifacts" / table / f"epoch_{epoch:05d}.parquet"
            direct = pl.read_parquet(path).filter(pl.sql_expr(where)).sort(pl.all())
            got = con.sql(lookup).pl().select(direct.columns).sort(pl.all())
            assert got.height > 0 and got.equals(direct.cast(got.schema)), table
            total = con.execute(f"select count(*) from {table} where variant = 'p13_seed3'").fetchone()[0]
            assert total == sum(pl.read_parquet(path.parent / f"epoch_{e:05d}.parquet").height for e in epochs)
    finally:
        con.close()


def test_indexing_imports_no_torch(warehouse):
    """`tdw index` reads runs and never builds a model, so it imports neither TransformerLens nor
    torch (1.6 s each of a no-op index): families are looked up by their own module, the hooked
    models are imported where a model is built, and the modules declaring what the warehouse reads
    name torch through `tdw.deferred_imports`. In a fresh process: a full build, then every
    family's and every artifact table's declarations, which a run of any family would read."""
    results, db = warehouse
    code = ("import sys; from tdw.warehouse import build_index; "
            f"report = build_index({str(results)!r}, {str(db)!r}, force=True); "
            "from tdw.families import family_names, get_family; "
            "from tdw.warehouse.sources import artifact_tables, replaced_tables; "
            "hooks = [get_family(name).hooks for name in family_names()]; "
            "tables = artifact_tables(); replaced_tables(); "
            "print(report.rebuilt, len(hooks), 'neuron_freq' in tables, 'torch' in sys.modules, "
            "'transformer_lens' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "2", "True", "False", "False"], done.stdout + done.stderr


@pytest.mark.parametrize("command", [["list"], ["probe", "list"], ["verify"], ["sql", "select count(*) from variants"], ["index"]])
def test_the_light_commands_import_no_torch(warehouse, command):
    """Listing runs and probes, verifying files and querying the warehouse make no tensors, so
    they do not import torch (0.8 s of every such command: `tdw list` 1.31 -> 0.22 s, `tdw verify`
    of the published run 2.2 -> 1.1 s). In a fresh process, as the CLI runs them; each must work.

    Nor do they go through Arrow's dataset layer (`pq.read_table`), whose thread pools, torn down
    at exit beside polars, aborted about one such process in eight after it had answered (`tdw
    verify`: 4 of about 300, run three at a time; `tdw.verify.verify_losses`)."""
    results, db = warehouse
    run = next(results.glob("*/*"))
    where = {"list": ["--results", str(results)], "probe": ["--db", str(db)], "verify": [str(run)], "sql": ["--db", str(db)],
             "index": ["--results", str(results), "--db", str(db), "--force"]}
    argv = ["tdw", *command, *where[command[0]]]
    code = ("import runpy, sys\n"
            f"sys.argv = {argv!r}\n"
            "try:\n    runpy.run_module('tdw.cli', run_name='__main__')\n"
            "except SystemExit as done:\n    print('exit', done.code)\n"
            "print('torch imported:', 'torch' in sys.modules)\n"
            "print('Arrow datasets imported:', 'pyarrow._dataset' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-3:] == ["exit 0", "torch imported: False", "Arrow datasets imported: False"], \
        done.stdout + done.stderr


@pytest.mark.parametrize("checkpoints", [(0,), (0, 59), (0, 30, 59)])
def test_a_run_with_few_checkpoints_is_analyzed_and_indexed_whole(tmp_path, checkpoints):
    """A short run's every analyzer and every view: with 2 checkpoints the trajectory's PCA spans
    one direction and writes no pc3, and indexing such runs alone failed in trajectory_loops (a
    polars ColumnNotFoundError) and wrote no warehouse. Now its summary row is there, and it has no
    loop where it has no PC2/PC3 plane."""
    from tdw.analysis.pipeline import AnalysisPipeline
    from tdw.training.trainer import train

    config = tiny_config(num_epochs=checkpoints[-1] + 1, checkpoint_epochs=checkpoints)
    run = train(config, tmp_path / "results", device="cpu", progress=False)
    AnalysisPipeline(run.path).run(progress=False)
    db = tmp_path / "warehouse" / "tdw.duckdb"
    build_index(tmp_path / "results", db)
    assert query("select variant from variant_summary", db)["variant"].to_list() == [run.variant]
    planes = query("select count(distinct epoch) as n from trajectory where component = 'pc3'", db).item()
    loops = query("select points from trajectory_loops where basis = 'own'", db)["points"].to_list()
    assert (planes, sorted(set(loops))) == ((0, []) if len(checkpoints) < 3 else (3, [3]))  # a row per group
