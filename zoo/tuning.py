"""Hyperparameter search over a recipe (`zoo tune`), on Optuna, with every trial an MLflow run.

A study is one Optuna study (TPE sampler, median or successive-halving pruner, RDB storage) and one
MLflow parent run; each trial is an ordinary training run of the recipe nested under that parent
(tag `mlflow.parentRunId`), so trials sit in the MLflow UI next to `zoo train` runs with the same
params, per-epoch metrics, datasets, learning curve and model. Trials never touch the test split:
they are ranked on a per-epoch validation metric (the recipe's main metric on the validation split
by default), reported each epoch for pruning. At the end the best configuration is trained once
more as a complete run, the only one that is evaluated on the test split (and, with `register`,
registered as champion or challenger the way `zoo train --register` does).

    zoo tune mlp --trials 20
    zoo tune cnn --trials 20 --space learning_rate=log:1e-4..1e-2 --space filters=choice:16,32|32,64
    zoo tune mlp --trials 10 --study tabular --storage sqlite:///optuna.db   # again: continues it

MLflow record of a study:
    parent run: tags `zoo.study` (the study name), `zoo.tune` = `study`, `zoo.tune.space`,
        `zoo.tune.sampler`, `zoo.tune.pruner`, `zoo.tune.metric`, `zoo.tune.direction`; the best
        trial's values as tags `best.<key>` and in `best_params.json`; metrics `best_<metric>`
        (step: trials finished) and the final run's `test_*`; `optimization_history.png`,
        `param_importances.png`.
    trial runs: tags `zoo.tune` = `trial`, `zoo.study`, `zoo.trial` (the Optuna number) and
        `zoo.trial_state`: COMPLETE (status FINISHED), PRUNED (status KILLED, with
        `zoo.pruned` saying at which epoch and value) or FAIL (status FAILED or KILLED).
    final run: tag `zoo.tune` = `final`, trained with the best trial's configuration.
"""

import contextlib
import dataclasses
import datetime
import json
import math
import os
import re
import sys

from zoo.errors import ZooError, closest
from zoo.status import step as status_step

KINDS = ("float", "log", "int", "intlog", "choice")
PRUNERS = ("median", "halving", "none")
STUDY_TAG = "zoo.study"
ROLE_TAG = "zoo.tune"
TRIAL_TAG = "zoo.trial"
STATE_TAG = "zoo.trial_state"
PARENT_TAG = "mlflow.parentRunId"
DEFAULT_STORAGE = "sqlite:///optuna.db"
# Random trials before TPE models the results, and complete trials before the median pruner prunes.
STARTUP_TRIALS = 5
# Options that describe where a study's runs go, not how its trials train: they may differ
# between two invocations of one study.
_PLACEMENT = ("experiment", "run_name", "tracking_uri", "output", "register", "system_metrics", "checkpoint_dir")
_NUMBER = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"


# === Search spaces ===


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched key: a float or int range (uniform or log) or a list of choices.

    Choices stay strings for Optuna (which stores only plain scalars) and are parsed into the
    hyperparameter's type like a `--set` value, so `choice:16,32|32,64` searches tuples.
    """

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple = ()

    @property
    def spec(self):
        if self.kind == "choice":
            return "choice:" + "|".join(self.choices)
        prefix = "" if self.kind == "float" else f"{self.kind}:"
        return f"{prefix}{self.low:g}..{self.high:g}"

    def values(self):
        """The values worth checking: both ends of a range, or every choice."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def suggest(self, trial):
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind in ("int", "intlog"):
            return trial.suggest_int(self.key, self.low, self.high, log=self.kind == "intlog")
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log")


def parse_spec(key, spec):
    """Parse one search-space spec.

    Forms: `LOW..HIGH` (float, uniform), `log:LOW..HIGH` (float, log-uniform), `int:LOW..HIGH`,
    `intlog:LOW..HIGH`, `choice:A|B|C` (each choice as a `--set` value, e.g. `16,32|32,64`).

    Raises:
        ZooError: for an unknown kind, a malformed or empty range, or no choices.
    """
    example = "learning_rate=log:1e-4..1e-2, dropout=0..0.5, hidden_units=int:16..256, filters=choice:16,32|32,64"
    kind, sep, body = str(spec).strip().partition(":")
    if not sep:
        kind, body = "float", kind
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise ZooError(f"Unknown search-space kind '{kind}' in {key}={spec}; use {', '.join(KINDS)} (e.g. {example}).")
    if kind == "choice":
        choices = tuple(part.strip() for part in body.split("|"))
        if not body.strip() or any(not choice for choice in choices):
            raise ZooError(f"Empty choice in {key}={spec}: separate values with '|', e.g. filters=choice:16,32|32,64.")
        if len(set(choices)) != len(choices):
            raise ZooError(f"Repeated choice in {key}={spec}: list each value once.")
        return Dimension(key, kind, choices=choices)
    match = re.fullmatch(rf"\s*({_NUMBER})\s*\.\.\s*({_NUMBER})\s*", body)
    if not match:
        raise ZooError(f"Malformed range in {key}={spec}: expected [KIND:]LOW..HIGH, e.g. {example}.")
    low, high = float(match.group(1)), float(match.group(4))
    if kind in ("int", "intlog"):
        if not (low.is_integer() and high.is_integer()):
            raise ZooError(f"{key}={spec}: an int range needs whole numbers, e.g. {key}=int:16..256.")
        low, high = int(low), int(high)
    if not low < high:
        raise ZooError(f"Empty range in {key}={spec}: LOW must be below HIGH (for a fixed value, set `{key}=...`).")
    if kind in ("log", "intlog") and low <= 0:
        raise ZooError(f"{key}={spec}: a log range needs LOW > 0 (e.g. {key}=log:1e-4..1e-2).")
    return Dimension(key, kind, low, high)


def parse_space(space):
    """Parse `KEY=SPEC` strings (or a {key: spec} dict) into {key: Dimension}, in order.

    Raises:
        ZooError: for an item without '=', a repeated key or a bad spec.
    """
    if isinstance(space, dict):
        items = list(space.items())
    else:
        items = []
        for item in space:
            key, sep, spec = str(item).partition("=")
            if not sep or not key.strip():
                raise ZooError(f"`space` items are KEY=SPEC, e.g. learning_rate=log:1e-4..1e-2. Received: {item}")
            items.append((key.strip(), spec))
    dimensions = {}
    for key, spec in items:
        if key in dimensions:
            raise ZooError(f"`space` names '{key}' twice; give each key one spec.")
        dimensions[key] = parse_spec(key, spec)
    return dimensions


def check_space(recipe, config, dimensions, settings=(), model_overrides=None, model_name=None):
    """Check that every key is a hyperparameter of the recipe's model or a recipe option, that
    every value of the space has the key's type, and that the model builds at the space's ends.

    Args:
        recipe: the `training.Recipe`.
        config: the recipe config (the fixed options of every trial).
        dimensions: {key: Dimension}.
        settings: keys fixed with `--set` (they may not be searched too).
        model_overrides: hyperparameters the data fixes (shapes, classes): the model is built with
            them at the lower and at the upper end of every range (and with each choice); None
            builds it with the card's defaults.
        model_name: the model searched (default: the recipe's for `config`).

    Raises:
        ZooError: naming the key and what it accepts.
    """
    from zoo import registry, training

    model_name = model_name or recipe.model_name(config)
    card = registry.info(model_name)
    fields = training.config_fields(recipe.Config)
    searchable = [name for name in fields if name not in _PLACEMENT and name != "epochs"]
    fixed_by_data = set(model_overrides or {})
    for key, dimension in dimensions.items():
        if key in settings:
            raise ZooError(f"'{key}' is both searched (`space`) and fixed (`settings`); drop one of them.")
        if key in card.hyperparameters:
            if key in fixed_by_data:
                raise ZooError(f"'{key}' of model '{model_name}' comes from the data; it cannot be searched.")
            annotation = card.hyperparameters[key].annotation
        elif key in searchable:
            annotation = fields[key]
        else:
            known = list(card.hyperparameters) + searchable
            raise ZooError(
                f"Unknown search-space key '{key}' for recipe '{recipe.name}'.{closest(key, known)} "
                f"Searchable: model '{model_name}' hyperparameters {', '.join(card.hyperparameters)}; "
                f"recipe options {', '.join(searchable)}."
            )
        for value in dimension.values():
            try:
                registry.coerce(key, value, annotation)
            except ZooError:
                raise ZooError(
                    f"{key}={dimension.spec} does not fit '{key}' ({registry._type_name(annotation)}); "
                    f"`zoo info {model_name}` shows its type."
                ) from None
    check_model_values(model_name, {k: d for k, d in dimensions.items() if k in card.hyperparameters}, model_overrides)


def check_model_values(model_name, dimensions, model_overrides=None):
    """Build the model at the lower and at the upper end of every range, and with each choice.

    Raises:
        ZooError: naming the values that the builder refuses (out of its range, say).
    """
    from zoo import registry

    if not dimensions:
        return
    corners = max(len(dimension.values()) for dimension in dimensions.values())
    for index in range(corners):
        values = {key: d.values()[min(index, len(d.values()) - 1)] for key, d in dimensions.items()}
        try:
            registry.get(model_name, **dict(model_overrides or {}), **values)
        except ZooError as error:
            shown = ", ".join(f"{key}={value}" for key, value in values.items())
            raise ZooError(
                f"The search space reaches a value model '{model_name}' refuses ({shown}): {error}"
            ) from None


def default_space(model_name):
    """The {key: Dimension} declared on the model's card (`search_space=` of `@register`)."""
    from zoo import registry

    card = registry.info(model_name)
    if not card.search_space:
        raise ZooError(
            f"Model '{model_name}' declares no default search space; pass a `space` of KEY=SPEC items "
            f"(its hyperparameters: {', '.join(card.hyperparameters)})."
        )
    return parse_space(card.search_space)


# === Metrics ===


def default_metric(recipe, names, data=None):
    """The recipe's main metric (on `data` when given) on the validation split, among the per-epoch `names`."""
    main = recipe.ranking_metric(data)
    base = main[len("test_") :] if main and main.startswith("test_") else None
    candidates = ([f"val_{base}", base] if base else []) + ["val_accuracy", "val_loss", "loss"]
    return next(name for name in candidates if name in names)


def check_metric(metric, names, recipe_name):
    if metric in names:
        return
    if metric.startswith("test_"):
        raise ZooError(
            f"`metric={metric}`: the test split stays untouched until the search ends; optimize the "
            f"validation metric val_{metric[len('test_') :]} instead."
        )
    raise ZooError(
        f"Recipe '{recipe_name}' does not log the metric '{metric}' each epoch.{closest(metric, names)} "
        f"It logs: {', '.join(names)}."
    )


def objective_value(history, metric, monitor, early_stopping):
    """The metric at the epoch whose weights the trained model keeps.

    With early stopping (`restore_best_weights`), that is the epoch of the best monitored value,
    not the last one; without, the last epoch.
    """
    from zoo import tracking

    values = history.get(metric) or []
    if not values:
        return float("nan")
    index = len(values) - 1
    watched = history.get(monitor) if early_stopping and monitor else None
    if watched and len(watched) == len(values):
        finite = [(v if math.isfinite(v) else None) for v in watched]
        candidates = [i for i, v in enumerate(finite) if v is not None]
        if candidates:
            better = max if tracking.greater_is_better(monitor) else min
            index = better(candidates, key=lambda i: finite[i])
    return float(values[index])


# === The study ===


@dataclasses.dataclass
class TuneResult:
    """What `tune` returns.

    Attributes:
        study: the study name (`--study` continues it).
        storage: the Optuna storage URL.
        parent_run_id: the MLflow parent run of the study.
        metric, direction: what was optimized.
        best_trial: number of the best trial; best_value: its metric; best_params: its values;
            best_run_id: its MLflow run.
        final_run_id: the run that trained the best configuration again and was tested (None when
            the best trial had been tested already).
        test_metrics: that run's test metrics.
        states: {COMPLETE, PRUNED, FAIL, ...: count} over the whole study.
        epochs: epochs trained by the trials of the whole study.
        new_trials: trials this call ran.
    """

    study: str
    storage: str
    parent_run_id: str
    metric: str
    direction: str
    best_trial: int
    best_value: float
    best_params: dict
    best_run_id: str
    final_run_id: str | None
    test_metrics: dict
    states: dict
    epochs: int
    new_trials: int
    best_config: str | None = None


def tune(
    recipe,
    trials=None,
    *,
    space=None,
    metric=None,
    direction=None,
    study=None,
    storage=None,
    timeout=None,
    pruner="median",
    sampler_seed=None,
    options=None,
    settings=None,
    verbose=0,
):
    """Search a recipe's hyperparameters with Optuna and log every trial to MLflow.

    Args:
        recipe: a registered recipe.
        trials: trials this call runs (None: until `timeout`).
        space: `KEY=SPEC` strings or {key: spec} (see `parse_spec`); None: the model card's.
        metric: per-epoch metric to optimize (default: the recipe's main metric on validation).
        direction: `min` or `max` (default: from the metric's name, as `zoo compare` ranks).
        study: study name; an existing one in `storage` is continued (default: a new name).
        storage: Optuna RDB URL (default: sqlite:///optuna.db in the working directory).
        timeout: stop starting trials after this many seconds.
        pruner: `median`, `halving` (successive halving) or `none`.
        sampler_seed: seed of the TPE sampler (default: random, so that several processes on
            one study propose different values).
        options: the recipe's options for every trial (e.g. {"epochs": 5}), plus `experiment`,
            `tracking_uri`, `run_name` (of the parent) and `register` (the final run's model).
        settings: `--set` values fixed for every trial.
        verbose: Keras `fit` verbosity of the trials.

    Returns:
        A `TuneResult`.

    Raises:
        ZooError: for bad input, before the study or any MLflow run is touched.
        zoo.faults.Interrupted: on SIGINT/SIGTERM; the trial and the parent end KILLED, and the
            same call continues the study (the interrupted trial runs again).
    """
    import mlflow

    from zoo import registry, tracking, training
    from zoo.training import devices

    devices.split_cpu_from_env()
    options = dict(options or {})
    settings = {key: str(value) if isinstance(value, str) else value for key, value in (settings or {}).items()}
    register, parent_name = options.pop("register", None), options.pop("run_name", None)
    if options.pop("output", None):
        raise ZooError("zoo tune saves no `output` folder; the final run's model is in MLflow (or use `register`).")
    if trials is None and timeout is None:
        raise ZooError("Give `trials=N` or `timeout=SECONDS`: a search needs an end.")
    if trials is not None and int(trials) < 1:
        raise ZooError(f"`trials` must be at least 1. Received: {trials}")
    if timeout is not None and float(timeout) <= 0:
        raise ZooError(f"`timeout` must be positive (seconds). Received: {timeout}")
    if pruner not in PRUNERS:
        raise ZooError(f"Unknown `pruner` '{pruner}'; use {', '.join(PRUNERS)}.")
    if direction is not None and direction not in ("min", "max"):
        raise ZooError(f"`direction` takes min or max. Received: {direction}")

    # === Preflight: everything a trial could refuse, before any study or run exists ===
    recipe_obj = training.get_recipe(recipe)
    config, fixed = training.make_config(recipe_obj, options, settings)
    dimensions = parse_space(space) if space else None
    tracking.configure(config.tracking_uri)
    tracking.check_run_options(register, config.system_metrics)
    storage_url = storage or DEFAULT_STORAGE
    rdb = _open_storage(storage_url)
    import keras

    keras.utils.set_random_seed(config.seed)
    data = recipe_obj.load_data(config)
    model_name = recipe_obj.model_name(config)
    data_overrides = recipe_obj.model_overrides(config, data)
    if dimensions is None:
        dimensions = default_space(model_name)
    check_space(recipe_obj, config, dimensions, settings, data_overrides, model_name)
    recipe_obj.check_overrides(config, data, fixed)
    probe = registry.get(model_name, **data_overrides, **fixed)
    names = recipe_obj.epoch_metrics(probe, data, config)
    metric = metric or default_metric(recipe_obj, names, data)
    check_metric(metric, names, recipe_obj.name)
    direction = direction or ("max" if tracking.greater_is_better(metric) else "min")
    del probe, data

    # Short: trial runs are named `STUDY-tN`, and the MLflow UI shows about 25 characters of a name.
    study_name = study or f"{recipe_obj.name}-{datetime.datetime.now():%m%d-%H%M%S}"
    fixed_options = {k: v for k, v in options.items() if k not in _PLACEMENT}
    description = {
        "recipe": recipe_obj.name,
        "model": model_name,
        "metric": metric,
        "direction": direction,
        "space": {key: dimension.spec for key, dimension in dimensions.items()},
        "options": {k: str(v) for k, v in sorted(fixed_options.items())},
        "settings": {k: str(v) for k, v in sorted(settings.items())},
    }
    description["sampler"] = f"TPESampler(seed={sampler_seed}, n_startup_trials={STARTUP_TRIALS})"
    description["pruner"] = pruner

    # === The study, its parent run and the trials ===
    experiment = config.experiment
    import optuna

    # Our own line per trial replaces Optuna's: its coloured INFO lines ("A new study created in
    # RDB ...", one per trial, a traceback for an interrupted one) start as the study is created.
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    status_step(f"study {study_name}: tuning {recipe_obj.name} on {metric} ({direction})")
    with _lock(storage_url):
        optuna_study = _create_or_load(rdb, study_name, description, pruner, sampler_seed)
        _retry_interrupted(optuna_study)
        parent_id = _parent_run(optuna_study, experiment, parent_name, description, storage_url)
    client = mlflow.MlflowClient()
    objective = _Objective(recipe_obj, options, settings, dimensions, metric, study_name, parent_id, verbose)
    objective.early_stopping = bool(recipe_obj.monitor and config.patience)
    before = len(optuna_study.trials)
    from zoo import faults

    try:
        # SIGTERM between two trials ends the parent KILLED too, not only inside a trial's run.
        with faults.signals_as_exceptions():
            optuna_study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[objective.after_trial])
            result = _finish(
                optuna_study, parent_id, description, recipe_obj.name, options, settings, register, storage_url
            )
    except BaseException as error:
        status = "KILLED" if isinstance(error, (KeyboardInterrupt, faults.Interrupted)) else "FAILED"
        reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        with contextlib.suppress(Exception):
            client.set_tag(parent_id, tracking.FAILURE_TAG, reason[:5000])
            client.set_terminated(parent_id, status)
        raise
    finally:
        optuna.logging.set_verbosity(verbosity)
    result.new_trials = len(optuna_study.trials) - before
    return result


def _open_storage(url):
    """An Optuna RDB storage with heartbeats (a trial whose process died is failed and retried).

    Raises:
        ZooError: when the database cannot be opened.
    """
    import optuna

    from zoo.tracking import database

    engine_kwargs = {}
    if database.is_server_url(url):
        database.check(url, "study storage")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        folder = os.path.dirname(os.path.abspath(path))
        if path and not os.path.isdir(folder):
            raise ZooError(f"The folder of the study storage {url} does not exist. Create it or fix `storage`.")
        # Several processes on one SQLite file wait for each other's writes instead of failing.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    import warnings

    try:
        # Two workers first using a new database would create Optuna's tables together.
        with warnings.catch_warnings(), database.advisory_lock(url, "zoo: Optuna schema"):
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats, stable since 2.9
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=30,
                grace_period=120,
                heartbeat_stale_trial_callback=_lost_trial,
            )
    except Exception as error:  # noqa: BLE001 - SQLAlchemy's errors vary by driver; say which URL failed
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ZooError(
            f"Cannot open the study storage {_safe_url(url)} ({message[:200]}). Check `storage` "
            "(e.g. sqlite:///optuna.db or postgresql://user:password@host/db) and that the database answers."
        ) from None


def _safe_url(url):
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


def _create_or_load(storage, name, description, pruner, sampler_seed):
    import optuna

    summaries = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    if name in summaries:
        saved = summaries[name].user_attrs.get("zoo.description")
        if saved is None:
            raise ZooError(f"Study '{name}' in the storage was not made by zoo tune; choose another `study`.")
        # The sampler's seed and the pruner may change between calls; what trials are compared on may not.
        differing = [
            key for key in description if key not in ("sampler", "pruner") and saved.get(key) != description[key]
        ]
        if differing:
            key = differing[0]
            raise ZooError(
                f"Study '{name}' searched with {key} {_shown(saved.get(key))}, not {_shown(description[key])}: "
                "give the same recipe, options and space to continue it, or a new `study`."
            )
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize" if description["direction"] == "max" else "minimize",
        sampler=optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=STARTUP_TRIALS),
        pruner=_pruner(pruner),
        load_if_exists=True,
    )
    if name not in summaries:
        study.set_user_attr("zoo.description", description)
    return study


def _shown(value):
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else repr(value)


def _pruner(name):
    import optuna

    if name == "median":
        # Five complete trials before any pruning; never in a trial's first two epochs, which say little.
        return optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=2)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3)
    return optuna.pruners.NopPruner()


@contextlib.contextmanager
def _lock(storage_url):
    """Serialize the study's bookkeeping between processes sharing one storage: a lock file beside
    a SQLite storage, an advisory lock in a PostgreSQL one (workers may be on other machines)."""
    from zoo.tracking import database

    if database.is_server_url(storage_url):
        with database.advisory_lock(storage_url, "zoo: tune bookkeeping"):
            yield
        return
    if not storage_url.startswith("sqlite:///"):
        yield
        return
    from zoo import leftovers

    # On the storage file itself: an `optuna.db.zoo-lock` beside it would stay in the user's folder.
    with leftovers.file_lock(storage_url[len("sqlite:///") :]):
        yield


def _retry_interrupted(study):
    """Queue again, once, the trials that an interruption (Ctrl-C, SIGTERM) failed."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("zoo.retry_of") for t in trials}
    for trial in trials:
        if trial.state == TrialState.FAIL and trial.user_attrs.get("zoo.interrupted") and trial.number not in retried:
            study.enqueue_trial(trial.params, user_attrs={"zoo.retry_of": trial.number})


def _lost_trial(study, trial):
    """Optuna's heartbeat found `trial` RUNNING without a live process: end its run, run it again."""
    import mlflow
    import optuna

    run_id = trial.user_attrs.get("zoo.run_id")
    if run_id:
        client = mlflow.MlflowClient()
        with contextlib.suppress(Exception):
            client.set_tag(run_id, STATE_TAG, "FAIL")
            client.set_tag(run_id, "zoo.failure", "its process stopped answering (no heartbeat); the trial runs again")
            client.set_terminated(run_id, "KILLED")
    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)(study, trial)


def _parent_run(study, experiment, run_name, description, storage_url):
    """Find the study's parent run (by its `zoo.study` tag) or create it; mark it RUNNING."""
    import mlflow

    from zoo import tracking

    client = mlflow.MlflowClient()
    user_run = tracking.user_run()
    if user_run is not None:
        # Inside the caller's own run: the study is its child, in its experiment (`tracking.nesting`).
        experiment_id = tracking.experiment_of(user_run, experiment)
    else:
        experiment = experiment or tracking.DEFAULT_EXPERIMENT
        mlflow_experiment = client.get_experiment_by_name(experiment)
        experiment_id = (
            mlflow_experiment.experiment_id if mlflow_experiment else mlflow.set_experiment(experiment).experiment_id
        )
    tracking.mark_training_experiment(experiment_id)
    name = study.study_name
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{STUDY_TAG}` = '{name}' and tags.`{ROLE_TAG}` = 'study'",
        max_results=1,
    )
    if found:
        parent_id = found[0].info.run_id
        client.update_run(parent_id, status="RUNNING")
        client.set_tag(parent_id, tracking.FAILURE_TAG, "")
        return parent_id
    tags = {
        STUDY_TAG: name,
        ROLE_TAG: "study",
        "zoo.recipe": description["recipe"],
        "zoo.model": description["model"],
        "zoo.tune.space": json.dumps(description["space"]),
        "zoo.tune.sampler": description["sampler"],
        "zoo.tune.pruner": f"{type(study.pruner).__name__} ({description['pruner']})",
        "zoo.tune.metric": description["metric"],
        "zoo.tune.direction": description["direction"],
        "zoo.tune.storage": _safe_url(storage_url),
    }
    commit = tracking.git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    if user_run is not None:
        tags[PARENT_TAG] = user_run.info.run_id
        tags[tracking.DESCRIPTION_TAG] = (
            f"`zoo tune {description['recipe']}` study {name}. Nested under {tracking.describe_parent(user_run)}."
        )
    run = client.create_run(experiment_id, tags=tags, run_name=run_name or f"tune-{name}")
    parent_id = run.info.run_id
    params = {"recipe": description["recipe"], "model": description["model"], "metric": description["metric"]}
    params |= {f"space.{key}": spec for key, spec in description["space"].items()}
    params |= {f"option.{key}": value for key, value in description["options"].items()}
    params |= {f"set.{key}": value for key, value in description["settings"].items()}
    client.log_batch(parent_id, params=[mlflow.entities.Param(k, str(v)[:6000]) for k, v in params.items()])
    return parent_id


class _Objective:
    """One trial: a training run of the recipe with the trial's values, nested under the parent."""

    def __init__(self, recipe, options, settings, dimensions, metric, study, parent_id, verbose):
        from zoo import training

        self.recipe, self.options, self.settings = recipe.name, options, settings
        self.dimensions, self.metric, self.study, self.parent_id = dimensions, metric, study, parent_id
        self.verbose = verbose
        self.fields = set(training.config_fields(recipe.Config))
        self.monitor = recipe.monitor
        # Set by `tune` from the config: whether early stopping restores the best epoch's weights.
        self.early_stopping = False

    def __call__(self, trial):
        import mlflow
        import optuna

        from zoo import faults, training

        values = {key: dimension.suggest(trial) for key, dimension in self.dimensions.items()}
        # Short enough for the MLflow UI's name column and `zoo compare`; the parent names the study.
        options = {**self.options, "run_name": f"{self.study}-t{trial.number}"}
        settings = dict(self.settings)
        for key, value in values.items():
            (options if key in self.fields else settings)[key] = value
        tags = {PARENT_TAG: self.parent_id, STUDY_TAG: self.study, ROLE_TAG: "trial", TRIAL_TAG: str(trial.number)}
        if "zoo.retry_of" in trial.user_attrs:
            tags["zoo.retry_of"] = str(trial.user_attrs["zoo.retry_of"])
        pruning = _pruning_callback(trial, self.metric)
        try:
            result = training.train(
                self.recipe, options, settings, self.verbose, tags=tags, callbacks=[pruning], evaluate=False
            )
        except faults.Diverged as error:
            self._tag_last_run(trial, "FAIL")
            print(f"zoo: trial {trial.number} diverged: {error}", file=sys.stderr)
            return float("nan")  # Optuna marks the trial FAIL and goes on with the next
        except KeyboardInterrupt:
            trial.set_user_attr("zoo.interrupted", True)
            self._tag_last_run(trial, "FAIL")
            raise
        client = mlflow.MlflowClient()
        epochs = int(result.metrics.get("epochs_trained", 0))
        trial.set_user_attr("zoo.run_id", result.run_id)
        trial.set_user_attr("zoo.epochs", epochs)
        if pruning.pruned_at is not None:
            client.set_tag(result.run_id, STATE_TAG, "PRUNED")
            client.set_tag(
                result.run_id,
                "zoo.pruned",
                f"pruned by zoo tune after epoch {pruning.pruned_at}: {self.metric} {pruning.last:.4g}",
            )
            client.set_terminated(result.run_id, "KILLED")
            raise optuna.TrialPruned(f"after epoch {pruning.pruned_at}")
        # The metric early stopping watched (the recipe's, else the loss): its best epoch's weights are kept.
        value = objective_value(result.history, self.metric, result.monitor or self.monitor, self.early_stopping)
        client.log_metric(result.run_id, f"objective_{self.metric}", value)
        client.set_tag(result.run_id, STATE_TAG, "COMPLETE")
        return value

    def _tag_last_run(self, trial, state):
        import mlflow

        runs = _trial_runs(self.parent_id, self.study, trial.number)
        if runs:
            trial.set_user_attr("zoo.run_id", runs[0].info.run_id)
            mlflow.MlflowClient().set_tag(runs[0].info.run_id, STATE_TAG, state)

    def after_trial(self, study, trial):
        """Keep the parent's best-so-far metric and tags current; one line of progress on stderr."""
        best = _log_best(study, self.parent_id, self.metric)
        value = "" if trial.value is None else f" {self.metric}={trial.value:.4g}"
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        leader = f"; best trial {best.number}: {best.value:.4g}" if best else ""
        epochs = trial.user_attrs.get("zoo.epochs", "?")
        print(
            f"zoo tune: trial {trial.number} {trial.state.name.lower()}{value} after {epochs} epochs ({shown}){leader}",
            file=sys.stderr,
            flush=True,
        )


def _trial_runs(parent_id, study, number):
    import mlflow

    client = mlflow.MlflowClient()
    experiment_id = client.get_run(parent_id).info.experiment_id
    return client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{STUDY_TAG}` = '{study}' and tags.`{TRIAL_TAG}` = '{number}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )


def _pruning_callback(trial, metric):
    """A Keras callback that reports each epoch's `metric` to the trial and stops a pruned trial.

    It stops `fit` (rather than raising inside it) so the run ends as a normal run: its metrics,
    learning curve and model are logged up to the epoch it was pruned at.
    """
    import keras

    class OptunaPruning(keras.callbacks.Callback):
        pruned_at = None
        last = float("nan")

        def on_train_begin(self, logs=None):
            import mlflow

            # Known from the start: a trial whose process dies is matched to its run (`_lost_trial`).
            trial.set_user_attr("zoo.run_id", mlflow.active_run().info.run_id)

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(metric)
            if value is None:
                return
            self.last = float(value)
            if math.isfinite(self.last):
                trial.report(self.last, epoch)
            if trial.should_prune():
                self.pruned_at = epoch + 1
                self.model.stop_training = True

    return OptunaPruning()


def _log_best(study, parent_id, metric):
    import mlflow
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    best = study.best_trial
    client = mlflow.MlflowClient()
    finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)))
    client.log_metric(parent_id, f"best_{metric}", best.value, step=finished)
    tags = {f"best.{key}": str(value) for key, value in best.params.items()}
    tags |= {"zoo.tune.best_trial": str(best.number), "zoo.tune.best_run": best.user_attrs.get("zoo.run_id", "")}
    for key, value in tags.items():
        client.set_tag(parent_id, key, value)
    return best


def _finish(study, parent_id, description, recipe, options, settings, register, storage_url):
    """Log the best trial, the study's plots and the final (tested) run on the parent."""
    import mlflow

    from zoo import training

    metric = description["metric"]
    client = mlflow.MlflowClient()
    trials = study.get_trials(deepcopy=False)
    states = {}
    for trial in trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    epochs = sum(int(t.user_attrs.get("zoo.epochs", 0)) for t in trials)
    # The best trial is read and claimed for the final run under the study's lock: a worker that read
    # the study before another worker's better trial ended would otherwise log and test an older best.
    with _lock(storage_url):
        best = _log_best(study, parent_id, metric)
        if best is None:
            raise ZooError(
                f"No trial of study '{study.study_name}' completed ({states}); see the trial runs' zoo.failure tags."
            )
        tested = client.get_run(parent_id).data.tags.get("zoo.tune.tested_trial")
        claimed = tested != str(best.number)
        if claimed:
            client.set_tag(parent_id, "zoo.tune.tested_trial", str(best.number))
    client.log_dict(
        parent_id,
        {"trial": best.number, "run_id": best.user_attrs.get("zoo.run_id"), metric: best.value, "params": best.params},
        "best_params.json",
    )
    best_config = _write_best_config(study.study_name, parent_id, recipe, options, settings, best.params)
    client.log_metric(parent_id, "trials_complete", states.get("COMPLETE", 0))
    client.log_metric(parent_id, "trials_pruned", states.get("PRUNED", 0))
    client.log_metric(parent_id, "epochs_trained", epochs)
    _log_study_plots(study, parent_id)

    # The best configuration, trained once more as a complete run: the only one tested.
    final_run_id, test_metrics = None, {}
    if claimed:
        final_options = {**options, "run_name": f"{study.study_name}-best", "register": register}
        final_settings = dict(settings)
        fields = set(training.config_fields(training.get_recipe(recipe).Config))
        for key, value in best.params.items():
            (final_options if key in fields else final_settings)[key] = value
        tags = {
            PARENT_TAG: parent_id,
            STUDY_TAG: study.study_name,
            ROLE_TAG: "final",
            TRIAL_TAG: str(best.number),
        }
        status_step(f"retraining the best trial's configuration (trial {best.number}) and testing it")
        try:
            result = training.train(recipe, final_options, final_settings, tags=tags)
        except BaseException:
            client.set_tag(parent_id, "zoo.tune.tested_trial", tested or "")
            raise
        final_run_id = result.run_id
        test_metrics = {k: v for k, v in result.metrics.items() if k.startswith("test_")}
        for key, value in test_metrics.items():
            client.log_metric(parent_id, key, value)
        client.set_tag(parent_id, "zoo.tune.final_run", final_run_id)
    else:
        parent = client.get_run(parent_id).data
        test_metrics = {k: v for k, v in parent.metrics.items() if k.startswith("test_")}
        if register and parent.tags.get("zoo.tune.final_run"):
            _register_tested(parent.tags["zoo.tune.final_run"], register, recipe)
    client.set_terminated(parent_id, "FINISHED")
    states = {trial.state.name: 0 for trial in trials} | states
    return TuneResult(
        study=study.study_name,
        storage=storage_url,
        parent_run_id=parent_id,
        metric=metric,
        direction=description["direction"],
        best_trial=best.number,
        best_value=best.value,
        best_params=dict(best.params),
        best_run_id=best.user_attrs.get("zoo.run_id"),
        final_run_id=final_run_id,
        test_metrics=test_metrics,
        states=states,
        epochs=epochs,
        new_trials=0,
        best_config=best_config,
    )


def _write_best_config(study_name, parent_id, recipe, options, settings, params):
    """The best trial's configuration as a YAML file that `zoo train --config` takes: written to
    `<study>-best.yaml` in the working directory and logged on the study's run as `best_config.yaml`."""
    import mlflow
    import yaml

    from zoo import training
    from zoo.training.description import plain

    fields = set(training.config_fields(training.get_recipe(recipe).Config))
    chosen = {key: value for key, value in options.items() if key not in _PLACEMENT or key == "experiment"}
    overrides = dict(settings)
    for key, value in {**settings, **params}.items():
        (chosen if key in fields else overrides)[key] = value
    overrides = {key: value for key, value in overrides.items() if key not in fields}
    text = f"# The best trial of zoo tune study {study_name}: zoo train --config THIS_FILE\n"
    text += yaml.safe_dump(plain({"recipe": recipe, "config": chosen, "overrides": overrides}), sort_keys=False)
    path = os.path.abspath(f"{re.sub(r'[^A-Za-z0-9_.-]', '_', study_name)}-best.yaml")
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError:
        path = None  # a read-only working directory: the copy on the study's run remains
    mlflow.MlflowClient().log_text(parent_id, text, "best_config.yaml")
    return path


def _register_tested(run_id, name, recipe):
    """Register the model of an earlier final run (the best trial did not change since)."""
    import types

    import mlflow

    from zoo import tracking, training

    run = mlflow.MlflowClient().get_run(run_id)
    models = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'", output_format="list"
    )
    if not models:
        raise ZooError(f"`register` found no model in the tested run {run_id}; start a new `study` to register one.")
    metrics = run.data.metrics
    with mlflow.start_run(run_id=run_id):
        tracking.register_model(
            types.SimpleNamespace(model_uri=models[0].model_uri),
            name,
            metrics,
            training.get_recipe(recipe).ranking_metric(),
        )


def _log_study_plots(study, parent_id):
    """The optimization history and the parameter importances (fANOVA), as parent artifacts."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    import optuna

    client = mlflow.MlflowClient()
    plots = {
        "optimization_history.png": optuna.visualization.matplotlib.plot_optimization_history,
        "param_importances.png": optuna.visualization.matplotlib.plot_param_importances,
    }
    for name, plot in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            try:
                axes = plot(study)
            except (ValueError, RuntimeError) as error:
                # Importances need two complete trials whose values differ.
                client.log_text(parent_id, f"Not drawn: {error}\n", name.replace(".png", ".txt"))
                continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.set_size_inches(7, 4.5)
        figure.tight_layout()
        try:
            client.log_figure(parent_id, figure, name)
        finally:
            plt.close(figure)
