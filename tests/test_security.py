"""User SQL reads the warehouse and nothing else: every file-read and file-write form a probe found,
through `tdw sql` and the notebook connection, on a real warehouse. Afterwards the warehouse, the
catalog and the run's files are byte for byte what they were, and no file appeared anywhere.
(The dashboard's SQL page gets the same attacks in chromium: tests/test_dashboard.py.)"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import run_tdw, tiny_config

import tdw
from tdw.errors import TdwError
from tdw.run_dir import LOSS_SCHEMA, RunDir
from tdw.warehouse import build_index, query


def tree_digest(*folders: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


@pytest.fixture
def warehouse(tmp_path):
    results = tmp_path / "results"
    config = tiny_config(num_epochs=10, checkpoint_epochs=(0,))
    run = RunDir.for_config(results, config)
    run.path.mkdir(parents=True)
    run.write_config(config)
    run.update_metadata(status="complete")
    rows = [(config.name, e, split, 1.0, 0.5) for e in range(10) for split in ("train", "test")]
    run.write_losses(pl.DataFrame(rows, schema=LOSS_SCHEMA, orient="row"))
    (run.artifacts_dir / "progress").mkdir(parents=True)
    db = tmp_path / "warehouse" / "tdw.duckdb"
    build_index(results, db)
    return db, run, tmp_path


def attacks(run: RunDir, outside: Path) -> list[str]:
    inside = run.artifacts_dir / "progress" / "planted.parquet"
    return [
        # writes
        f"explain analyze copy (select 42 as x) to '{outside / 'x.csv'}'",
        f"EXPLAIN ANALYZE COPY (select 42 as x) TO '{outside / 'x2.csv'}' (format csv)",
        f"/* a comment first */ explain analyze copy (select 1) to '{outside / 'x3.csv'}'",
        f"copy (select 42 as x) to '{inside}'",
        f"copy (select * from variants) to '{outside / 'v.parquet'}' (format parquet)",
        f"export database '{outside / 'dump'}'",
        f"attach '{outside / 'new.duckdb'}' as other",
        f"select 1; copy (select 1) to '{outside / 'x4.csv'}'",
        "create table stolen as select 1",
        "drop table src_runs",
        "insert into src_runs select * from src_runs",
        "install httpfs", "load httpfs", "set enable_external_access = true", "pragma enable_profiling",
        "checkpoint", "use memory",
        f"select * from query('copy (select 1) to ''{outside / 'x5.csv'}''')",
        # reads
        "select * from read_csv('/etc/passwd')",
        "select * from read_text('/etc/passwd')",
        "select * from read_blob('/etc/hostname')",
        "select * from glob('/root/**')",
        "select * from read_text('/proc/self/environ')",
        "select * from '/etc/passwd'",
        f"select * from read_text('{run.config_path}')",
        f"select * from read_text('{run.path.parent.parent.parent / 'warehouse' / 'catalog.sqlite'}')",
        "select * from read_csv('https://example.com/x.csv')",
        f"select * from sqlite_scan('{outside / 'a.db'}', 't')",
    ]


def test_sql_attacks_through_the_cli_are_refused_and_change_nothing(warehouse):
    db, run, root = warehouse
    outside = root / "outside"
    outside.mkdir()
    before = tree_digest(db.parent, run.path)
    for sql in attacks(run, outside):
        result = run_tdw("sql", "--db", str(db), sql)
        assert result.returncode == 2, (sql, result.stdout)
        assert len(result.stderr.strip().splitlines()) == 1, (sql, result.stderr)
        assert "root:" not in result.stdout + result.stderr
    assert tree_digest(db.parent, run.path) == before
    assert list(outside.iterdir()) == []


def test_the_notebook_connection_is_sandboxed_too(warehouse):
    db, run, root = warehouse
    before = tree_digest(db.parent, run.path)
    with tdw.connect(str(db)) as con:
        assert con.sql("select count(*) as n from variants").pl()["n"].to_list() == [1]
        for sql in attacks(run, root):
            with pytest.raises((TdwError, duckdb.Error)):
                con.sql(sql).pl()
    assert tdw.query("select count(*) as n from variants", str(db))["n"].to_list() == [1]
    for sql in attacks(run, root):  # the notebook's one-query helper
        with pytest.raises((TdwError, duckdb.Error)):
            tdw.query(sql, str(db))
    assert tree_digest(db.parent, run.path) == before
    assert not (root / "x.csv").exists()


def test_read_queries_still_work_pivot_included(warehouse):
    db, _, _ = warehouse
    pivot = query("pivot (select epoch, split, loss from losses where epoch < 2) on split using first(loss) order by epoch", db)
    assert pivot.columns == ["epoch", "test", "train"] and pivot.height == 2
    assert query("unpivot (select 1 as a, 2 as b) on a, b into name k value v", db).height == 2
    assert query("explain select * from variants", db).height == 1
    assert query("from variants select variant", db)["variant"].to_list() == ["p13_seed3"]
    assert query("summarize losses", db).height == 5
