"""The user's data checked before the heavy imports: a bad file costs seconds, not minutes.

`zoo train` imports TensorFlow, Keras and MLflow (seconds each on a busy machine) and sets up the
model before a recipe's loader reads the data. `check_data` runs the recipe's `Recipe.check_data`
first, on the options given, with NumPy, pandas and Pillow only, so a missing column, a missing or
empty image or an unreadable CSV ends the command at once with the loader's one-line error.
"""

import typing

from zoo import registry
from zoo.errors import ZooError
from zoo.training.catalog import get_recipe
from zoo.training.config import config_fields


def check_data(recipe_name: str, settings: typing.Mapping[str, typing.Any]) -> None:
    """Check the data `settings` name for `recipe_name`, before TensorFlow, Keras and MLflow load.

    Settings that are not config fields (model hyperparameters) and values that do not parse are
    left to the run, which reports them with the full check.

    Raises:
        ZooError: what the recipe's `check_data` raises for bad data.
    """
    recipe = get_recipe(recipe_name)
    fields = config_fields(recipe.Config)
    values = {}
    for key, value in settings.items():
        if key not in fields:
            continue
        try:
            values[key] = registry.coerce(key, value, fields[key])
        except ZooError:
            return
    try:
        config = recipe.Config(**values)
    except (TypeError, ValueError):
        return
    recipe.check_data(config)
