"""Everything the engine says to MLflow: the store, the run's life, metrics, the model, plots."""

import contextlib
import os
import re
import subprocess
import urllib.error
import urllib.request

import mlflow

from zoo.errors import ZooError

FAILURE_TAG = "zoo.failure"


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
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    uri = mlflow.get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        check_server(uri)
    return uri


def check_server(uri, timeout=3.0):
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            if response.status == 200:
                return
            reason = f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        reason = f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = str(getattr(error, "reason", error))
    raise ZooError(
        f"Cannot reach the MLflow tracking server at {uri} ({reason}). Start it (mlflow server --host "
        f"127.0.0.1 --port 5000) or drop --tracking-uri to log to the local store sqlite:///mlflow.db."
    )


@contextlib.contextmanager
def active_run(experiment, run_name, tags):
    """Start an MLflow run and guarantee it never stays RUNNING.

    An exception ends the run FAILED with the reason in the `zoo.failure` tag; Ctrl-C too.
    """
    mlflow.set_experiment(experiment)
    run = mlflow.start_run(run_name=run_name, tags=tags)
    try:
        yield run
    except KeyboardInterrupt:
        _end_failed(run, "interrupted (Ctrl-C or SIGTERM)")
        raise
    except BaseException as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        _end_failed(run, f"{type(error).__name__}: {message}"[:5000])
        raise
    else:
        mlflow.end_run("FINISHED")


def _end_failed(run, reason):
    try:
        mlflow.flush_async_logging()
        mlflow.set_tag(FAILURE_TAG, reason)
    finally:
        mlflow.end_run("FAILED")


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
        result = subprocess.run(
            ["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def metrics_callback():
    """A Keras callback that logs each epoch's logs with the epoch as step, without blocking."""
    import keras

    class MlflowEpochMetrics(keras.callbacks.Callback):
        # One asynchronous `log_metrics` per epoch: about 1 ms on the training thread, where a
        # synchronous call costs 4 ms (SQLite) to 50 ms (HTTP).
        def on_epoch_end(self, epoch, logs=None):
            metrics = {key: float(value) for key, value in (logs or {}).items() if _is_number(value)}
            if metrics:
                mlflow.log_metrics(metrics, step=epoch, synchronous=False)

    return MlflowEpochMetrics()


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def log_model(model, example_inputs, predict=None):
    """Log a Keras model through MLflow's Keras flavor, with a signature from `example_inputs`."""
    import keras
    import numpy as np
    import tensorflow as tf
    from mlflow.models import infer_signature

    predict = predict or (lambda inputs: np.asarray(model(inputs, training=False)))
    outputs = predict(example_inputs)
    signature = infer_signature(example_inputs, outputs)
    return mlflow.keras.log_model(
        model,
        name="model",
        signature=signature,
        pip_requirements=[f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}"],
    )


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
