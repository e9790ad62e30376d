"""The one registry convention: a named collection filled by the modules of one folder.

Analyzers, model families and dashboard views each keep a `Registry`. A module registers its item
by name when imported; `discover()` imports every module of the folder (names starting with `_`
are private) and then entry points of the registry's group, if it has one, so built-in and
outside items take the same path. A name registered twice is an error, never a silent
replacement, and an unknown name gets one line listing the known ones. `get(name)` imports the
folder's module of that name alone when it has one (a family's module is named as it is), and
everything only for another name.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from tdw.errors import TdwError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str, option: str, skip: Iterable[str] = (),
                 entry_point_group: str | None = None,
                 load_entry: Callable[[object], tuple[str, T]] | None = None) -> None:
        self.kind = kind  # "analyzer": how errors name an item
        self.package = package  # the folder whose modules register items
        self.option = option  # the flag that names an item, for error lines: "--analyzers"
        self.skip = frozenset(skip)  # modules of the folder that register nothing (a protocol)
        self.entry_point_group = entry_point_group
        self.load_entry = load_entry  # an entry point's loaded object -> (name, item)
        self.items: dict[str, T] = {}
        self.discovered = False

    def register(self, name: str, item: T) -> T:
        if name in self.items:
            raise TdwError(f"{self.kind} {name!r} registered twice")
        self.items[name] = item
        return item

    def discover(self) -> None:
        if self.discovered:
            return
        self.discovered = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_") and module.name not in self.skip:
                importlib.import_module(f"{self.package}.{module.name}")
        if self.entry_point_group:
            for entry in entry_points(group=self.entry_point_group):
                name, item = self.load_entry(entry.load()) if self.load_entry else (entry.name, entry.load())
                self.register(name, item)

    def all(self) -> dict[str, T]:
        self.discover()
        return dict(self.items)

    def get(self, name: str) -> T:
        # the folder's module of that name, alone, when it has one: a family is looked up for every
        # run a warehouse indexes, and importing all of them brings TransformerLens (the MLP family
        # defines its hooked model), 1.6 s that `tdw index` never needs
        module = f"{self.package}.{name}"
        if name not in self.items and not self.discovered and name.isidentifier() and importlib.util.find_spec(module):
            importlib.import_module(module)
        if name in self.items:
            return self.items[name]
        items = self.all()
        if name not in items:
            raise TdwError(f"{self.option} {name!r}: unknown {self.kind} (known: {', '.join(sorted(items))})")
        return items[name]
