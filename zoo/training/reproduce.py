"""Running a configuration again: `--config run.yaml` (a file) and `--like RUN_ID` (a logged run).

The file is the `config.yaml` every run logs (`zoo.training.description`), taken as it is:
`recipe`, `config` (the recipe's options) and `overrides` (the model hyperparameters given with
`--set`); `model`, `hyperparameters` and `data` are what the run resolved and found, read by
nobody (the data decide them again). A hand-written file may also put options and
hyperparameters at the top level:

    recipe: mlp
    epochs: 30
    dataset: wine
    hidden_units: [64, 32]

Options given beside the file or the run win over its values (`zoo train --like RUN_ID --seed 3`).
"""

import dataclasses
import os
import typing

from zoo.errors import ZooError, closest

# Sections of a logged config.yaml; the last three describe what the run resolved, not what it was given.
SECTIONS = ("recipe", "config", "overrides", "model", "hyperparameters", "data")
# The tag a run started with `like` carries: the run it re-ran.
LIKE_TAG = "zoo.like"
CONFIG_TAG = "zoo.config_file"
# What a re-run of a logged run does not take from it: where that run went, not how it trained.
_NOT_REPEATED = ("run_name", "output", "register", "checkpoint_dir")


@dataclasses.dataclass
class Source:
    """A configuration to run again: the recipe, its values, and the tags that say where it came from."""

    recipe: str
    values: dict[str, typing.Any]
    tags: dict[str, str]


def from_file(path: str) -> Source:
    """Read a run configuration YAML (a run's logged `config.yaml`, or one written by hand or by `zoo tune`).

    Raises:
        ZooError: for a missing or malformed file, no recipe, or a key that is neither a section, a
            recipe option nor a hyperparameter of the recipe's model (naming the closest valid one).
    """
    import yaml

    if not os.path.isfile(path):
        raise ZooError(f"No configuration file {path}. Give the path of a run's config.yaml to `config`.")
    try:
        with open(path, encoding="utf-8") as handle:
            saved = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ZooError(f"Cannot read the configuration file {path} as YAML ({first}).") from None
    return Source(*_values(saved, path), {CONFIG_TAG: os.path.basename(path)})


def from_run(reference: str, tracking_uri: str | None = None) -> Source:
    """The configuration a logged run trained with: `RUN_ID` or `runs:/RUN_ID[/...]`.

    The new run goes to the same experiment, on the same data source; its name, `output` folder,
    registration and checkpoint folder are its own.

    Raises:
        ZooError: for an unknown run, or a run without a `config.yaml` (not a `zoo train` run).
    """
    import yaml

    from zoo import tracking
    from zoo.training.description import CONFIG_FILE

    run_id = reference[len("runs:/") :].split("/")[0] if reference.startswith("runs:/") else reference.strip()
    uri = tracking.configure(tracking_uri)
    run = _get_run(run_id, uri)
    try:
        text = tracking.mlflow.artifacts.load_text(f"{run.info.artifact_uri}/{CONFIG_FILE}")
    except Exception:  # noqa: BLE001 - MLflow's error for a missing artifact differs by store
        raise ZooError(f"Run {run_id} logged no {CONFIG_FILE}: `like` re-runs runs of `zoo train`.") from None
    recipe, values = _values(yaml.safe_load(text), f"run {run_id}'s {CONFIG_FILE}")
    for key in _NOT_REPEATED:
        values.pop(key, None)
    if values.get("experiment") is None:
        values["experiment"] = tracking.mlflow.MlflowClient().get_experiment(run.info.experiment_id).name
    return Source(recipe, values, {LIKE_TAG: run_id})


def merge(source: Source, options: typing.Mapping[str, typing.Any], recipe: str | None = None) -> dict[str, typing.Any]:
    """The source's values with `options` (given beside it) winning.

    Raises:
        ZooError: when `recipe` names another recipe than the source's.
    """
    if recipe is not None and recipe != source.recipe:
        raise ZooError(
            f"The configuration is of recipe '{source.recipe}', not '{recipe}': drop the recipe name, or "
            f"give a configuration of '{recipe}'."
        )
    return {**source.values, **options}


def _get_run(run_id: str, uri: str) -> typing.Any:
    from mlflow.exceptions import MlflowException

    from zoo import tracking

    try:
        return tracking.mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        raise ZooError(f"No MLflow run '{run_id}' in {uri}. Check the run id and `tracking_uri`.") from None


def _values(saved: typing.Any, where: str) -> tuple[str, dict[str, typing.Any]]:
    """(recipe, {option or hyperparameter: value}) of a configuration, every key checked."""
    from zoo import registry
    from zoo.training.catalog import get_recipe, recipe_names
    from zoo.training.config import config_fields

    if not isinstance(saved, dict) or not isinstance(saved.get("recipe"), str):
        raise ZooError(f"{where} names no recipe: it needs a line `recipe: NAME` ({', '.join(recipe_names())}).")
    recipe = get_recipe(saved["recipe"])
    fields = config_fields(recipe.Config)
    block = saved.get("config") or {}
    if not isinstance(block, dict):
        raise ZooError(f"`config` in {where} must be a mapping of option: value.")
    for key in block:
        if key not in fields:
            raise ZooError(
                f"Unknown option '{key}' in {where} (section `config`) for recipe '{recipe.name}'."
                f"{closest(key, fields)}"
            )
    options = dict(block)
    # The flat form's options first: an option (`model`) decides which hyperparameters exist.
    flat = {k: v for k, v in saved.items() if k not in SECTIONS}
    options.update({k: v for k, v in flat.items() if k in fields})
    # A logged None is the field's default: leaving it out keeps a default that may have moved.
    options = {k: v for k, v in options.items() if v is not None}
    model = recipe.model_name(recipe.Config(**options))
    hyperparameters = registry.info(model).hyperparameters
    overrides = saved.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ZooError(f"`overrides` in {where} must be a mapping of hyperparameter: value.")
    for key in list(overrides) + [k for k in flat if k not in fields]:
        if key not in hyperparameters:
            known = list(SECTIONS) + list(fields) + list(hyperparameters)
            raise ZooError(
                f"Unknown key '{key}' in {where} for recipe '{recipe.name}' (model '{model}').{closest(key, known)}"
            )
    return recipe.name, {**options, **overrides, **{k: v for k, v in flat.items() if k not in fields}}
