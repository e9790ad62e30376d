"""Saved views: a named choice of dashboard views, variants, and pinned epochs, neurons, heads and
inputs, made for one research question. Kept in the catalog (beside the warehouse) and as a small TOML file in
`<warehouse folder>/views/<name>.toml`, which can live with a paper's code: `tdw view add FILE`
brings one back, `tdw report NAME` writes it as a report, and the dashboard's Reports page lists,
opens (`?page=Reports&report=NAME`), edits and deletes them.

    name = "seed-anomaly"
    title = "Why seed 999 groks late"
    views = ["loss_curves", "participation_ratio", "neuron_heatmap"]
    variants = ["p53_seed1", "p53_seed999"]
    epochs = [500, 1500]
    neurons = [7]
    heads = [1]
    pairs = ["4+29", "17+3"]
    log_epochs = false
    notes = "PR collapses before the turn in both"

Each view is drawn for each variant at what it needs of these (`SavedView.selections`): a view over
epochs once, a view at an epoch at each pinned epoch (the last checkpoint when none is), a
neuron's or a head's view for each pinned one (0 when none is), an input's view for each pinned
input, and the margin view, which shows pinned inputs beside the traced one, once with all of them.
With `log_epochs`, every view over epochs is drawn against log epochs, as the dashboard's toggle.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dashboards.state import typed_pair
from tdw import atomic
from tdw.errors import TdwError
from tdw.warehouse.catalog import Catalog, catalog_path, existing_catalog

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FIELDS = ("name", "title", "views", "variants", "epochs", "neurons", "heads", "pairs", "log_epochs", "notes")


@dataclass(frozen=True)
class Selection:
    """What one figure of a saved view is drawn at (the dashboard's selection, pinned)."""

    epoch: int | None  # None: over epochs, or the last checkpoint
    neuron: int = 0
    head: int = 0
    pair: str = "0+0"
    pinned: tuple[str, ...] = ()


@dataclass
class SavedView:
    name: str
    views: list[str]
    variants: list[str]
    epochs: list[int] = field(default_factory=list)
    neurons: list[int] = field(default_factory=list)
    heads: list[int] = field(default_factory=list)
    pairs: list[str] = field(default_factory=list)  # inputs a+b
    log_epochs: bool = False  # views over epochs against log epochs (the dashboard's toggle)
    title: str = ""
    notes: str = ""

    def check(self, known_views: list[str] | None = None, known_variants: list[str] | None = None) -> SavedView:
        """Itself, or TdwError naming the first thing wrong."""
        if not NAME.match(self.name):
            raise TdwError(f"saved view name {self.name!r}: letters, digits, '-', '_', '.' (at most 64)")
        if not self.views:
            raise TdwError(f"saved view {self.name}: pick at least one view")
        if not self.variants:
            raise TdwError(f"saved view {self.name}: pick at least one variant")
        for view in self.views:
            if known_views is not None and view not in known_views:
                raise TdwError(f"saved view {self.name}: unknown view {view!r}; known: {', '.join(known_views)}")
        for variant in self.variants:
            if known_variants is not None and variant not in known_variants:
                raise TdwError(f"saved view {self.name}: variant {variant!r} is not in the warehouse")
        for what, values in (("epochs", self.epochs), ("neurons", self.neurons), ("heads", self.heads)):
            if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in values):
                raise TdwError(f"saved view {self.name}: {what} must be whole numbers >= 0")
        for pair in self.pairs:
            try:
                typed_pair(pair, None)
            except ValueError as error:
                raise TdwError(f"saved view {self.name}: pairs: {error}") from None
        return self

    def selections(self, needs: tuple[str, ...], over_epochs: bool, checkpoints: list[int]) -> list[Selection]:
        """Every selection a view (what it `needs`, whether it is drawn `over_epochs`) is drawn at
        for a variant with these `checkpoints`; pinned epochs the variant lacks are left out."""
        epochs = ([None] if over_epochs or "epoch" not in needs
                  else [e for e in self.epochs if e in checkpoints] or checkpoints[-1:])
        neurons = (self.neurons or [0]) if "neuron" in needs else [0]
        heads = (self.heads or [0]) if "head" in needs else [0]
        pairs = [typed_pair(p, None) for p in self.pairs] or ["0+0"]
        if "pinned" in needs:  # one figure: the first input traced, the others beside it
            inputs = [(pairs[0], tuple(pairs[1:]))]
        else:
            inputs = [(pair, ()) for pair in pairs] if "pair" in needs else [("0+0", ())]
        return [Selection(epoch, neuron, head, pair, pinned) for epoch in epochs for neuron in neurons
                for head in heads for pair, pinned in inputs]

    def to_toml(self) -> str:
        def value(v: object) -> str:
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, list):
                return "[" + ", ".join(value(x) for x in v) + "]"
            if isinstance(v, int):
                return str(v)
            return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

        return "".join(f"{name} = {value(getattr(self, name))}\n" for name in FIELDS)

    @classmethod
    def from_toml(cls, text: str, source: str = "TOML") -> SavedView:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise TdwError(f"{source}: not TOML ({error})") from None
        unknown = set(data) - set(FIELDS)
        if unknown:
            raise TdwError(f"{source}: unknown key {min(unknown)!r}; keys: {', '.join(FIELDS)}")
        if "name" not in data:
            raise TdwError(f"{source}: needs a name")
        if not isinstance(data.get("log_epochs", False), bool):
            raise TdwError(f"{source}: log_epochs must be true or false")
        lists = {"views": str, "variants": str, "epochs": int, "neurons": int, "heads": int, "pairs": str}
        for key, kind in lists.items():
            if not isinstance(data.get(key, []), list) or not all(isinstance(x, kind) for x in data.get(key, [])):
                raise TdwError(f"{source}: {key} must be a list of {'strings' if kind is str else 'whole numbers'}")
        return cls(**{"views": [], "variants": [], **{k: data[k] for k in FIELDS if k in data}})


def views_folder(db: str | Path) -> Path:
    return Path(db).parent / "views"


def catalog_of(db: str | Path) -> Catalog:
    return Catalog(catalog_path(db))


def save(db: str | Path, view: SavedView, known_views: list[str], known_variants: list[str]) -> Path:
    """Check it, then write the TOML file (atomically) and the catalog row; the file's path."""
    view.check(known_views, known_variants)
    path = views_folder(db) / f"{view.name}.toml"
    text = view.to_toml()
    atomic.write_bytes(path, text.encode())
    catalog = catalog_of(db)
    try:
        catalog.put_saved_view(view.name, text)
    finally:
        catalog.dispose()
    return path


def load_all(db: str | Path) -> dict[str, SavedView]:
    catalog = existing_catalog(db)  # listing makes no catalog
    if catalog is None:
        return {}
    try:
        return {name: SavedView.from_toml(text, f"saved view {name}") for name, text in catalog.saved_views().items()}
    finally:
        catalog.dispose()


def load(db: str | Path, name: str) -> SavedView:
    views = load_all(db)
    if name not in views:
        raise TdwError(f"saved view {name!r}: no such view; saved: {', '.join(views) or 'none'} (tdw view list)")
    return views[name]


def remove(db: str | Path, name: str) -> None:
    load(db, name)  # an unknown name is one line naming the saved ones, before anything is opened to write
    catalog = catalog_of(db)
    try:
        catalog.remove_saved_view(name)
    finally:
        catalog.dispose()
    path = views_folder(db) / f"{name}.toml"
    if path.exists():
        path.unlink()
