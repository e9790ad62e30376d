"""Torch, imported where it is first used rather than where it is named.

Why: the analyzers, families and interventions declare what the warehouse reads (their tables'
schemas, a family's hooks and specialized share) in the same modules that compute with torch.
`tdw index` needs the declarations and never a tensor, yet importing those modules imported
torch: a `tdw index` with nothing to do took 2.4-3.1 s with it, 0.74-0.85 s without. Modules on
that path name torch through this module instead, so `torch.linalg.svdvals(...)` imports torch
on its first call and reading `SomeAnalyzer.tables` never does. A test checks that indexing runs
without torch in a fresh process.

For type checkers the names are the real modules. At run time each is a `DeferredModule`: a
stand-in whose attribute lookups import the module once and then read from it, so a module that
names torch must not touch it while it is being imported (no `torch.Function` base classes, no
torch default arguments, `from __future__ import annotations` for annotations).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any


class DeferredModule:
    """Stands for the module `name` and imports it on the first attribute lookup."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<deferred module {self._name!r}, {state}>"


if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:
    torch = DeferredModule("torch")
    F = DeferredModule("torch.nn.functional")

__all__ = ["DeferredModule", "F", "torch"]
