"""The grokking turn of any loss curve, computed by the warehouse's own SQL (`sql/`), in memory.

The turn has one definition, `sql/30_marts/grokking_turn.sql`. This module runs that file and the
files it reads (found from their references, `sql_models.upstream`) over a losses frame in an
in-memory DuckDB, so a notebook, a test or the turn
benchmark asks exactly what `tdw index` asks, without a warehouse on disk.
"""

from __future__ import annotations

import duckdb
import polars as pl

from tdw.run_dir import LOSS_SCHEMA
from tdw.warehouse.sql_models import upstream


def grokking_turn(losses: pl.DataFrame, window_scale: float = 1.0) -> pl.DataFrame:
    """`grokking_turn` rows (one per variant) for a frame with the columns of `losses.parquet`.

    `window_scale` multiplies the smoothing window (1 = what `tdw index` uses), to check that the
    turn does not hang on that choice.
    """
    frame = losses.select(list(LOSS_SCHEMA)).cast(LOSS_SCHEMA)
    con = duckdb.connect()
    try:
        con.register("losses_frame", frame.to_arrow())
        con.execute("create table src_losses as select * from losses_frame")
        con.execute(f"set variable turn_window_divisor = {200 / window_scale}")
        for model in upstream("grokking_turn"):  # the view and what it reads, found from the files
            con.execute(model.text)
        return con.sql("select * from grokking_turn order by variant").pl()
    finally:
        con.close()
