"""The recipe catalog: `@register_recipe`, discovery of the modules in `zoo.recipes`, and lookup by name.

Anything about which recipes exist and how they are found belongs here.
"""

import functools
import importlib
import pkgutil
import typing

from zoo.errors import ZooError, closest
from zoo.training.recipe import Recipe

_R = typing.TypeVar("_R", bound=Recipe)
# The registry that `@register_recipe` fills at import time (as `zoo.registry` does for models).
_RECIPES: dict[str, type[Recipe]] = {}


def register_recipe(cls: type[_R]) -> type[_R]:
    """Class decorator: make a `Recipe` subclass reachable as `zoo train NAME`."""
    if cls.name in _RECIPES:
        raise ValueError(f"A recipe is already registered under the name '{cls.name}'.")
    _RECIPES[cls.name] = cls
    return cls


def unregister_recipe(name: str) -> None:
    """Remove the recipe `name` (a test's throwaway recipe); an unknown name is ignored."""
    _RECIPES.pop(name, None)


@functools.cache
def _discover() -> None:
    """Import every module of `zoo.recipes` once, which registers their recipes."""
    import zoo.recipes

    for module in pkgutil.iter_modules(zoo.recipes.__path__):
        importlib.import_module(f"zoo.recipes.{module.name}")


def recipe_names() -> list[str]:
    _discover()
    return sorted(_RECIPES)


def get_recipe(name: str) -> Recipe:
    """Return an instance of the recipe `name`.

    Raises:
        ZooError: listing the recipes when `name` is unknown.
    """
    _discover()
    if name not in _RECIPES:
        raise ZooError(f"Unknown recipe '{name}'.{closest(name, _RECIPES)} Recipes: {', '.join(sorted(_RECIPES))}.")
    return _RECIPES[name]()
