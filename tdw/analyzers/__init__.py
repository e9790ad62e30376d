"""Analyzers, one per file. Adding one is adding a file that calls `register` on its class.

Outside packages add analyzers through the `tdw.analyzers` entry point group (each entry point
names an Analyzer subclass); built-in and outside analyzers go through the same registry.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points

from tdw.analysis.analyzer import Analyzer
from tdw.errors import TdwError

_REGISTRY: dict[str, Analyzer] = {}
_loaded = False


def register(cls: type[Analyzer]) -> type[Analyzer]:
    _REGISTRY[cls.name] = cls()
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    for entry in entry_points(group="tdw.analyzers"):
        cls = entry.load()
        _REGISTRY.setdefault(cls.name, cls())


def all_analyzers() -> dict[str, Analyzer]:
    _load()
    return dict(sorted(_REGISTRY.items()))


def get_analyzers(names: list[str] | None) -> list[Analyzer]:
    registry = all_analyzers()
    if not names:
        return list(registry.values())
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise TdwError(f"--analyzers: unknown analyzer {unknown[0]!r} (known: {', '.join(registry)})")
    return [registry[n] for n in names]
