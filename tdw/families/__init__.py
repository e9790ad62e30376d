"""Model families: an architecture plus a task. Each module in this folder registers one.

Everything family-specific (how the model is built, the data set and its split, the fast
training loss, the analysis probe, parameter groups) lives in that one module; the trainer,
pipeline and warehouse only talk to the `Family` interface.
"""

from __future__ import annotations

import importlib
import pkgutil

from tdw.errors import TdwError
from tdw.families.base import Family, TaskData

_REGISTRY: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    _REGISTRY[family.name] = family
    return family


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_") and module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")


def get_family(name: str) -> Family:
    if not _REGISTRY:
        _discover()
    if name not in _REGISTRY:
        raise TdwError(f"--family {name!r}: unknown family (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def family_names() -> list[str]:
    if not _REGISTRY:
        _discover()
    return sorted(_REGISTRY)


__all__ = ["Family", "TaskData", "family_names", "get_family", "register_family"]
