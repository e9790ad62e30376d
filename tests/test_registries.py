"""One registry convention, one contract test per registry: every built-in item is found by
listing its folder, is registered under its own name, and a second registration of a name is
refused with one line instead of silently replacing the first."""

from __future__ import annotations

import pytest

from dashboards.views import VIEWS, all_views, get_view
from tdw.analyzers import ANALYZERS, all_analyzers
from tdw.errors import TdwError
from tdw.families import FAMILIES, family_names, get_family
from tdw.registry import Registry

REGISTRIES = {"analyzers": ANALYZERS, "families": FAMILIES, "views": VIEWS}


def module_names(registry: Registry) -> set[str]:
    import importlib
    import pkgutil

    package = importlib.import_module(registry.package)
    return {m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")} - registry.skip


def defining_module(item) -> str:
    """Where an item was declared: a view's render function, an analyzer's or family's class."""
    return getattr(item, "render", type(item)).__module__.rpartition(".")[2]


@pytest.mark.parametrize("name", sorted(REGISTRIES))
def test_every_module_of_the_folder_registers_items_under_their_own_names(name):
    registry = REGISTRIES[name]
    items = registry.all()
    assert module_names(registry) == {defining_module(item) for item in items.values()}
    for key, item in items.items():
        assert item.name == key


@pytest.mark.parametrize("name", sorted(REGISTRIES))
def test_a_name_registered_twice_is_refused(name):
    registry = REGISTRIES[name]
    first_name, first = next(iter(sorted(registry.all().items())))
    with pytest.raises(TdwError, match=f"{registry.kind} '{first_name}' registered twice"):
        registry.register(first_name, first)
    assert registry.all()[first_name] is first  # the first one stays


def test_an_unknown_name_is_one_line_listing_the_known_ones():
    with pytest.raises(TdwError, match=r"^--family 'mlp_nope': unknown family \(known: mlp, modular_addition\)$"):
        get_family("mlp_nope")
    with pytest.raises(TdwError, match=r"^VIEW 'nope': unknown view \(known: .*loss_curves"):
        get_view("nope")
    assert "modular_addition" in family_names() and "loss_curves" in all_views() and "neuron_freq" in all_analyzers()
