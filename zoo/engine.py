"""The training engine every recipe runs through.

A recipe says how to load its data, which model to build and how to score it; the engine does the
rest the same way for all of them: seeds, device strategy, input pipelines, `fit` with early
stopping, the final test evaluation, and the MLflow run with its params, metrics, datasets, model,
plots and tags. A recipe that needs something new adds it here, not in its own module.
"""

import dataclasses
import importlib
import json
import os
import pkgutil
import tempfile
import time
import typing

import zoo
from zoo import registry, tracking
from zoo.errors import ZooError, closest

_RECIPES = {}
_DISCOVERED = False
# Options that say where a run goes, not how it trains: not logged as params.
RUN_OPTIONS = ("experiment", "run_name", "tracking_uri", "output")


@dataclasses.dataclass
class RecipeConfig:
    """Options every recipe has. A recipe subclasses this to add its own and change defaults.

    Args:
        epochs: maximum number of passes over the training split.
        batch_size: global batch size (split across replicas when there are several devices).
        seed: seed for the split, the initial weights and the shuffling.
        patience: epochs without a better validation loss before early stopping (0: never stop).
        devices: auto, cpu, gpu, gpu:0,1, cpu:0,1 or all.
        experiment: MLflow experiment name.
        run_name: MLflow run name.
        tracking_uri: MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db).
        output: folder to save the trained model in (`model.keras`), besides MLflow.
    """

    epochs: int = 20
    batch_size: int = 32
    seed: int = 42
    patience: int = 5
    devices: str = "auto"
    experiment: typing.Optional[str] = None
    run_name: typing.Optional[str] = None
    tracking_uri: typing.Optional[str] = None
    output: typing.Optional[str] = None


@dataclasses.dataclass
class Data:
    """What a recipe's loader hands the engine.

    Attributes:
        train, validation, test: unbatched `tf.data.Dataset`s of (inputs, targets);
            validation and test may be None.
        num_train: number of training examples (sizes the shuffle buffer).
        example_inputs: a few raw inputs (numpy array or dict of arrays) for the model signature.
        spec: facts about the data logged as `data.*` params (shape, classes, task, ...).
        mlflow_datasets: (mlflow.data dataset, context) pairs logged as the run's inputs.
        extras: anything else the recipe keeps for its own evaluation and artifacts.
    """

    train: typing.Any
    validation: typing.Any
    test: typing.Any
    num_train: int
    example_inputs: typing.Any
    spec: dict
    mlflow_datasets: list = dataclasses.field(default_factory=list)
    extras: dict = dataclasses.field(default_factory=dict)


class Recipe:
    """Base class of the recipes; subclasses live in `zoo.recipes` and use `@register_recipe`."""

    name = ""
    technique = ""
    summary = ""
    model = ""
    Config = RecipeConfig
    # Early stopping watches this validation metric; None trains for all epochs.
    monitor = "val_loss"

    def load_data(self, config):
        """Return a `Data`. Raise `ZooError` for bad input, before any MLflow run exists."""
        raise NotImplementedError

    def model_name(self, config):
        return self.model

    def model_overrides(self, config, data):
        """Hyperparameters that come from the data (input shape, classes, feature spec)."""
        return {}

    def evaluate(self, model, data, config):
        """Return the final `test_*` metrics, computed once on the held-out split."""
        if data.test is None:
            return {}
        results = model.evaluate(batch(data.test, config.batch_size), return_dict=True, verbose=0)
        return {f"test_{name}": float(value) for name, value in results.items()}

    def log_artifacts(self, model, data, config):
        """Log what this technique adds to the common set (plots, examples, reports)."""

    def log_model(self, model, data):
        return tracking.log_model(model, data.example_inputs)


@dataclasses.dataclass
class RunResult:
    run_id: str
    model: typing.Any
    metrics: dict
    history: dict
    config: typing.Any


def register_recipe(cls):
    """Class decorator: make a `Recipe` subclass reachable as `zoo train NAME`."""
    if cls.name in _RECIPES:
        raise ValueError(f"A recipe is already registered under the name '{cls.name}'.")
    _RECIPES[cls.name] = cls
    return cls


def _discover():
    global _DISCOVERED
    if not _DISCOVERED:
        import zoo.recipes

        for module in pkgutil.iter_modules(zoo.recipes.__path__):
            importlib.import_module(f"zoo.recipes.{module.name}")
        _DISCOVERED = True


def recipe_names():
    _discover()
    return sorted(_RECIPES)


def get_recipe(name):
    """Return an instance of the recipe `name`.

    Raises:
        ZooError: listing the recipes when `name` is unknown.
    """
    _discover()
    if name not in _RECIPES:
        raise ZooError(
            f"Unknown recipe '{name}'.{closest(name, _RECIPES)} Recipes: {', '.join(sorted(_RECIPES))}."
        )
    return _RECIPES[name]()


def config_fields(config_class):
    hints = typing.get_type_hints(config_class)
    return {field.name: hints[field.name] for field in dataclasses.fields(config_class)}


def make_config(recipe, options=None, settings=None):
    """Build a recipe's config from options and `--set key=value` settings.

    A setting names a config field or a hyperparameter of the recipe's model; string values are
    parsed into the field's type.

    Returns:
        (config, model_overrides)

    Raises:
        ZooError: for an unknown key or a value of the wrong type.
    """
    fields = config_fields(recipe.Config)
    values, overrides = {}, {}
    for key, value in (options or {}).items():
        if key not in fields:
            raise ZooError(f"Unknown option '{key}' for recipe '{recipe.name}'.{closest(key, fields)}")
        values[key] = registry.coerce(key, value, fields[key])
    for key, value in (settings or {}).items():
        if key in fields:
            values[key] = registry.coerce(key, value, fields[key])
            continue
        model = recipe.model_name(recipe.Config(**values))
        hyperparameters = registry.info(model).hyperparameters
        if key not in hyperparameters:
            known = list(fields) + list(hyperparameters)
            raise ZooError(
                f"Unknown --set key '{key}' for recipe '{recipe.name}'.{closest(key, known)} "
                f"Valid keys: recipe options {', '.join(fields)}; model '{model}' hyperparameters "
                f"{', '.join(hyperparameters)}."
            )
        overrides[key] = registry.coerce(key, value, hyperparameters[key].annotation)
    config = recipe.Config(**values)
    _check_common(config)
    return config, overrides


def _check_common(config):
    for name in ("epochs", "batch_size"):
        if getattr(config, name) < 1:
            raise ZooError(f"--{name.replace('_', '-')} must be at least 1. Received: {getattr(config, name)}")
    if config.patience < 0:
        raise ZooError(f"--patience must be 0 or more. Received: {config.patience}")


def batch(dataset, batch_size, shuffle_buffer=0, seed=None):
    """Cache, optionally shuffle, batch and prefetch an unbatched dataset."""
    import tensorflow as tf

    dataset = dataset.cache()
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def train(recipe_name, options=None, settings=None, verbose=0):
    """Run a recipe end to end and log it to MLflow.

    Args:
        recipe_name: a registered recipe (`zoo train --help` lists them).
        options: config fields, e.g. {"epochs": 5, "data": "table.csv", "target": "y"}.
        settings: `--set` pairs: config fields or model hyperparameters.
        verbose: Keras `fit` verbosity (0 silent, 2 one line per epoch).

    Returns:
        `RunResult` with the MLflow run id, the trained model and the test metrics.

    Raises:
        ZooError: for bad input, before an MLflow run is started where it can be checked early.
    """
    import keras

    from zoo import devices

    devices.split_cpu_from_env()
    recipe = get_recipe(recipe_name)
    config, overrides = make_config(recipe, options, settings)
    tracking.configure(config.tracking_uri)
    keras.utils.set_random_seed(config.seed)

    data = recipe.load_data(config)
    strategy = devices.select_strategy(config.devices)
    model_name = recipe.model_name(config)
    hyperparameters = {**recipe.model_overrides(config, data), **overrides}
    with strategy.scope():
        model = registry.get(model_name, **hyperparameters)
    strategy_name, replicas = devices.describe(strategy)

    tags = {
        "zoo.technique": recipe.technique,
        "zoo.recipe": recipe.name,
        "zoo.model": model_name,
        "zoo.version": zoo.__version__,
    }
    commit = tracking.git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    experiment = config.experiment or "zoo"
    with tracking.active_run(experiment, config.run_name, tags) as run:
        resolved = registry.resolve(model_name, hyperparameters)
        # Structured hyperparameters (a feature spec) would flood the params table: files instead.
        structured = {k: v for k, v in resolved.items() if isinstance(v, dict)}
        resolved = {k: v for k, v in resolved.items() if k not in structured}
        params = {k: v for k, v in dataclasses.asdict(config).items() if k not in RUN_OPTIONS}
        params.update({"recipe": recipe.name, "model": model_name, "strategy": strategy_name, "replicas": replicas})
        tracking.log_params(
            tracking.flatten(params)
            | tracking.flatten(resolved, prefix="model.")
            | tracking.flatten(data.spec, prefix="data.")
        )
        import mlflow

        mlflow.log_dict(
            {"recipe": recipe.name, "config": dataclasses.asdict(config), "model": model_name,
             "hyperparameters": resolved | structured, "data": data.spec},
            "config.yaml",
        )
        for key, value in structured.items():
            mlflow.log_dict(value, f"{key}.json")
        for dataset, context in data.mlflow_datasets:
            mlflow.log_input(dataset, context=context)

        callbacks = [tracking.metrics_callback()]
        if recipe.monitor and data.validation is not None and config.patience:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=recipe.monitor, patience=config.patience, restore_best_weights=True
                )
            )
        started = time.perf_counter()
        history = model.fit(
            batch(data.train, config.batch_size, shuffle_buffer=data.num_train, seed=config.seed),
            validation_data=None if data.validation is None else batch(data.validation, config.batch_size),
            epochs=config.epochs,
            callbacks=callbacks,
            verbose=verbose,
        )
        train_seconds = time.perf_counter() - started

        metrics = recipe.evaluate(model, data, config)
        metrics["train_seconds"] = train_seconds
        metrics["epochs_trained"] = len(history.history.get("loss", []))
        mlflow.flush_async_logging()
        mlflow.log_metrics(metrics)
        if history.history:
            mlflow.log_figure(tracking.learning_curve(history.history), "learning_curve.png")
        recipe.log_artifacts(model, data, config)
        recipe.log_model(model, data)
        if config.output:
            save(model, config.output, {"recipe": recipe.name, "run_id": run.info.run_id, "metrics": metrics})
    return RunResult(run.info.run_id, model, metrics, history.history, config)


def save(model, folder, info):
    """Save `model.keras` and `run.json` into `folder` (created if needed)."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise ZooError(f"Cannot create the --output folder {folder}: {error.strerror}.") from None
    model.save(os.path.join(folder, "model.keras"))
    with open(os.path.join(folder, "run.json"), "w") as handle:
        json.dump(info, handle, indent=2)
