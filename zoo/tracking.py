"""Everything the engine says to MLflow: the store, the run's life, metrics, the model, plots."""

import contextlib
import http.client
import importlib
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request

from zoo.errors import ZooError


class _LazyModule:
    """A module imported on first attribute access.

    Importing MLflow costs seconds and about 150 MB; the recipes import this module to describe
    their options, so `zoo --help` would pay that for nothing. Every function here reaches MLflow
    through `mlflow.X`, which imports it the first time.
    """

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attribute):
        return getattr(importlib.import_module(self._name), attribute)


mlflow = _LazyModule("mlflow")

FAILURE_TAG = "zoo.failure"
# The run's description in the MLflow UI.
DESCRIPTION_TAG = "mlflow.note.content"
# URI schemes MLflow's tracking stores accept (a plain path is a file store).
TRACKING_SCHEMES = ("sqlite", "http", "https", "file", "postgresql", "mysql", "mssql", "databricks")


def configure(tracking_uri=None):
    """Point MLflow at `tracking_uri` (default: MLflow's own resolution) and check a server answers.

    Returns:
        The tracking URI in use.

    Raises:
        ZooError: within seconds when an HTTP tracking server does not answer.
    """
    # MLflow's defaults retry an unreachable server for minutes; fail fast and say so instead.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    # Checked before MLflow is pointed at it: a server that does not answer is not left configured.
    uri = tracking_uri or mlflow.get_tracking_uri()
    check_scheme(uri)
    if uri.startswith(("http://", "https://")):
        check_server(uri)
    elif uri.startswith("sqlite:///"):
        prepare_sqlite(uri)
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    return uri


def check_scheme(uri):
    """Refuse a tracking URI whose scheme MLflow cannot store runs in (ftp://, s3://), in one line.

    MLflow itself fails late, deep in its model registry, with an exception named after it.

    Raises:
        ZooError: listing the schemes that work.
    """
    scheme = urllib.parse.urlparse(uri).scheme.lower()
    # A one-letter scheme is a Windows drive (C:\\mlruns), which MLflow reads as a path.
    if len(scheme) > 1 and scheme.split("+")[0] not in TRACKING_SCHEMES:
        raise ZooError(
            f"The tracking URI {uri} has the scheme '{scheme}', where MLflow cannot store runs. "
            f"Use one of {', '.join(s + ':' for s in TRACKING_SCHEMES)} or a folder path "
            "(e.g. --tracking-uri sqlite:///mlflow.db or http://127.0.0.1:5000)."
        )


def dataset_source(source):
    """The MLflow `DatasetSource` for a loader's source: a local file, a URL, or code.

    Given a plain string, MLflow guesses the source type, and every string matches two local
    sources (the '' and 'file' schemes), which makes it warn that the source "can be interpreted
    in multiple ways". Saying which type it is leaves nothing to guess.

    Args:
        source: a path to a file or folder, an http(s) URL, or what produced the data in code
            (e.g. `sklearn.datasets.load_digits`).
    """
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import get_registered_sources
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    source = str(source)
    if source.startswith(("http://", "https://")):
        return HTTPDatasetSource(source)
    if os.path.isabs(source) and os.path.exists(source):
        local = [kind for kind in get_registered_sources() if kind._get_source_type() == "local"]
        if local:
            return local[-1](source)
    return CodeDatasetSource(tags={"source": source})


def pandas_dataset(frame, source, targets, name):
    """An `mlflow.data` dataset of a DataFrame, with its source type and its schema declared.

    Left to infer the schema, MLflow hints at every integer column that it "cannot represent
    missing values", advice meant for model signatures; the column types are known here.
    """
    from mlflow.types import DataType
    from mlflow.types.schema import ColSpec, Schema

    def column_type(dtype):
        if dtype.kind == "b":
            return DataType.boolean
        if dtype.kind in "iu":
            return DataType.long if dtype.itemsize > 4 else DataType.integer
        if dtype.kind == "f":
            return DataType.double if dtype.itemsize > 4 else DataType.float
        return DataType.string

    dataset = mlflow.data.from_pandas(frame, source=dataset_source(source), targets=targets, name=name)
    # `schema` is a cached property that MLflow fills by inference on first use: set it first.
    dataset.schema = Schema([ColSpec(column_type(frame[column].dtype), str(column)) for column in frame.columns])
    return dataset


def prepare_sqlite(uri):
    """Create the SQLite store's schema under a file lock and switch it to WAL journaling.

    Several `zoo train` processes starting at once on a new store race to create its tables, and
    under the default rollback journal their writes collide as "database is locked" (the fixes
    MLflow's own tests needed). The lock serializes creation; WAL lets readers and a writer
    proceed together; MLflow already sets a busy timeout on every session.
    """
    import fcntl
    import sqlite3

    path = uri[len("sqlite:///") :]
    if not path or path == ":memory:":
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ZooError(f"The folder of the MLflow store {uri} does not exist. Create it or fix --tracking-uri.")
    with open(os.path.abspath(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
                connection.execute("PRAGMA journal_mode=WAL")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def check_server(uri, timeout=3.0):
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            if response.status == 200:
                return
            reason = f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        reason = f"HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:  # a malformed URL too
        reason = str(getattr(error, "reason", error))
    if reason.startswith("HTTP "):
        raise ZooError(
            f"{uri} answered {reason} at /health, which an MLflow tracking server does not: check the "
            "host, port and path given to --tracking-uri (e.g. http://127.0.0.1:5000)."
        )
    raise ZooError(
        f"Cannot reach the MLflow tracking server at {uri} ({reason}). Start it (mlflow server --host "
        f"127.0.0.1 --port 5000) or drop --tracking-uri to log to the local store sqlite:///mlflow.db."
    )


@contextlib.contextmanager
def active_run(experiment, run_name, tags, system_metrics=False, resume=None, name_prefix="run"):
    """Start an MLflow run (or continue `resume`, an interrupted run) that never stays RUNNING.

    SIGINT/SIGTERM (`zoo.faults.Interrupted`) end the run KILLED; any other exception ends it
    FAILED; both put the reason in the `zoo.failure` tag.
    Under `mlflow run`, the run that `mlflow run` created is continued (see `start_run`).
    """
    from zoo import faults

    if resume is not None:
        run = mlflow.start_run(run_id=resume.info.run_id, log_system_metrics=True if system_metrics else None)
        mlflow.set_tag(FAILURE_TAG, "")
    else:
        run = start_run(experiment, run_name, tags, system_metrics=system_metrics, name_prefix=name_prefix)
    try:
        yield run
    except faults.Interrupted as signal_error:
        signal_error.run_id = run.info.run_id
        _end(run, f"interrupted by {signal_error}; the last epoch's checkpoint is kept", "KILLED")
        raise
    except KeyboardInterrupt:
        _end(run, "interrupted (KeyboardInterrupt)", "KILLED")
        raise
    except BaseException as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        _end(run, f"{type(error).__name__}: {message}"[:5000], "FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")


def _end(run, reason, status):
    try:
        flush_metrics(raise_errors=False)
        mlflow.set_tag(FAILURE_TAG, reason)
    finally:
        mlflow.end_run(status)


def flatten(values, prefix=""):
    """Flatten nested dicts into {'a.b': value} with values as MLflow param strings."""
    flat = {}
    for key, value in values.items():
        # MLflow keys allow only alphanumerics and _ - . space : / (column names may hold more).
        name = prefix + re.sub(r"[^\w\-. :/]", "_", str(key))
        if isinstance(value, dict):
            flat.update(flatten(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(str(v) for v in value)
        else:
            flat[name] = str(value)
    return flat


def log_params(params, max_length=500):
    """Log params; values too long for a readable param go to `params_long.json` instead."""
    short = {k: v for k, v in params.items() if len(v) <= max_length}
    long = {k: v for k, v in params.items() if len(v) > max_length}
    mlflow.log_params(short)
    if long:
        mlflow.log_dict(long, "params_long.json")


def git_commit():
    """Return the commit of the checkout this package runs from, or None."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        result = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def log_epoch_metrics(epoch, logs):
    """Log one epoch's Keras logs with the epoch as step, without blocking training.

    Written by a background thread (microseconds on the training thread, where a synchronous
    call costs 4 ms (SQLite) to 50 ms (HTTP)); `flush_metrics` waits for the writes.
    """
    metrics = {key: float(value) for key, value in (logs or {}).items() if _is_number(value)}
    if metrics:
        _EPOCH_METRICS.log(mlflow.active_run().info.run_id, metrics, epoch)


def metrics_callback():
    """A Keras callback that logs each epoch's logs with `log_epoch_metrics`."""
    import keras

    class MlflowEpochMetrics(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            log_epoch_metrics(epoch, logs)

    return MlflowEpochMetrics()


def metric_histories(run_id, names):
    """Return {name: [value per step]} from the run's logged history (a resumed run's curves)."""
    client = mlflow.MlflowClient()
    return {
        name: [m.value for m in sorted(client.get_metric_history(run_id, name), key=lambda m: m.step)] for name in names
    }


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def log_model(model, example_inputs, metadata=None, adapter=None):
    """Log a Keras model that MLflow serves on raw inputs, with a signature from `example_inputs`.

    The logged model has MLflow's `keras` flavor and a `python_function` flavor that predicts
    through `adapter` (`zoo.serving`; default: one array in, the model's output back).
    `metadata` (e.g. class names) is stored in the MLmodel file and travels with the model.
    """
    from zoo import serving

    return serving.log_model(model, adapter or serving.Tensor(), example_inputs, metadata=metadata)


def log_figure(figure, artifact_file):
    """Log a matplotlib figure as an image artifact of the active run, then close it.

    pyplot keeps every figure it made until closed: a process that trains many runs (a notebook,
    the tests) would otherwise hold all of them.
    """
    import matplotlib.pyplot as plt

    try:
        mlflow.log_figure(figure, artifact_file)
    finally:
        plt.close(figure)


def learning_curve(history):
    """Return a matplotlib figure with one panel per metric: training and validation per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4.5 * max(1, len(names)), 3.5), squeeze=False)
    for axis, name in zip(axes[0], names):
        epochs = range(len(history[name]))
        axis.plot(epochs, history[name], label="train")
        if f"val_{name}" in history:
            axis.plot(range(len(history[f"val_{name}"])), history[f"val_{name}"], label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.legend()
    fig.tight_layout()
    return fig


# === Runs under `mlflow run`, system metrics, the model registry, ranking runs ===

# MLflow 3's UI opens an experiment on its GenAI traces overview unless the experiment says it
# holds model-training runs; with this tag it opens on the runs table.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_EXPERIMENT = "custom_model_development"
CHAMPION, CHALLENGER = "champion", "challenger"
# Substrings of metric names where a smaller value is better; any other metric: larger is better.
LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "rmse", "fid", "perplexity", "distance")


def check_run_options(register=None, system_metrics=False):
    """Check `--register` and `--system-metrics` before a run starts.

    Raises:
        ZooError: for a registered-model name MLflow would refuse, or when psutil is missing.
    """
    if register is not None and (not register.strip() or "/" in register or ":" in register):
        raise ZooError(
            f"--register needs a model name without '/' or ':', e.g. --register zoo-mlp. Received: {register!r}"
        )
    if system_metrics:
        import importlib.util

        if importlib.util.find_spec("psutil") is None:
            raise ZooError("--system-metrics needs psutil: pip install psutil, or drop --system-metrics.")


def start_run(experiment, run_name, tags, system_metrics=False, name_prefix="run"):
    """Start a training's MLflow run, or continue the run that `mlflow run` created for it.

    Args:
        experiment: experiment name (ignored under `mlflow run`, which has chosen one already).
        run_name: run name, or None for `unique_run_name(name_prefix)`.
        name_prefix: what ran, e.g. `cnn-digits`, for the default run name.
        tags: tags of the run.
        system_metrics: sample CPU, memory, disk, network (and GPU with nvidia-ml-py) into
            `system/*` metrics; MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true does the same.

    Returns:
        The active `mlflow.ActiveRun`.
    """
    if system_metrics:
        # MLflow samples every 10 s and drops the last partial interval: a short run would log
        # nothing. MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL still wins when set.
        os.environ.setdefault("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "2")
        _warn_without_gpu_metrics()
    if not os.environ.get("MLFLOW_RUN_ID"):
        # Under `mlflow run` (which sets MLFLOW_RUN_ID), choosing an experiment makes MLflow
        # refuse to continue the run: `mlflow run --experiment-name` chooses it there.
        chosen = mlflow.set_experiment(experiment)
        run_name = run_name or unique_run_name(chosen.experiment_id, name_prefix)
    run = mlflow.start_run(run_name=run_name, tags=tags, log_system_metrics=True if system_metrics else None)
    try:
        _mark_training_experiment(run.info.experiment_id)
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    return run


def unique_run_name(experiment_id, prefix):
    """`prefix-3f2a`: a name no run of the experiment has, that says what ran.

    MLflow's own names (`bustling-seal-758`) come from Python's `random`, which the run's `--seed`
    has just seeded: every run with the same seed got the same name. The suffix comes from the
    operating system instead, and is drawn again while a run of the experiment has the name.
    """
    import secrets

    client = mlflow.MlflowClient()
    for _ in range(20):
        name = f"{prefix}-{secrets.token_hex(2)}"
        # Quotes in a dataset name would end the filter's string early.
        quoted = name.replace("'", "_")
        if not client.search_runs([experiment_id], f"attributes.run_name = '{quoted}'", max_results=1):
            return quoted
    return f"{prefix}-{secrets.token_hex(8)}"


def _mark_training_experiment(experiment_id):
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    try:
        if EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags:
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, TRAINING_EXPERIMENT)
    except MlflowException:
        pass  # Only how the UI opens the experiment: not worth failing a training for.


def _warn_without_gpu_metrics():
    import importlib.util
    import sys

    if importlib.util.find_spec("pynvml") is None:
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            print(
                "zoo: warning: no GPU system metrics without nvidia-ml-py (pip install nvidia-ml-py).", file=sys.stderr
            )


def greater_is_better(metric):
    """True when a larger value of `metric` is better (accuracy), False for losses and errors."""
    return not any(word in metric.lower() for word in LOWER_IS_BETTER)


def main_metric(metrics, preferred=None):
    """Return the name of the test metric that ranks runs, or None when there is none.

    Args:
        metrics: names (or a dict keyed by names) of the metrics at hand.
        preferred: a recipe's `main_metric`; used when present in `metrics`.
    """
    names = list(metrics)
    for name in (preferred, "test_accuracy", "test_loss"):
        if name and name in names:
            return name
    return next((name for name in sorted(names) if name.startswith("test_")), None)


def register_model(model_info, name, metrics, preferred_metric=None):
    """Register the run's logged model as a new version of `name` and give it an alias.

    The new version becomes `champion` when there is no champion yet or when it beats the champion
    on the main test metric (strictly); otherwise it becomes `challenger`. Aliases, not the
    deprecated stages. The run gets the tags `zoo.registered_model` and `zoo.model_alias`.

    Args:
        model_info: what `log_model` returned (None: the model last logged in this run).
        name: registered model name.
        metrics: the run's final metrics.
        preferred_metric: the recipe's `main_metric` (see `main_metric`).

    Returns:
        (version number, alias).
    """
    import sys

    client = mlflow.MlflowClient()
    run_id = mlflow.active_run().info.run_id
    model_uri = getattr(model_info, "model_uri", None)
    if model_uri is None:
        logged = mlflow.last_logged_model()
        if logged is None or logged.source_run_id != run_id:
            raise ZooError("--register found no model logged by this run: the recipe's log_model logged none.")
        model_uri = logged.model_uri
    metric = main_metric(metrics, preferred_metric)
    value = metrics.get(metric) if metric else None
    tags = {"zoo.main_metric": metric, "zoo.main_metric_value": repr(value)} if metric else {}
    version = mlflow.register_model(model_uri, name, tags=tags)

    champion = _version_by_alias(client, name, CHAMPION)
    if champion is None:
        alias, why = CHAMPION, "first champion"
    else:
        best = _version_metric(client, champion, metric)
        if value is None or best is None:
            alias, why = CHALLENGER, f"no {metric or 'test metric'} to compare with champion v{champion.version}"
        elif (value > best) if greater_is_better(metric) else (value < best):
            alias, why = CHAMPION, f"{metric} {value:.4g} beats champion v{champion.version}'s {best:.4g}"
        else:
            alias, why = CHALLENGER, f"{metric} {value:.4g} does not beat champion v{champion.version}'s {best:.4g}"
    client.set_registered_model_alias(name, alias, version.version)
    mlflow.set_tags({"zoo.registered_model": f"{name}/{version.version}", "zoo.model_alias": alias})
    print(f"zoo: registered {name} version {version.version} as @{alias} ({why})", file=sys.stderr)
    return int(version.version), alias


def _version_by_alias(client, name, alias):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _version_metric(client, version, metric):
    """The value of `metric` for a registered version: its zoo tags, else its source run."""
    if metric is None:
        return None
    if version.tags.get("zoo.main_metric") == metric:
        try:
            return float(version.tags["zoo.main_metric_value"])
        except (KeyError, ValueError):
            pass
    if version.run_id:
        return client.get_run(version.run_id).data.metrics.get(metric)
    return None


# === Per-epoch metrics off the training thread ===


class _EpochMetricsWriter:
    """One background thread that writes epoch metrics with plain `log_batch` calls, in order.

    MLflow's own asynchronous logging (`synchronous=False`) costs about 0.9 s per run: its flush
    waits out a 1 s poll of its queue before it returns. Here `flush` returns as soon as the
    pending writes are done, and the training thread only puts a dict on a queue (microseconds).
    Epochs that end within `interval` seconds of each other share one write: a SQLite write costs
    about 5 ms of CPU whatever it holds, which the thread takes from training on a small machine
    (8 % of an epoch of the tabular MLP on 2 cores). The MLflow UI sees an epoch at most
    `interval` seconds late; `flush` writes at once.
    """

    MAX_METRICS = 1000  # MLflow's limit for one log_batch

    def __init__(self, interval=1.0):
        import queue
        import threading

        self.interval = interval
        self._queue = queue.Queue()
        self._flushing = threading.Event()
        self._thread = None
        self._error = None

    def log(self, run_id, metrics, step):
        import threading
        import time

        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._write, name="zoo-epoch-metrics", daemon=True)
            self._thread.start()
        self._queue.put((mlflow.get_tracking_uri(), run_id, metrics, step, int(time.time() * 1000)))

    def _write(self):
        import queue

        from mlflow.entities import Metric

        clients = {}
        while True:
            pending = [self._queue.get()]
            self._flushing.wait(self.interval)
            while True:
                try:
                    pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batches = {}
            for uri, run_id, metrics, step, timestamp in pending:
                batches.setdefault((uri, run_id), []).extend(Metric(k, v, timestamp, step) for k, v in metrics.items())
            try:
                for (uri, run_id), rows in batches.items():
                    client = clients.get(uri) or clients.setdefault(uri, mlflow.MlflowClient(uri))
                    for start in range(0, len(rows), self.MAX_METRICS):
                        client.log_batch(run_id, metrics=rows[start : start + self.MAX_METRICS])
            except Exception as error:  # noqa: BLE001 - re-raised on the training thread by flush()
                self._error = error
            finally:
                for _ in pending:
                    self._queue.task_done()

    def flush(self, raise_errors=True):
        """Wait until every queued epoch is written; raise the first write error, if any."""
        self._flushing.set()
        try:
            self._queue.join()
        finally:
            self._flushing.clear()
        error, self._error = self._error, None
        if error is not None and raise_errors:
            raise error


_EPOCH_METRICS = _EpochMetricsWriter()


def flush_metrics(raise_errors=True):
    """Wait for the epoch metrics still being written (ours and MLflow's asynchronous queue).

    Raises:
        MlflowException: the first failed write, unless `raise_errors` is False (a run that is
            failing already keeps its own reason).
    """
    _EPOCH_METRICS.flush(raise_errors)
    mlflow.flush_async_logging()
