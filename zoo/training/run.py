"""The run loop: `train` and `resume` take a recipe from its config to a finished MLflow run.

Seeds, device strategy, the model, early stopping and checkpoints, `fit`, the final test
evaluation, then metrics, the learning curve, the model and its registration. A new step of every
run is called from `_run` here; its code goes in the module of its concern (see the package
docstring of `zoo.training`).
"""

import contextlib
import dataclasses
import functools
import os
import time
import typing
import warnings

import zoo
from zoo import backends, leftovers, registry, status, tracking
from zoo.errors import ZooError
from zoo.tracking import heartbeat
from zoo.tracking import view as tracking_view
from zoo.training import baselines, budgets, devices, finetune, outputs, processes
from zoo.training.catalog import get_recipe
from zoo.training.config import config_fields, make_config
from zoo.training.description import CONFIG_FILE, RunSummary, log_run_description
from zoo.training.pipelines import batch, training_batches
from zoo.training.recipe import Recipe

CHECKPOINT_TAG = "zoo.checkpoint"
RESUME_TAG = "zoo.resume"


@dataclasses.dataclass
class RunResult:
    """What a finished run gives back: `zoo.train(...)` returns it.

    Attributes:
        run_id: the MLflow run id.
        model: the trained `keras.Model` (best weights when early stopping restored them).
        metrics: the final `test_*` metrics, `train_seconds` and `epochs_trained`.
        history: Keras' per-epoch history (`loss`, `val_*`, ...).
        config: the resolved recipe config (a `RecipeConfig` subclass).
        learned: whether the network beat its task's trivial baseline on the test split
            (`zoo.training.baselines`); None when the run has no baseline or no test metrics.
        monitor: the validation metric early stopping watched (`zoo.training.stopping`), or None.
    """

    run_id: str
    model: typing.Any
    metrics: dict[str, float]
    history: dict[str, list[float]]
    config: typing.Any
    learned: bool | None = None
    monitor: str | None = None


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
    devices.split_cpu_from_env()
    processes.initialize_from_env()
    recipe = get_recipe(recipe_name)
    config, overrides = make_config(recipe, options, settings)
    if config.register and not evaluate:
        raise ZooError("`register` needs the test metrics that a run without evaluation does not compute.")
    # What the caller set wins over a budget that follows the data (`zoo.training.budgets`).
    explicit = set(options or {}) | set(settings or {})
    return _run(
        recipe,
        config,
        overrides,
        verbose,
        extra_tags=tags,
        extra_callbacks=callbacks,
        evaluate=evaluate,
        explicit=explicit,
    )


def resume(run_id: str, tracking_uri: str | None = None, verbose: int = 0) -> RunResult:
    """Continue an interrupted run in the same MLflow run, from its last checkpoint.

    Raises:
        ZooError: for an unknown run, a finished run, or a run without a checkpoint.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from zoo import faults

    devices.split_cpu_from_env()
    processes.initialize_from_env()
    uri = tracking.configure(tracking_uri)
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        raise ZooError(f"No MLflow run '{run_id}' in {uri}. Check the run id and `tracking_uri`.") from None
    if run.info.status == "FINISHED":
        raise ZooError(f"Run {run_id} already FINISHED; there is nothing to resume.")
    folder = run.data.tags.get(CHECKPOINT_TAG)
    if not faults.has_checkpoint(folder):
        raise ZooError(
            f"Run {run_id} has no checkpoint (looked in {folder}); it stopped before its first epoch "
            f"ended. Start it again with `zoo train {run.data.tags.get('zoo.recipe', 'RECIPE')}`."
        )
    try:
        _, problems = faults.good_checkpoint(folder)
    except ZooError as error:
        # Refused before the run is reopened: it stays KILLED (or FAILED), as it was.
        raise ZooError(
            f"Run {run_id} cannot be resumed: {error} Start it again with "
            f"`zoo train {run.data.tags.get('zoo.recipe', 'RECIPE')}`."
        ) from None
    if problems:
        import sys

        print(
            f"zoo: warning: skipped a corrupt checkpoint of run {run_id} ({'; '.join(problems)}); "
            "resuming from the epoch before it.",
            file=sys.stderr,
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


def build_model(
    model_name: str,
    hyperparameters: dict[str, typing.Any],
    precision: str = "float32",
    jit: bool = False,
    strategy: typing.Any = None,
) -> typing.Any:
    """Build and compile a registered model as a run does: under the run's precision policy, inside
    the strategy's scope, with its step compiled by XLA when `jit` is on.

    `make_config` has refused a `precision` and `jit` the backend cannot train with
    (`zoo.backends.check_compute`).

    Args:
        model_name: a registered model.
        hyperparameters: its hyperparameters (the recipe's overrides and the user's `--set`).
        precision: float32, mixed_float16 or mixed_bfloat16; the process's policy is restored after.
        jit: compile the training step with XLA.
        strategy: from `devices.select_strategy` (None: the default placement).

    Returns:
        The compiled `keras.Model`.
    """
    import keras

    previous_policy = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(precision)
    try:
        with devices.scope(strategy) if strategy is not None else contextlib.nullcontext():
            model = registry.get(model_name, **hyperparameters)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    replicas = devices.describe(strategy)[1] if strategy is not None else 1
    if jit and replicas > 1:
        # XLA under MirroredStrategy fails on CPU replicas ("resource located in device CPU:1").
        warnings.warn("--jit is ignored with several replicas; training runs without XLA.", stacklevel=2)
    elif jit:
        model.jit_compile = True
    return model


def _run(
    recipe: Recipe,
    config: typing.Any,
    overrides: dict[str, typing.Any],
    verbose: int,
    resume_from: tuple[typing.Any, str] | None = None,
    extra_tags: dict[str, str] | None = None,
    extra_callbacks: typing.Sequence[typing.Any] = (),
    evaluate: bool = True,
    explicit: typing.Collection[str] | None = None,
) -> RunResult:
    import keras

    from zoo import faults, plots
    from zoo.tracking import mlflow
    from zoo.training import stopping

    config = processes.private_outputs(config)
    tracking.configure(config.tracking_uri)
    tracking.check_run_options(config.register, config.system_metrics)
    outputs.check_writable(outputs.checkpoint_root(config), "`checkpoint_dir`")
    outputs.check_output(config.output)
    keras.utils.set_random_seed(config.seed)

    # Before the data: a model the recipe cannot train is refused without loading anything.
    model_name = recipe.model_name(config)
    status.step("loading data")
    data = recipe.load_data(config)
    main_metric = recipe.ranking_metric(data)
    # A resumed run (explicit None) keeps the epochs and patience it started with.
    given = config_fields(recipe.Config) if explicit is None else explicit
    config, budget = budgets.apply(recipe.budget, config, data.num_train, given, recipe.name)
    strategy = devices.select_strategy(config.devices)
    strategy_name, replicas = devices.describe(strategy)
    if config.batch_size % replicas:
        # Keras cannot start `fit` when a global batch splits unevenly over the replicas.
        raise ZooError(
            f"`batch_size={config.batch_size}` does not split evenly over {replicas} replicas; "
            f"use a multiple of {replicas}."
        )
    recipe.check_overrides(config, data, overrides)
    hyperparameters = {**recipe.model_overrides(config, data), **overrides}
    status.step(f"building the model ({model_name})")
    model = build_model(model_name, hyperparameters, config.precision, config.jit, strategy)
    transferred = None
    if config.init_from and not resume_from:
        transferred = finetune.start_from(model, config.init_from, config.tracking_uri, finetune.labels_of(data.spec))
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
    experiment = config.experiment
    parent = tracking.user_run()
    if parent is not None:
        summary.parent = tracking.describe_parent(parent)
    # Process 0 continues the run itself; the others, which never write to it, open a private one
    # and restore from process 0's checkpoint all the same.
    resumed_run = resume_from[0] if resume_from and processes.is_chief() else None
    with (
        tracking.autolog_paused(),
        devices.run_scope(strategy),
        devices.without_graph_passes(*recipe.graph_passes_off),
        faults.signals_as_exceptions(),
        tracking.EpochMetrics() as epoch_metrics,
        tracking.active_run(
            experiment,
            config.run_name,
            tags,
            system_metrics=config.system_metrics,
            resume=resumed_run,
            name_prefix=summary.name_prefix(),
            metrics=epoch_metrics,
        ) as run,
    ):
        # Process 0's run: the others hold a private one (`processes.private_outputs`).
        run_id = processes.share_run_id(run.info.run_id)
        folder = (
            resume_from[1] if resume_from and resumed_run else os.path.join(outputs.checkpoint_root(config), run_id)
        )
        if not resumed_run:
            log_run_description(recipe, config, model_name, hyperparameters, overrides, data, strategy_name, replicas)
            if processes.count() > 1:
                mlflow.log_param("processes", processes.count())
            if budget:
                mlflow.log_param("budget", budget)
            mlflow.set_tag(CHECKPOINT_TAG, folder)
            mlflow.set_tag(tracking.DESCRIPTION_TAG, summary.describe())
        frozen: list[str] = []
        if transferred is not None:
            if config.freeze:
                with devices.scope(strategy):
                    frozen = finetune.freeze(model, str(config.freeze))
            finetune.log(transferred, frozen)
        if evaluate:
            # A search trial is re-run by `zoo tune` itself; resumed by `zoo train` it would touch the test split.
            mlflow.set_tag(RESUME_TAG, f"zoo train --resume {run_id}")

        early_stopping = None
        monitors = recipe.monitors(data)
        if monitors and data.validation is not None and config.patience:
            early_stopping = stopping.MetricEarlyStopping(monitors, config.patience, recipe.warm_up)
        initial_epoch = 0
        if resume_from:
            with devices.scope(strategy):
                initial_epoch = faults.restore(model, resume_from[1], early_stopping)
        # What runs beside `fit` runs on each process alone (`devices.locally`): nothing in it is collective.
        with devices.locally(model):
            prepared = recipe.prepare(model, data, config)
        callbacks = list(recipe.callbacks(model, data, config, prepared)) + list(extra_callbacks) + [faults.StopOnNaN()]
        callbacks.append(heartbeat.epoch_callback())
        if resume_from:
            callbacks = faults.resume_random_state(resume_from[1]) + callbacks
        if frozen:
            callbacks.insert(0, finetune.unfreeze_callback(model, frozen, config.freeze_epochs))
        if early_stopping is not None:
            callbacks.append(early_stopping)
            if config.lr_patience:
                callbacks.append(stopping.PlateauLearningRate(early_stopping, config.lr_patience))
        # Last, so that the checkpoint holds the early-stopping state of the epoch it logs. It logs
        # from its writer thread, where MLflow's active run (thread-local) is unknown: name it (this
        # process's own run, which is a private one on processes other than 0).
        checkpoint = faults.EpochCheckpoint(
            folder, functools.partial(epoch_metrics.log_epoch, run_id=run.info.run_id), early_stopping
        )
        callbacks.append(checkpoint)

        train_batches, steps = training_batches(
            data.train, data.num_train, config.batch_size, config.seed, initial_epoch, data.streamed
        )
        validation = None
        if data.validation is not None:
            validation = batch(data.validation, config.batch_size, replicas, streamed=data.streamed)
        started = time.perf_counter()
        status.step(f"training for up to {config.epochs} epochs")
        try:
            with _explained_input_errors(recipe, data):
                history = model.fit(
                    train_batches,
                    steps_per_epoch=steps,
                    initial_epoch=initial_epoch,
                    validation_data=validation,
                    epochs=config.epochs,
                    callbacks=callbacks,
                    verbose=verbose,
                    # Batches come shuffled by `training_batches` (seeded, resumable); Keras would only warn
                    # that it cannot shuffle a tf.data.Dataset itself.
                    shuffle=False,
                )
        except BaseException:
            # A signal or a NaN: the last epoch's checkpoint and metrics land before the run ends.
            checkpoint.wait(raise_errors=False)
            raise
        train_seconds = time.perf_counter() - started

        baseline = None
        if evaluate:
            status.step("evaluating on the test split")
        with devices.locally(model), _explained_input_errors(recipe, data):
            evaluation = recipe.evaluate(model, data, config, prepared) if evaluate else None
            if evaluation is not None:
                baseline = recipe.baseline(model, data, config, evaluation, prepared)
        metrics = dict(evaluation.metrics) if evaluation is not None else {}
        metrics["train_seconds"] = train_seconds
        # history.epoch, not the length of a "loss" series: a GAN reports two losses and no "loss".
        metrics["epochs_trained"] = initial_epoch + len(history.epoch)
        epoch_metrics.flush()
        mlflow.log_metrics(metrics)
        mlflow.set_tag(tracking.DESCRIPTION_TAG, summary.describe(metrics, main_metric))
        curves = tracking.metric_histories(run_id, history.history) if resumed_run else history.history
        if curves:
            tracking.log_figure(plots.learning_curve(curves), "learning_curve.png")
        status.step("logging the model and its figures to MLflow")
        with devices.locally(model):
            if evaluation is not None:
                recipe.log_artifacts(model, data, config, evaluation, prepared)
            model_info = recipe.log_model(model, data)
        # After the artifacts: a recipe's own description (a forecast's verdict) gets the sentence appended.
        learned = baselines.report(baseline, metrics, run.info.run_id) if processes.is_chief() else None
        if evaluation is not None:
            tracking_view.show_metric(run.info.experiment_id, tracking.main_metric(metrics, main_metric))
        if config.register:
            tracking.register_model(model_info, config.register, metrics, main_metric)
        if config.output:
            outputs.save(
                model, config.output, {"recipe": recipe.name, "run_id": run_id, "metrics": metrics, "learned": learned}
            )
    faults.remove(folder)
    leftovers.tidy_finished_run(run_id, folder, outputs.checkpoint_root(config))
    monitor = early_stopping.monitor if early_stopping is not None else None
    return RunResult(run_id, model, metrics, history.history, config, learned, monitor)


@contextlib.contextmanager
def _explained_input_errors(recipe: Recipe, data: typing.Any) -> typing.Iterator[None]:
    """Re-raise a failure that bad data caused as the recipe's one-line error (`Recipe.explain_input_error`)."""
    try:
        yield
    except Exception as error:
        explained = recipe.explain_input_error(data, error)
        if explained is None:
            raise
        raise explained from None
