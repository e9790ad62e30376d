"""tdw."""


def connect(db: str = "warehouse/tdw.duckdb"):
    """A read-only DuckDB connection to the warehouse; `.sql(q).pl()` gives Polars."""
    from tdw.warehouse.query import connect as _connect

    return _connect(db)


def query(sql: str, db: str = "warehouse/tdw.duckdb"):
    """One read-only query as a Polars DataFrame."""
    from tdw.warehouse.query import query as _query

    return _query(sql, db)


def add_probe(name: str, spec: str, db: str = "warehouse/tdw.duckdb", replace: bool = False) -> None:
    """Name a set of inputs (tdw/probes.py: grid, train, test, sample:N, "4+29,17+3", "a < b") in
    the catalog beside `db`; `tdw index` resolves it per run into `probe_pairs`."""
    from tdw.probes import check_name, parse_probe
    from tdw.warehouse.catalog import Catalog, catalog_path

    check_name(name)
    parse_probe(spec)
    catalog = Catalog(catalog_path(db))
    try:
        catalog.add_probe(name, spec.strip(), replace=replace)
    finally:
        catalog.dispose()


def list_probes(db: str = "warehouse/tdw.duckdb") -> dict[str, str]:
    """The named probes, {name: spec}."""
    from tdw.warehouse.catalog import named_probes

    return named_probes(db)


def intervene(run: str, epochs: list[int], probe: str = "grid", db: str = "warehouse/tdw.duckdb", **change):
    """Apply one intervention (tdw/analysis/interventions.py: frequency=K with where= and component=,
    neurons=(...), or head=H; gain=) at `epochs` over a probe's inputs; `tdw index` brings the
    results into the warehouse (`intervention_effects`). Returns the files written and a summary."""
    from tdw.analysis.interventions import Intervention, run_intervention
    from tdw.probes import resolve_probe

    return run_intervention(run, Intervention(**change), epochs, resolve_probe(probe, list_probes(db)))


def fit_trajectory_basis(name: str, variants: list[str] | None = None, results: str = "results"):
    """Fit the shared trajectory basis `name` (one PCA of several same-shape runs' parameter
    trajectories) on `variants`, or refit it on its members; `tdw index` then puts each run's
    coordinates in `trajectory_basis` and its loop measures in `trajectory_loops`."""
    from tdw.analysis.shared_basis import check_name, fit_shared_basis, resolve_members

    return fit_shared_basis(check_name(name), resolve_members(results, name, variants), results)
