"""The training engine every recipe runs through.

A recipe says how to load its data, which model to build and how to score it; the engine does the
rest the same way for all of them: seeds, device strategy, input pipelines, `fit` with early
stopping, the final test evaluation, and the MLflow run with its params, metrics, datasets, model,
plots and tags. A recipe that needs something new adds it here, not in its own module.
"""

import dataclasses
import importlib
import json
import math
import os
import pkgutil
import time
import typing
import warnings

import zoo
from zoo import backends, registry, tracking
from zoo.errors import ZooError, closest

_RECIPES: dict[str, type["Recipe"]] = {}
_R = typing.TypeVar("_R", bound="Recipe")
_DISCOVERED = False
# Options that say where a run goes, not how it trains: not logged as params.
RUN_OPTIONS = ("experiment", "run_name", "tracking_uri", "output", "register", "system_metrics", "checkpoint_dir")


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
        register: register the model under this name, aliased champion if it beats the champion.
        system_metrics: log CPU, memory and GPU use as `system/*` metrics.
        checkpoint_dir: where per-epoch checkpoints go (default: ZOO_CHECKPOINT_DIR or
            ./zoo-checkpoints); a run's folder is deleted when it finishes, kept when it stops.
        precision: float32, or mixed_float16 / mixed_bfloat16 (for GPUs; outputs stay float32).
        jit: compile the training step with XLA.
    """

    epochs: int = 20
    batch_size: int = 32
    seed: int = 42
    patience: int = 5
    devices: str = "auto"
    experiment: str | None = None
    run_name: str | None = None
    tracking_uri: str | None = None
    output: str | None = None
    register: str | None = None
    system_metrics: bool = False
    checkpoint_dir: str | None = None
    precision: typing.Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    jit: bool = False


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
    # The test metric that ranks runs (`--register`, `zoo compare`); None: test_accuracy, else test_loss.
    main_metric = None
    # TensorFlow graph optimizer (grappler) passes switched off while this recipe runs: for a pass
    # that logs an error line on the recipe's graph and then skips it anyway (say which, and why).
    graph_passes_off: tuple[str, ...] = ()

    def load_data(self, config: typing.Any) -> "Data":
        """Return a `Data`. Raise `ZooError` for bad input, before any MLflow run exists."""
        raise NotImplementedError

    def model_name(self, config: typing.Any) -> str:
        return self.model

    def model_overrides(self, config: typing.Any, data: "Data") -> dict[str, typing.Any]:
        """Hyperparameters that come from the data (input shape, classes, feature spec)."""
        return {}

    def check_overrides(self, config: typing.Any, data: "Data", overrides: dict[str, typing.Any]) -> None:
        """Raise `ZooError` for a `--set` value that this data rules out (before any MLflow run)."""

    def evaluate(self, model: typing.Any, data: "Data", config: typing.Any) -> dict[str, float]:
        """Return the final `test_*` metrics, computed once on the held-out split."""
        if data.test is None:
            return {}
        results = model.evaluate(batch(data.test, config.batch_size), return_dict=True, verbose=0)
        return {f"test_{name}": float(value) for name, value in results.items()}

    def log_artifacts(self, model: typing.Any, data: "Data", config: typing.Any) -> None:
        """Log what this technique adds to the common set (plots, examples, reports)."""

    def callbacks(self, model: typing.Any, data: "Data", config: typing.Any) -> list[typing.Any]:
        """Extra Keras callbacks for `fit`; they run before the MLflow metrics callback, so values
        they add to an epoch's `logs` are logged with that epoch as step."""
        return []

    def log_model(self, model: typing.Any, data: "Data") -> typing.Any:
        return tracking.log_model(model, data.example_inputs)

    def epoch_metrics(self, model: typing.Any, data: "Data", config: typing.Any) -> list[str]:
        """Names of the values every epoch logs: what `zoo tune --metric` may optimize.

        Read from the compiled model by evaluating it on a few validation rows, so a recipe whose
        model Keras compiles needs nothing here; one whose callbacks add values to the epoch's
        logs (the GAN's quality score) adds their names.
        """
        names = {metric.name for metric in model.metrics} - {"compile_metrics"}
        if data.validation is not None:
            rows = data.validation.take(max(1, _replicas))
            logged = model.evaluate(batch(rows, config.batch_size), return_dict=True, verbose=0)
            names |= set(logged)
            names |= {f"val_{name}" for name in logged}
        return sorted(names)


@dataclasses.dataclass
class RunResult:
    """What a finished run gives back: `zoo.train(...)` returns it.

    Attributes:
        run_id: the MLflow run id.
        model: the trained `keras.Model` (best weights when early stopping restored them).
        metrics: the final `test_*` metrics, `train_seconds` and `epochs_trained`.
        history: Keras' per-epoch history (`loss`, `val_*`, ...).
        config: the resolved recipe config (a `RecipeConfig` subclass).
    """

    run_id: str
    model: typing.Any
    metrics: dict[str, float]
    history: dict[str, list[float]]
    config: typing.Any


def register_recipe(cls: type[_R]) -> type[_R]:
    """Class decorator: make a `Recipe` subclass reachable as `zoo train NAME`."""
    if cls.name in _RECIPES:
        raise ValueError(f"A recipe is already registered under the name '{cls.name}'.")
    _RECIPES[cls.name] = cls
    return cls


def _discover() -> None:
    global _DISCOVERED
    if not _DISCOVERED:
        import zoo.recipes

        for module in pkgutil.iter_modules(zoo.recipes.__path__):
            importlib.import_module(f"zoo.recipes.{module.name}")
        _DISCOVERED = True


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


def config_fields(config_class: type) -> dict[str, dataclasses.Field[typing.Any]]:
    hints = typing.get_type_hints(config_class)
    return {field.name: hints[field.name] for field in dataclasses.fields(config_class)}


def make_config(
    recipe: Recipe,
    options: typing.Mapping[str, typing.Any] | None = None,
    settings: typing.Mapping[str, typing.Any] | None = None,
) -> tuple[typing.Any, dict[str, typing.Any]]:
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
    settings = settings or {}
    for key, value in settings.items():
        if key in fields:
            values[key] = registry.coerce(key, value, fields[key])
    # Options first: an option (`model=`) decides which hyperparameters exist.
    for key, value in settings.items():
        if key in fields:
            continue
        model = recipe.model_name(recipe.Config(**values))
        hyperparameters = registry.info(model).hyperparameters
        if key not in hyperparameters:
            known = list(fields) + list(hyperparameters)
            raise ZooError(
                f"Unknown key '{key}' for recipe '{recipe.name}' (a --set KEY or zoo.train keyword)."
                f"{closest(key, known)} "
                f"Valid keys: recipe options {', '.join(fields)}; model '{model}' hyperparameters "
                f"{', '.join(hyperparameters)}."
            )
        overrides[key] = registry.coerce(key, value, hyperparameters[key].annotation)
    config = recipe.Config(**values)
    _check_common(config)
    return config, overrides


def _check_common(config: typing.Any) -> None:
    for name in ("epochs", "batch_size"):
        if getattr(config, name) < 1:
            raise ZooError(f"--{name.replace('_', '-')} must be at least 1. Received: {getattr(config, name)}")
    if config.patience < 0:
        raise ZooError(f"--patience must be 0 or more. Received: {config.patience}")


# Replicas of the run in progress: evaluation batches must start with one that splits evenly.
_replicas = 1


def batch(dataset: typing.Any, batch_size: int, shuffle_buffer: int = 0, seed: int | None = None) -> typing.Any:
    """Cache, optionally shuffle, batch and prefetch an unbatched dataset.

    With several replicas, a dataset smaller than `batch_size` is batched by the largest multiple
    of the replica count that fits: Keras cannot start `fit`, `evaluate` or `predict` on a first
    batch that splits unevenly (57 rows on 2 replicas).
    """
    import tensorflow as tf

    size = int(dataset.cardinality())
    if _replicas > 1 and 0 < size < batch_size:
        batch_size = max(_replicas, size - size % _replicas)
    dataset = dataset.cache()
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def training_batches(
    dataset: typing.Any, num_examples: int, batch_size: int, seed: int, initial_epoch: int = 0
) -> tuple[typing.Any, int]:
    """Endless shuffled batches whose order depends only on (seed, epoch).

    Returns:
        (dataset, steps_per_epoch). Resuming at `initial_epoch` skips exactly the batches the
        interrupted run had seen, so it sees the same batches an uninterrupted run would.
    """
    import tensorflow as tf

    steps = max(1, math.ceil(num_examples / batch_size))
    dataset = (
        dataset.cache()
        .shuffle(max(1, num_examples), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .repeat()
    )
    if initial_epoch:
        dataset = dataset.skip(initial_epoch * steps)
    return dataset.prefetch(tf.data.AUTOTUNE), steps


def train(
    recipe_name: str,
    options: typing.Mapping[str, typing.Any] | None = None,
    settings: typing.Mapping[str, typing.Any] | None = None,
    verbose: int = 0,
    *,
    tags: dict[str, str] | None = None,
    callbacks: typing.Sequence[typing.Any] = (),
    evaluate: bool = True,
) -> RunResult:
    """Run a recipe end to end and log it to MLflow.

    Args:
        recipe_name: a registered recipe (`zoo train --help` lists them).
        options: config fields, e.g. {"epochs": 5, "data": "table.csv", "target": "y"}.
        settings: `--set` pairs: config fields or model hyperparameters.
        verbose: Keras `fit` verbosity (0 silent, 2 one line per epoch).
        tags: extra tags of the MLflow run (`zoo tune` nests a trial under its study with
            `mlflow.parentRunId`).
        callbacks: extra Keras callbacks; they see each epoch's logs after the recipe's own
            callbacks, before early stopping and the MLflow metrics.
        evaluate: False for a search trial: the test split stays untouched (no `test_*` metrics
            and none of the recipe's artifacts, which describe test predictions); the run still
            logs params, datasets, per-epoch metrics, the learning curve and the model.

    Returns:
        `RunResult` with the MLflow run id, the trained model and the test metrics.

    Raises:
        ZooError: for bad input, before an MLflow run is started where it can be checked early.
        zoo.faults.Interrupted: on SIGINT/SIGTERM; the run is KILLED, its checkpoint kept.
        zoo.faults.Diverged: on a NaN or infinite loss; the run is FAILED, its checkpoint kept.
    """
    from zoo import devices

    devices.split_cpu_from_env()
    recipe = get_recipe(recipe_name)
    config, overrides = make_config(recipe, options, settings)
    if config.register and not evaluate:
        raise ZooError("--register needs the test metrics that a run without evaluation does not compute.")
    return _run(recipe, config, overrides, verbose, extra_tags=tags, extra_callbacks=callbacks, evaluate=evaluate)


def resume(run_id: str, tracking_uri: str | None = None, verbose: int = 0) -> RunResult:
    """Continue an interrupted run in the same MLflow run, from its last checkpoint.

    Raises:
        ZooError: for an unknown run, a finished run, or a run without a checkpoint.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from zoo import devices, faults

    devices.split_cpu_from_env()
    uri = tracking.configure(tracking_uri)
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        raise ZooError(f"No MLflow run '{run_id}' in {uri}. Check the run id and --tracking-uri.") from None
    if run.info.status == "FINISHED":
        raise ZooError(f"Run {run_id} already FINISHED; there is nothing to resume.")
    folder = run.data.tags.get(CHECKPOINT_TAG)
    if not faults.has_checkpoint(folder):
        raise ZooError(
            f"Run {run_id} has no checkpoint (looked in {folder}); it stopped before its first epoch "
            f"ended. Start it again with `zoo train {run.data.tags.get('zoo.recipe', 'RECIPE')}`."
        )
    import yaml

    saved = yaml.safe_load(mlflow.artifacts.load_text(f"{run.info.artifact_uri}/{CONFIG_FILE}"))
    recipe = get_recipe(saved["recipe"])
    options = {k: v for k, v in saved["config"].items() if v is not None and k in config_fields(recipe.Config)}
    options["tracking_uri"] = tracking_uri
    config, _ = make_config(recipe, options)
    overrides = {
        k: registry.coerce(k, v, registry.info(saved["model"]).hyperparameters[k].annotation)
        for k, v in saved.get("overrides", {}).items()
    }
    # has_checkpoint() found the folder, so the tag holds its path.
    return _run(recipe, config, overrides, verbose, resume_from=(run, str(folder)))


CHECKPOINT_TAG = "zoo.checkpoint"
RESUME_TAG = "zoo.resume"
CONFIG_FILE = "config.yaml"


def _checkpoint_root(config: typing.Any) -> str:
    return os.path.abspath(config.checkpoint_dir or os.environ.get("ZOO_CHECKPOINT_DIR") or "zoo-checkpoints")


def _run(
    recipe: Recipe,
    config: typing.Any,
    overrides: dict[str, typing.Any],
    verbose: int,
    resume_from: tuple[typing.Any, str] | None = None,
    extra_tags: dict[str, str] | None = None,
    extra_callbacks: typing.Sequence[typing.Any] = (),
    evaluate: bool = True,
) -> RunResult:
    import keras
    import mlflow

    from zoo import devices, faults

    tracking.configure(config.tracking_uri)
    tracking.check_run_options(config.register, config.system_metrics)
    _check_writable(_checkpoint_root(config), "--checkpoint-dir")
    keras.utils.set_random_seed(config.seed)

    data = recipe.load_data(config)
    strategy = devices.select_strategy(config.devices)
    replicas = strategy.num_replicas_in_sync
    global _replicas
    _replicas = replicas
    if config.batch_size % replicas:
        # Keras cannot start `fit` when a global batch splits unevenly over the replicas.
        raise ZooError(
            f"--batch-size {config.batch_size} does not split evenly over {replicas} replicas; "
            f"use a multiple of {replicas}."
        )
    model_name = recipe.model_name(config)
    recipe.check_overrides(config, data, overrides)
    hyperparameters = {**recipe.model_overrides(config, data), **overrides}
    previous_policy = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(config.precision)
    try:
        with strategy.scope():
            model = registry.get(model_name, **hyperparameters)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    if config.jit and replicas > 1:
        # XLA under MirroredStrategy fails on CPU replicas ("resource located in device CPU:1").
        warnings.warn("--jit is ignored with several replicas; training runs without XLA.", stacklevel=2)
    elif config.jit:
        model.jit_compile = True
    strategy_name, replicas = devices.describe(strategy)
    summary = RunSummary(recipe.name, model_name, data.spec.get("name") or "", devices.device_label(strategy))

    tags = {
        "zoo.technique": recipe.technique,
        "zoo.recipe": recipe.name,
        "zoo.model": model_name,
        "zoo.version": zoo.__version__,
        "zoo.backend": backends.current(),
        **(extra_tags or {}),
    }
    commit = tracking.git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    experiment = config.experiment or "zoo"
    resumed_run = resume_from[0] if resume_from else None
    with (
        devices.without_graph_passes(*recipe.graph_passes_off),
        faults.signals_as_exceptions(),
        tracking.active_run(
            experiment,
            config.run_name,
            tags,
            system_metrics=config.system_metrics,
            resume=resumed_run,
            name_prefix=summary.name_prefix(),
        ) as run,
    ):
        run_id = run.info.run_id
        folder = resume_from[1] if resume_from else os.path.join(_checkpoint_root(config), run_id)
        if not resume_from:
            _log_run_description(recipe, config, model_name, hyperparameters, overrides, data, strategy_name, replicas)
            mlflow.set_tag(CHECKPOINT_TAG, folder)
            mlflow.set_tag(tracking.DESCRIPTION_TAG, summary.describe())
        if evaluate:
            # A search trial is re-run by `zoo tune` itself; resumed by `zoo train` it would touch the test split.
            mlflow.set_tag(RESUME_TAG, f"zoo train --resume {run_id}")

        early_stopping = None
        if recipe.monitor and data.validation is not None and config.patience:
            early_stopping = faults.ResumableEarlyStopping(
                monitor=recipe.monitor, patience=config.patience, restore_best_weights=True
            )
        initial_epoch = 0
        if resume_from:
            with strategy.scope():
                initial_epoch = faults.restore(model, folder, early_stopping)
        callbacks = list(recipe.callbacks(model, data, config)) + list(extra_callbacks) + [faults.StopOnNaN()]
        if early_stopping is not None:
            callbacks.append(early_stopping)
        # Last, so that the checkpoint holds the early-stopping state of the epoch it logs.
        callbacks.append(faults.EpochCheckpoint(folder, tracking.log_epoch_metrics, early_stopping))

        train_batches, steps = training_batches(
            data.train, data.num_train, config.batch_size, config.seed, initial_epoch
        )
        started = time.perf_counter()
        history = model.fit(
            train_batches,
            steps_per_epoch=steps,
            initial_epoch=initial_epoch,
            validation_data=None if data.validation is None else batch(data.validation, config.batch_size),
            epochs=config.epochs,
            callbacks=callbacks,
            verbose=verbose,
            # Batches come shuffled by `training_batches` (seeded, resumable); Keras would only warn
            # that it cannot shuffle a tf.data.Dataset itself.
            shuffle=False,
        )
        train_seconds = time.perf_counter() - started

        metrics = recipe.evaluate(model, data, config) if evaluate else {}
        metrics["train_seconds"] = train_seconds
        # history.epoch, not the length of a "loss" series: a GAN reports two losses and no "loss".
        metrics["epochs_trained"] = initial_epoch + len(history.epoch)
        tracking.flush_metrics()
        mlflow.log_metrics(metrics)
        mlflow.set_tag(tracking.DESCRIPTION_TAG, summary.describe(metrics, recipe.main_metric))
        curves = tracking.metric_histories(run_id, history.history) if resume_from else history.history
        if curves:
            tracking.log_figure(tracking.learning_curve(curves), "learning_curve.png")
        if evaluate:
            recipe.log_artifacts(model, data, config)
        model_info = recipe.log_model(model, data)
        if config.register:
            tracking.register_model(model_info, config.register, metrics, recipe.main_metric)
        if config.output:
            save(model, config.output, {"recipe": recipe.name, "run_id": run_id, "metrics": metrics})
    faults.remove(folder)
    return RunResult(run_id, model, metrics, history.history, config)


@dataclasses.dataclass
class RunSummary:
    """What a run trained, where: its default name and the description shown in the MLflow UI."""

    recipe: str
    model: str
    dataset: str
    device: str

    def name_prefix(self) -> str:
        """`cnn-digits`, or `cnn-mlp_image-digits` when the recipe trains another model than its own."""
        parts = [self.recipe] + ([self.model] if self.model != self.recipe else []) + [self.dataset]
        return "-".join(part.replace(" ", "_") for part in parts if part)[:200]

    def describe(self, metrics: dict[str, float] | None = None, preferred: str | None = None) -> str:
        """The run's description (`mlflow.note.content`): recipe, dataset, model, device, headline metric."""
        text = f"`zoo train {self.recipe}`: model `{self.model}` on `{self.dataset or 'its data'}`, {self.device}."
        metrics = metrics or {}
        metric = tracking.main_metric(metrics, preferred)
        if metric:
            text += f" {metric} = {metrics[metric]:.4g}."
        return text


def _log_run_description(
    recipe: Recipe,
    config: typing.Any,
    model_name: str,
    hyperparameters: dict[str, typing.Any],
    overrides: dict[str, typing.Any],
    data: Data,
    strategy_name: str,
    replicas: int,
) -> None:
    """Params, the config file, structured hyperparameters and datasets: once per run."""
    import mlflow

    resolved = registry.resolve(model_name, hyperparameters)
    # Structured hyperparameters (a feature spec) would flood the params table: files instead.
    structured = {k: v for k, v in resolved.items() if isinstance(v, dict)}
    resolved = {k: v for k, v in resolved.items() if k not in structured}
    params = {k: v for k, v in dataclasses.asdict(config).items() if k not in RUN_OPTIONS}
    params.update({"recipe": recipe.name, "model": model_name, "strategy": strategy_name, "replicas": replicas})
    params["backend"] = backends.current()
    tracking.log_params(
        tracking.flatten(params)
        | tracking.flatten(resolved, prefix="model.")
        | tracking.flatten(data.spec, prefix="data.")
    )
    mlflow.log_dict(
        _plain(
            {
                "recipe": recipe.name,
                "config": dataclasses.asdict(config),
                "model": model_name,
                "overrides": overrides,
                "hyperparameters": resolved | structured,
                "data": data.spec,
            }
        ),
        CONFIG_FILE,
    )
    for key, value in structured.items():
        mlflow.log_dict(_plain(value), f"{key}.json")
    for dataset, context in data.mlflow_datasets:
        mlflow.log_input(dataset, context=context)


def _plain(value: typing.Any) -> typing.Any:
    """Tuples to lists, numpy scalars to Python: what YAML and JSON can write plainly."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def _check_writable(folder: str, option: str) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise ZooError(f"Cannot create the {option} folder {folder}: {error.strerror}. Choose another.") from None
    if not os.access(folder, os.W_OK):
        raise ZooError(f"The {option} folder {folder} is not writable. Choose another.")


def save(model: typing.Any, folder: str, info: dict[str, typing.Any]) -> None:
    """Save `model.keras` and `run.json` into `folder` (created if needed)."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise ZooError(f"Cannot create the --output folder {folder}: {error.strerror}.") from None
    model.save(os.path.join(folder, "model.keras"))
    with open(os.path.join(folder, "run.json"), "w") as handle:
        json.dump(info, handle, indent=2)
