"""Model families: an architecture plus a task. Each module in this folder registers one.

Everything family-specific (how the model is built, the data set and its split, the fast
training loss, the analysis probe, parameter groups) lives in that one module; the trainer,
pipeline and warehouse only talk to the `Family` interface.
"""

from __future__ import annotations

from tdw.families.base import Family, TaskData
from tdw.registry import Registry

FAMILIES: Registry[Family] = Registry("family", __name__, "--family", skip=("base",))


def register_family(family: Family) -> Family:
    return FAMILIES.register(family.name, family)


def get_family(name: str) -> Family:
    return FAMILIES.get(name)


def family_names() -> list[str]:
    return sorted(FAMILIES.all())


__all__ = ["FAMILIES", "Family", "TaskData", "family_names", "get_family", "register_family"]
