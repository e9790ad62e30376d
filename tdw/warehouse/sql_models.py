"""The SQL project in `sql/`, read as data: one model (view) per file, in numbered layer folders.

Each file creates one view and declares, in its header, the grain of its rows (`-- grain: variant,
epoch, matrix`): the columns that identify a row, which the tests check are unique and non-null on
real warehouses. The order in which views are created comes from what each one reads (its `from`
and `join` clauses), not from file names; a view may read its own layer or lower ones, never a
higher one. How a layer is kept in the warehouse (`view`: computed when read, `table`: computed
once at index time), and how a table layer is brought up to date when some runs changed
(`by_variant`: only the changed variants' rows are recomputed, since a row of these layers depends
on its own variant alone; `whole`: recomputed in full, for cross-variant summaries), are declared
once per layer in `sql/layers.toml`.

Where SQL is the wrong tool (change-point detection, a hidden Markov model), a model is a Python
file in the same folders, as dbt's Python models are: `sql/<layer>/<name>.py` creates the table
`<name>`, states its grain and columns in its docstring with the SQL header's lines, names the relations it
reads in `READS`, and defines `model(con, variants) -> polars.DataFrame`, computed from those
relations (for `variants` only when given, else every variant). It lives in a layer kept as
tables, and SQL models read it like any other. Every index reads the file for its READS, so a
library its computation needs (ruptures, hmmlearn: 0.6-1.7 s each to import) is imported where it
is used, and named in `IMPORTS`: an index about to compute the model imports them in the background
while it copies the runs' rows (`tdw.warehouse.materialize.imported_ahead`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tdw.errors import TdwError

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
VIEW_NAME = re.compile(r"create\s+or\s+replace\s+view\s+(\w+)", re.IGNORECASE)
GRAIN = re.compile(r"^--\s*grain:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)
READS = re.compile(r"\b(?:from|join)\s+([a-z_][a-z0-9_]*)", re.IGNORECASE)
COMMENT = re.compile(r"--[^\n]*")
STRING = re.compile(r"'(?:[^']|'')*'")
CLAUSE = re.compile(r"\b(select|from|where|group\s+by|having|window|qualify|order\s+by|union|intersect|except|limit|offset)\b",
                    re.IGNORECASE)
MATERIALIZATIONS = ("view", "table")
REFRESHES = ("by_variant", "whole")


@dataclass(frozen=True)
class SqlModel:
    name: str  # the view the file creates
    path: Path
    layer: str  # its folder, e.g. "30_marts"
    grain: tuple[str, ...]  # the columns that identify one row
    text: str
    reads: frozenset[str]  # relations named in its from/join clauses (views, sources or CTEs)
    materialized: str  # "view" or "table", from its layer
    refresh: str = "whole"  # a table layer's: "by_variant" or "whole" (see the module's docstring)
    # a Python model's function (con, variants or None) -> the table's rows; None for SQL
    function: Callable | None = None
    imports: tuple[str, ...] = ()  # a Python model's IMPORTS: the libraries its function imports

    @property
    def is_python(self) -> bool:
        return self.function is not None

    @property
    def own_order(self) -> str | None:
        """The ORDER BY its query ends with, if any (variant_summary: p, seed, variant)."""
        return None if self.is_python else final_order_by(self.text)

    @property
    def storage_order(self) -> str:
        """How a table layer orders its rows when it stores them (within each variant after an
        incremental index), so `select *` and an export read in a stable order: the view's own
        ORDER BY if it has one, a Python model's rows as its function returns them (training_phases
        in time order), else its grain's; "" where nothing is to be added."""
        if self.is_python or self.own_order is not None:
            return ""
        return "order by " + ", ".join('"' + column.replace('"', '""') + '"' for column in self.grain)


def final_order_by(text: str) -> str | None:
    """The ORDER BY clause that ends a model's query (outside parentheses, after its last select,
    from, where, group by ...), or None: `list(f order by f)` and window orders do not count."""
    code = STRING.sub("''", COMMENT.sub(" ", text))
    depth, outer = 0, []
    for char in code:
        depth += char == "("
        outer.append(char if depth == 0 and char != ")" else " ")
        depth -= char == ")"
    outer = "".join(outer)
    clauses = [c for c in CLAUSE.finditer(outer) if not c.group(1).lower().startswith(("limit", "offset"))]
    if not clauses or not clauses[-1].group(1).lower().startswith("order"):
        return None
    ending = re.split(r"\b(?:limit|offset)\b", outer[clauses[-1].end():], flags=re.IGNORECASE)[0]
    return " ".join(ending.split()).rstrip(";").strip()


def layer_materializations(sql_dir: Path = SQL_DIR) -> dict[str, str]:
    path = sql_dir / "layers.toml"
    try:
        layers = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise TdwError(f"{path}: {error}") from None
    for layer, settings in layers.items():
        if settings.get("materialized") not in MATERIALIZATIONS:
            raise TdwError(f"{path}: [{layer}] materialized must be one of {', '.join(MATERIALIZATIONS)}")
        if settings.get("refresh", "whole") not in REFRESHES:
            raise TdwError(f"{path}: [{layer}] refresh must be one of {', '.join(REFRESHES)}")
    return {layer: settings["materialized"] for layer, settings in layers.items()}


def layer_refreshes(sql_dir: Path = SQL_DIR) -> dict[str, str]:
    """How each layer's tables are brought up to date (validated by layer_materializations)."""
    layers = tomllib.loads((sql_dir / "layers.toml").read_text())
    return {layer: settings.get("refresh", "whole") for layer, settings in layers.items()}


def read_model(path: Path, materialized: dict[str, str]) -> SqlModel:
    text = path.read_text()
    name = VIEW_NAME.search(text)
    if name is None:
        raise TdwError(f"{path}: creates no view (expected `create or replace view NAME as ...`)")
    grain = GRAIN.search(text)
    if grain is None:
        raise TdwError(f"{path}: no `-- grain: column, ...` header line (what identifies one row)")
    layer = path.parent.name
    if layer not in materialized:
        raise TdwError(f"{path}: layer {layer!r} is not declared in {path.parent.parent / 'layers.toml'}")
    reads = frozenset(READS.findall(COMMENT.sub("", text).lower()))
    return SqlModel(name.group(1), path, layer, tuple(c.strip() for c in grain.group(1).split(",")), text, reads,
                    materialized[layer])


def read_python_model(path: Path, materialized: dict[str, str]) -> SqlModel:
    """A Python model: its docstring's grain, its READS, its `model` function."""
    layer = path.parent.name
    if layer not in materialized:
        raise TdwError(f"{path}: layer {layer!r} is not declared in {path.parent.parent / 'layers.toml'}")
    if materialized[layer] != "table":
        raise TdwError(f"{path}: a Python model computes a table; layer {layer!r} is kept as views")
    spec = importlib.util.spec_from_file_location(f"tdw_sql_models.{layer}.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    grain = GRAIN.search(module.__doc__ or "")
    if grain is None:
        raise TdwError(f"{path}: no `-- grain: column, ...` line in its docstring (what identifies one row)")
    if not callable(getattr(module, "model", None)) or not isinstance(getattr(module, "READS", None), tuple):
        raise TdwError(f"{path}: a Python model defines READS (a tuple of relations) and model(con, variants)")
    imports = getattr(module, "IMPORTS", ())
    if not isinstance(imports, tuple) or not all(isinstance(name, str) for name in imports):
        raise TdwError(f"{path}: IMPORTS is a tuple of module names (the libraries its model imports)")
    return SqlModel(path.stem, path, layer, tuple(c.strip() for c in grain.group(1).split(",")), path.read_text(),
                    frozenset(r.lower() for r in module.READS), "table", function=module.model, imports=imports)


def read_models(sql_dir: Path = SQL_DIR) -> list[SqlModel]:
    """Every model of the project, in creation order (see `in_dependency_order`)."""
    materialized = layer_materializations(sql_dir)
    refreshes = layer_refreshes(sql_dir)
    models = [dataclasses.replace(read_model(path, materialized), refresh=refreshes[path.parent.name])
              for path in sorted(sql_dir.glob("*/*.sql"))]
    models += [dataclasses.replace(read_python_model(path, materialized), refresh=refreshes[path.parent.name])
               for path in sorted(sql_dir.glob("*/*.py"))]
    seen: dict[str, Path] = {}
    for model in models:
        if model.name in seen:
            raise TdwError(f"{model.path}: view {model.name!r} is already created by {seen[model.name]}")
        seen[model.name] = model.path
    return in_dependency_order(models)


def in_dependency_order(models: list[SqlModel]) -> list[SqlModel]:
    """Every model after the models it reads (a stable topological order: layer, then name, among
    those ready). A model reading a higher layer, or a cycle, is an error naming the files."""
    by_name = {m.name: m for m in models}
    layers = sorted({m.layer for m in models})
    depends = {m.name: {r for r in m.reads if r in by_name and r != m.name} for m in models}
    for model in models:
        for read in depends[model.name]:
            if layers.index(by_name[read].layer) > layers.index(model.layer):
                raise TdwError(f"{model.path}: reads {read!r} from a higher layer ({by_name[read].path})")
    ordered: list[SqlModel] = []
    done: set[str] = set()
    pending = sorted(models, key=lambda m: (m.layer, m.name))
    while pending:
        ready = [m for m in pending if depends[m.name] <= done]
        if not ready:
            raise TdwError("sql: views read each other in a cycle: " + ", ".join(str(m.path) for m in pending))
        ordered.append(ready[0])
        done.add(ready[0].name)
        pending.remove(ready[0])
    return ordered


def upstream(target: str, models: list[SqlModel] | None = None) -> list[SqlModel]:
    """`target` and every model it reads, directly or not, in creation order: what must run to
    create it from the raw sources alone (the turn over a losses frame in memory, for one)."""
    models = read_models() if models is None else models
    by_name = {m.name: m for m in models}
    if target not in by_name:
        raise TdwError(f"sql: no view named {target!r}")
    needed, frontier = set(), [target]
    while frontier:
        name = frontier.pop()
        if name in needed:
            continue
        needed.add(name)
        frontier.extend(r for r in by_name[name].reads if r in by_name)
    return [m for m in models if m.name in needed]


def sql_fingerprint(models: list[SqlModel]) -> str:
    """The SQL project as built: every file's text and how its layer is kept."""
    layers = (SQL_DIR / "layers.toml").read_bytes()
    return hashlib.sha1(layers + b"".join(m.text.encode() for m in models)).hexdigest()


def indexed_with_other_sql(db: str | Path) -> bool:
    """Whether the warehouse `db` was last indexed with another SQL project than this tdw's `sql/`
    (a tdw upgraded since): its views may lack what the dashboard now queries. False where its
    catalog records none (a warehouse indexed before fingerprints, or copied without its catalog)."""
    from tdw.warehouse.catalog import existing_catalog

    catalog = existing_catalog(db)
    recorded = catalog.run_fingerprints().get("__sql__") if catalog is not None else None
    return recorded is not None and recorded != sql_fingerprint(read_models())
