"""The MLflow run's life: start it (or continue it under `mlflow run` or `--resume`), name it, tag its
experiment, and end it FINISHED, KILLED or FAILED with the reason, so that no run stays RUNNING.

Anything that happens when a run starts or ends belongs here.
"""

import contextlib
import os

from zoo.errors import ZooError
from zoo.tracking import heartbeat, nesting
from zoo.tracking.lazy import mlflow

FAILURE_TAG = "zoo.failure"
# The run's description in the MLflow UI.
DESCRIPTION_TAG = "mlflow.note.content"
# MLflow 3's UI opens an experiment on its GenAI traces overview unless the experiment says it
# holds model-training runs; with this tag it opens on the runs table.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_EXPERIMENT = "custom_model_development"
# Where a run goes when no `experiment` is given and no run of the caller is active.
DEFAULT_EXPERIMENT = "zoo"


@contextlib.contextmanager
def active_run(experiment, run_name, tags, system_metrics=False, resume=None, name_prefix="run", metrics=None):
    """Start an MLflow run (or continue `resume`, an interrupted run) that never stays RUNNING.

    SIGINT/SIGTERM (`zoo.faults.Interrupted`) end the run KILLED; any other exception ends it
    FAILED; both put the reason in the `zoo.failure` tag, after the epoch metrics still queued in
    `metrics` (the run's `zoo.tracking.EpochMetrics`, if any) are written.
    Under `mlflow run`, the run that `mlflow run` created is continued (see `start_run`).
    """
    from zoo import faults

    if resume is not None:
        run = mlflow.start_run(run_id=resume.info.run_id, log_system_metrics=True if system_metrics else None)
        mlflow.set_tag(FAILURE_TAG, "")
    else:
        run = start_run(experiment, run_name, tags, system_metrics=system_metrics, name_prefix=name_prefix)
    # A process killed without a word leaves its beats behind: `zoo.tracking.heartbeat.repair` ends the run.
    beating = heartbeat.Heartbeat(run.info.run_id, mlflow.get_tracking_uri()).start()
    try:
        yield run
    except faults.Interrupted as signal_error:
        signal_error.run_id, signal_error.run_status = run.info.run_id, "KILLED"
        _end(f"interrupted by {signal_error}; the last epoch's checkpoint is kept", "KILLED", metrics, run.info.run_id)
        raise
    except KeyboardInterrupt:
        _end("interrupted (KeyboardInterrupt)", "KILLED", metrics, run.info.run_id)
        raise
    except BaseException as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        _end(f"{type(error).__name__}: {message}"[:5000], "FAILED", metrics, run.info.run_id)
        raise
    else:
        mlflow.end_run("FINISHED")
    finally:
        beating.stop()


def _end(reason, status, metrics, run_id=None):
    try:
        if metrics is not None:
            metrics.flush(raise_errors=False)
        else:
            mlflow.flush_async_logging()
    finally:
        from zoo import faults

        # A SIGTERM while a failed run ends (`zoo launch` stops the other processes when one
        # fails) must not cost the run its reason: it waits until the run has ended.
        try:
            with faults.critical_section():
                try:
                    mlflow.set_tag(FAILURE_TAG, reason)
                finally:
                    mlflow.end_run(status)
        except faults.Interrupted as late:
            # The signal raised here replaces the error that ended the run: say how it really ended.
            late.run_id, late.run_status = run_id, status
            raise


def check_run_options(register=None, system_metrics=False):
    """Check `--register` and `--system-metrics` before a run starts.

    Raises:
        ZooError: for a registered-model name MLflow would refuse, or when psutil is missing.
    """
    if register is not None and (not register.strip() or "/" in register or ":" in register):
        raise ZooError(
            f"`register` needs a model name without '/' or ':', e.g. `register=zoo-mlp`. Received: {register!r}"
        )
    if system_metrics:
        import importlib.util

        if importlib.util.find_spec("psutil") is None:
            raise ZooError("`system_metrics` needs psutil: pip install psutil, or drop `system_metrics`.")


def start_run(experiment, run_name, tags, system_metrics=False, name_prefix="run"):
    """Start a training's MLflow run, or continue the run that `mlflow run` created for it.

    Args:
        experiment: experiment name, None for `zoo` (ignored under `mlflow run`, which has chosen one
            already). Inside the caller's active run, the run is its nested child, in its experiment.
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
    parent = nesting.user_run()
    if parent is not None:
        return _start_child(parent, experiment, run_name, tags, system_metrics, name_prefix)
    experiment_id = None
    if not os.environ.get("MLFLOW_RUN_ID"):
        # Under `mlflow run` (which sets MLFLOW_RUN_ID), choosing an experiment makes MLflow
        # refuse to continue the run: `mlflow run --experiment-name` chooses it there.
        chosen = mlflow.set_experiment(experiment or DEFAULT_EXPERIMENT)
        # Named, not left to the active experiment: when another process creates the same new
        # experiment at the same moment, MLflow 3.18's set_experiment returns it without making it
        # active, and the run landed in the Default experiment (four trainings started at once
        # through one server, tests/test_team.py).
        experiment_id = chosen.experiment_id
        run_name = run_name or unique_run_name(experiment_id, name_prefix)
    run = mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name,
        tags=tags,
        log_system_metrics=True if system_metrics else None,
    )
    try:
        mark_training_experiment(run.info.experiment_id)
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    return run


def _start_child(parent, experiment, run_name, tags, system_metrics, name_prefix):
    """A nested run of the caller's active run, in its experiment (`zoo.tracking.nesting`)."""
    experiment_id = nesting.experiment_of(parent, experiment)
    run = mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name or unique_run_name(experiment_id, name_prefix),
        tags=tags,
        nested=True,
        log_system_metrics=True if system_metrics else None,
    )
    try:
        own_parent = (tags or {}).get(nesting.PARENT_TAG)
        if own_parent:
            # A `zoo tune` trial belongs under its study's run, which itself is the caller's child.
            mlflow.set_tag(nesting.PARENT_TAG, own_parent)
        mark_training_experiment(experiment_id)
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


def mark_training_experiment(experiment_id):
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
