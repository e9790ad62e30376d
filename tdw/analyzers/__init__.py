"""Analyzers, one per file. Adding one is adding a file that calls `register` on its class.

Outside packages add analyzers through the `tdw.analyzers` entry point group (each entry point
names an Analyzer subclass); built-in and outside analyzers go through the same registry.
"""

from __future__ import annotations

from tdw.analysis.analyzer import Analyzer
from tdw.errors import TdwError
from tdw.registry import Registry

ANALYZERS: Registry[Analyzer] = Registry("analyzer", __name__, "--analyzers", entry_point_group="tdw.analyzers",
                                         load_entry=lambda cls: (cls.name, cls()))


def register(cls: type[Analyzer]) -> type[Analyzer]:
    ANALYZERS.register(cls.name, cls())
    return cls


def all_analyzers() -> dict[str, Analyzer]:
    return dict(sorted(ANALYZERS.all().items()))


def get_analyzers(names: list[str] | None) -> list[Analyzer]:
    registry = all_analyzers()
    if not names:  # the default set: every analyzer but the opt-in ones (Analyzer.default)
        return [analyzer for analyzer in registry.values() if analyzer.default]
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise TdwError(f"--analyzers: unknown analyzer {unknown[0]!r} (known: {', '.join(registry)})")
    return [registry[n] for n in names]
