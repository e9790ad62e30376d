"""The dashboard's only door to data: named SQL queries over the warehouse views.

One long-lived sandboxed read-only DuckDB connection per store (`open_readonly`: the warehouse and
nothing else on the machine; DuckDB caches what it has read); when
`tdw index` swaps a new warehouse file in, the next query notices the new inode and reopens, so
results of finished jobs appear without restarting the server. Query results are cached per
warehouse generation: moving the epoch back and forth never queries twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from tdw.errors import TdwError
from tdw.warehouse.query import one_line, open_readonly, query

CACHE_SIZE = 512


class WarehouseStore:
    def __init__(self, db: str | Path, results: str | Path = "results") -> None:
        self.db = Path(db)
        self.results = Path(results)  # where jobs launched from the dashboard write their runs
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._generation: tuple[int, int] | None = None
        self._cache: OrderedDict[tuple, pl.DataFrame] = OrderedDict()

    # --- plumbing ------------------------------------------------------------------------
    def generation(self) -> tuple[int, int] | None:
        try:
            stat = self.db.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns)

    def _connection(self) -> duckdb.DuckDBPyConnection:
        generation = self.generation()
        if generation is None:
            raise TdwError(f"--db {self.db}: no warehouse there; run `tdw index` first")
        if self._con is None or generation != self._generation:
            if self._con is not None:
                self._con.close()
            self._con = open_readonly(self.db)
            self._generation = generation
            self._cache.clear()
        return self._con

    def frame(self, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
        """Run a named query of this module (trusted SQL, bound parameters), cached."""
        with self._lock:
            con = self._connection()
            key = (sql, tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in (params or {}).items())))
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            try:
                result = con.sql(sql, params=params or None).pl()
            except duckdb.Error as error:  # e.g. a file the warehouse lists is gone: the view says so
                raise TdwError(one_line(error)) from None
            # plotting libraries expect 64-bit numbers (Bokeh's bar code breaks on int16)
            result = result.with_columns(
                pl.col(pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16).cast(pl.Int64), pl.col(pl.Float32).cast(pl.Float64))
            self._cache[key] = result
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return result

    def user_query(self, sql: str) -> pl.DataFrame:
        """A query typed by the user: read-only checks and one-line errors, as `tdw sql`."""
        return query(sql, self.db)

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    # --- variants and epochs -------------------------------------------------------------
    def variant_summary(self) -> pl.DataFrame:
        return self.frame("select * from variant_summary")

    def variant_names(self) -> list[str]:
        return self.frame("select variant from variants order by p, seed, variant")["variant"].to_list()

    def variant(self, variant: str) -> dict[str, Any]:
        rows = self.frame("select * from variants where variant = $v", {"v": variant}).to_dicts()
        return rows[0] if rows else {}

    def checkpoint_epochs(self, variant: str) -> list[int]:
        return self.frame("select epoch from checkpoints where variant = $v order by epoch", {"v": variant})["epoch"].to_list()

    def turn(self, variant: str) -> dict[str, Any]:
        rows = self.frame("select * from grokking_turn where variant = $v", {"v": variant}).to_dicts()
        return rows[0] if rows else {}

    # --- over epochs ---------------------------------------------------------------------
    def losses(self, variant: str) -> pl.DataFrame:
        return self.frame("select epoch, split, loss, accuracy from losses where variant = $v order by split, epoch", {"v": variant})

    def embedding_norms(self, variant: str) -> pl.DataFrame:
        return self.frame("select epoch, frequency, norm, rank from dominant_frequencies where variant = $v "
                          "order by epoch, frequency", {"v": variant})

    def key_frequencies(self, variant: str) -> pl.DataFrame:
        """The variant's key frequencies and the rule that found them (one row each)."""
        return self.frame("select frequency, rule from key_frequencies where variant = $v order by frequency", {"v": variant})

    def specialization(self, variant: str) -> pl.DataFrame:
        return self.frame("select * from neuron_specialization where variant = $v order by epoch", {"v": variant})

    def participation(self, variant: str) -> pl.DataFrame:
        return self.frame("select epoch, matrix, participation_ratio, spectral_gap, gap_index, top_singular_value "
                          "from participation_ratio where variant = $v order by matrix, epoch", {"v": variant})

    def coarseness(self, variant: str) -> pl.DataFrame:
        return self.frame("select epoch, unit_kind, metric, avg(value) as value from coarseness where variant = $v "
                          "group by all order by unit_kind, metric, epoch", {"v": variant})

    def trajectory(self, variant: str, group: str = "all") -> pl.DataFrame:
        return self.frame(
            "pivot (select epoch, component, value from trajectory where variant = $v and \"group\" = $g) "
            "on component in ('pc1', 'pc2', 'pc3', 'velocity') using first(value) order by epoch",
            {"v": variant, "g": group})

    def bases(self, variants: list[str]) -> list[str]:
        """The shared trajectory bases any of `variants` was fitted into (trajectory_basis)."""
        return self.frame("select distinct basis from trajectory_basis where variant in (select unnest($vs)) order by basis",
                          {"vs": list(variants)})["basis"].to_list()

    # --- many variants at once (the Compare page: one query, not one per variant) ------------
    def losses_of(self, variants: list[str]) -> pl.DataFrame:
        return self.frame("select variant, epoch, split, loss, accuracy from losses where variant in (select unnest($vs)) "
                          "order by variant, split, epoch", {"vs": list(variants)})

    def participation_of(self, variants: list[str], matrix: str) -> pl.DataFrame:
        return self.frame("select variant, epoch, participation_ratio from participation_ratio where matrix = $m "
                          "and variant in (select unnest($vs)) order by variant, epoch", {"vs": list(variants), "m": matrix})

    def cluster_growth(self, variant: str) -> pl.DataFrame:
        """Specialized neurons per frequency at every checkpoint (0 where none), for the frequencies
        that ever hold a cluster (frequency_lifecycle), with each one's status there."""
        return self.frame(
            "with epochs as (select distinct epoch from neuron_clusters where variant = $v) "
            "select e.epoch, f.frequency, f.status, f.cluster_share, "
            "coalesce(c.specialized_neurons, 0) as specialized_neurons "
            "from frequency_lifecycle f cross join epochs e left join neuron_clusters c "
            "on c.variant = f.variant and c.epoch = e.epoch and c.frequency = f.frequency "
            "where f.variant = $v order by f.first_epoch, f.frequency, e.epoch", {"v": variant})

    def specialization_of(self, variants: list[str]) -> pl.DataFrame:
        return self.frame("select variant, epoch, specialized_fraction from neuron_specialization "
                          "where variant in (select unnest($vs)) order by variant, epoch", {"vs": list(variants)})

    def graduation_curve_of(self, variants: list[str]) -> pl.DataFrame:
        """The share of each split's inputs answered right for good, by checkpoint (graduation_curve)."""
        return self.frame("select variant, epoch, split, graduated_fraction from graduation_curve "
                          "where variant in (select unnest($vs)) order by variant, split, epoch", {"vs": list(variants)})

    def llc_of(self, variants: list[str]) -> pl.DataFrame:
        """The LLC of all weights where it was estimated and sound, by checkpoint (llc)."""
        return self.frame("select variant, epoch, value from llc where component = 'all' and statistic = 'llc' "
                          "and not isnan(value) and variant in (select unnest($vs)) order by variant, epoch",
                          {"vs": list(variants)})

    def velocity_of(self, variants: list[str]) -> pl.DataFrame:
        return self.frame("select variant, epoch, value as velocity from trajectory where \"group\" = 'all' and "
                          "component = 'velocity' and variant in (select unnest($vs)) order by variant, epoch",
                          {"vs": list(variants)})

    def turns(self, variants: list[str]) -> dict[str, int]:
        """Each variant's turn epoch; a variant that never turned is absent."""
        frame = self.frame("select variant, turn_epoch from grokking_turn where turn_epoch is not null "
                           "and variant in (select unnest($vs))", {"vs": list(variants)})
        return dict(frame.iter_rows())

    def basis_trajectories(self, variants: list[str], basis: str, group: str = "all") -> pl.DataFrame:
        """pc2 and pc3 per variant and epoch, in a shared basis or (basis 'own') each run's own PCA."""
        table, where = ("trajectory", "") if basis == "own" else ("trajectory_basis", "basis = $b and ")
        return self.frame(
            f"pivot (select variant, epoch, component, value from {table} where {where}\"group\" = $g "
            "and component in ('pc2', 'pc3') and variant in (select unnest($vs))) "
            "on component in ('pc2', 'pc3') using first(value) order by variant, epoch",
            {"vs": list(variants), "g": group, **({} if basis == "own" else {"b": basis})})

    def first_events(self, variants: list[str]) -> pl.DataFrame:
        """Each variant's first event of each metric and kind, against its turn (event_order)."""
        return self.frame("select variant, metric, kind, min(epoch) as epoch, min(epochs_from_turn) as epochs_from_turn "
                          "from event_order where variant in (select unnest($vs)) group by all order by metric, kind, variant",
                          {"vs": list(variants)})

    def flatness(self, variant: str) -> pl.DataFrame:
        return self.frame("select epoch, radius, statistic, value from flatness where variant = $v "
                          "order by radius, statistic, epoch", {"v": variant})

    def llc(self, variant: str) -> pl.DataFrame:
        """The local learning coefficient per component at the checkpoints it was estimated at."""
        return self.frame("select epoch, component, value from llc where variant = $v and statistic = 'llc' "
                          "and not isnan(value) order by component, epoch", {"v": variant})

    def llc_sampler(self, variant: str) -> pl.DataFrame:
        """How each checkpoint's LLC was sampled: its SGLD step (null before estimates recorded one)
        and whether any component's chains were unsound (its llc NaN)."""
        return self.frame("select epoch, max(value) filter (where statistic = 'step_size') as step_size, "
                          "coalesce(max(value) filter (where statistic = 'diverged'), 0) > 0 as unsound "
                          "from llc where variant = $v group by epoch order by epoch", {"v": variant})

    def progress(self, variant: str) -> pl.DataFrame:
        return self.frame("select epoch, measure, value from progress where variant = $v order by measure, epoch", {"v": variant})

    # --- per input (the Trace section) ---------------------------------------------------
    def graduation(self, variant: str) -> pl.DataFrame:
        return self.frame("select a, b, split, graduation_epoch, first_correct_epoch from input_graduation "
                          "where variant = $v order by a, b", {"v": variant})

    def outcome_map(self, variant: str, epoch: int, measure: str = "margin") -> pl.DataFrame:
        return self.frame("select a, b, split, value from input_outcomes where variant = $v and epoch = $e "
                          "and measure = $m order by a, b", {"v": variant, "e": epoch, "m": measure})

    def pair_outcomes(self, variant: str, a: int, b: int) -> pl.DataFrame:
        return self.frame("select epoch, split, measure, value from input_outcomes where variant = $v and a = $a "
                          "and b = $b order by measure, epoch", {"v": variant, "a": a, "b": b})

    def pair_lens(self, variant: str, a: int, b: int, measure: str = "margin") -> pl.DataFrame:
        return self.frame("select epoch, layer, value from logit_lens where variant = $v and a = $a and b = $b "
                          "and measure = $m order by layer, epoch", {"v": variant, "a": a, "b": b, "m": measure})

    def trace_probe(self, variant: str) -> str:
        """The probe the run's per-input traces cover (its spec; "auto" where none was given)."""
        rows = self.frame("select trace_probe from traced_probes where variant = $v", {"v": variant})["trace_probe"]
        return rows[0] if len(rows) and rows[0] else "auto"

    def traced_inputs(self, variant: str) -> int:
        """How many inputs the run's traces cover (its traced probe: the same at every checkpoint,
        so counted at the last, one file read instead of every checkpoint's)."""
        return self.frame("select count(*) as n from (select distinct a, b from answer_frequencies where variant = $v "
                          "and epoch = (select max(epoch) from answer_frequencies where variant = $v))", {"v": variant})["n"][0]

    def traces(self, variant: str, a: int, b: int) -> bool:
        """Whether the run's per-input traces cover a+b (its frequency split has rows for it)."""
        return not self.pair_frequencies(variant, a, b).is_empty()

    def first_traced_pair(self, variant: str) -> str | None:
        """The run's first traced input in grid order, "a+b" (None: it traces none), at its last
        checkpoint as `traced_inputs` counts them."""
        rows = self.frame("select a, b from answer_frequencies where variant = $v and epoch = (select max(epoch) from "
                          "answer_frequencies where variant = $v) order by a, b limit 1", {"v": variant})
        return f"{rows['a'][0]}+{rows['b'][0]}" if rows.height else None

    def pair_frequencies(self, variant: str, a: int, b: int) -> pl.DataFrame:
        return self.frame("select epoch, component, frequency, value from answer_frequencies where variant = $v "
                          "and a = $a and b = $b order by component, frequency, epoch", {"v": variant, "a": a, "b": b})

    def intervention_effects(self, variant: str, epoch: int) -> pl.DataFrame:
        """The effects of the interventions recorded at the checkpoint nearest to `epoch` (the
        first intervention by name when there are several)."""
        return self.frame(
            "with nearest as (select epoch, intervention from intervention_summary where variant = $v "
            "order by abs(epoch - $e), epoch, intervention limit 1) "
            "select e.epoch, e.intervention, e.a, e.b, e.split, e.margin - e.baseline_margin as margin_change, "
            "e.broken, e.fixed from intervention_effects e join nearest using (epoch, intervention) "
            "where e.variant = $v order by a, b", {"v": variant, "e": epoch})

    # --- events and phases (sql/35_events) -------------------------------------------------
    def events(self, variant: str) -> pl.DataFrame:
        return self.frame("select metric, kind, epoch, magnitude, epochs_from_turn from event_order where variant = $v "
                          "order by metric, epoch", {"v": variant})

    def event_series(self) -> list[str]:
        """Every series with an event in any run of the warehouse, in name order."""
        return self.frame("select distinct metric from event_order order by metric")["metric"].to_list()

    def phases(self, variant: str) -> pl.DataFrame:
        return self.frame("select phase, phase_index, start_epoch, end_epoch from training_phases where variant = $v "
                          "order by phase_index", {"v": variant})

    def head_frequencies(self, variant: str) -> pl.DataFrame:
        return self.frame("select epoch, head, dominant_frequency, share from attention_head_frequency "
                          "where variant = $v order by head, epoch", {"v": variant})

    # --- at one epoch --------------------------------------------------------------------
    def neuron_best(self, variant: str, epoch: int) -> pl.DataFrame:
        return self.frame("select neuron, frequency, value from neuron_best_freq where variant = $v and epoch = $e "
                          "order by frequency, value desc, neuron", {"v": variant, "e": epoch})

    def neuron_freq(self, variant: str, epoch: int) -> pl.DataFrame:
        return self.frame("select neuron, frequency, value from neuron_freq where variant = $v and epoch = $e "
                          "order by neuron, frequency", {"v": variant, "e": epoch})

    def neuron_map(self, variant: str, epoch: int, neuron: int) -> np.ndarray | None:
        """The neuron's activation over the (a, b) grid, dequantized."""
        frame = self.frame("select lo, hi, codes from neuron_maps where variant = $v and epoch = $e and neuron = $n",
                           {"v": variant, "e": epoch, "n": neuron})
        if frame.is_empty():
            return None
        codes = np.frombuffer(frame["codes"][0], dtype=np.uint8).astype(np.float32)
        lo, hi = frame["lo"][0], frame["hi"][0]
        p = round(np.sqrt(codes.size))
        return (lo + codes / 255.0 * (hi - lo)).reshape(p, p)

    def attention_map(self, variant: str, epoch: int, head: int, source: str = "a") -> pl.DataFrame:
        return self.frame("select a, b, value from attention where variant = $v and epoch = $e and head = $h "
                          "and source = $s order by a, b", {"v": variant, "e": epoch, "h": head, "s": source})

    def spectrum(self, variant: str, epoch: int) -> pl.DataFrame:
        return self.frame("select matrix, index, value from singular_values where variant = $v and epoch = $e "
                          "and head = -1 order by matrix, index", {"v": variant, "e": epoch})

    def spectrum_range(self, variant: str) -> tuple[float | None, float | None]:
        """Smallest positive and largest singular value over the variant's run (a fixed axis)."""
        row = self.frame("select min(value) filter (where value > 0) as low, max(value) as high from singular_values "
                         "where variant = $v and head = -1", {"v": variant}).row(0)
        return row[0], row[1]

    def jobs(self, limit: int = 30) -> list[dict]:
        """Live job state from the catalog (SQLite, written by the workers as they run)."""
        from tdw.warehouse.catalog import existing_catalog

        catalog = existing_catalog(self.db)
        if catalog is None:
            return []
        try:
            return catalog.jobs(limit)
        finally:
            catalog.dispose()

    def analysis_coverage(self) -> pl.DataFrame:
        """Per variant and analyzer: checkpoints analyzed out of checkpoints trained."""
        from tdw.analyzers import all_analyzers

        parts = [f"select '{name}' as analyzer, variant, count(distinct epoch) as analyzed from {next(iter(a.tables))} group by variant"
                 for name, a in all_analyzers().items() if a.requires != "run" and a.default]
        return self.frame(
            "with done as (" + " union all ".join(parts) + "), ckpt as (select variant, count(*) as checkpoints from checkpoints group by variant) "
            "select v.variant, v.path, a.analyzer, coalesce(d.analyzed, 0) as analyzed, c.checkpoints "
            "from variants v join ckpt c using (variant) cross join (select distinct analyzer from done) a "
            "left join done d on d.variant = v.variant and d.analyzer = a.analyzer order by v.variant, a.analyzer")

    def counts(self, variant: str) -> dict[str, int]:
        """Neurons and heads of the variant's model, for the sidebar's bounds."""
        info = self.variant(variant)
        return {"neurons": int(info.get("d_mlp") or 0), "heads": int(info.get("n_heads") or 0)}


_shared: dict[tuple[Path, Path], WarehouseStore] = {}
_shared_lock = threading.Lock()


def shared_store(db: str | Path, results: str | Path = "results") -> WarehouseStore:
    """One store per warehouse for every session of a server: the sessions share its connection
    and its query cache (the warehouse is read-only to them), so the second researcher to open a
    page, or the same one reloading it, runs no query the first one already ran."""
    key = (Path(db).resolve(), Path(results).resolve())
    with _shared_lock:
        if key not in _shared:
            _shared[key] = WarehouseStore(db, results)
        return _shared[key]
