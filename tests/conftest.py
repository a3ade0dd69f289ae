"""Shared fixtures: an isolated MLflow store, the CLI in-process, sample inputs for any model."""

import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Tests never use the network: a missing tensorflow-datasets dataset is never downloaded.
os.environ.setdefault("ZOO_DOWNLOAD_PROBE", "none")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def checkpoints_outside_the_checkout(tmp_path_factory):
    """Runs checkpoint every epoch; keep their folders out of the working directory."""
    os.environ.setdefault("ZOO_CHECKPOINT_DIR", str(tmp_path_factory.mktemp("checkpoints")))


@pytest.fixture(scope="session")
def admissions_csv():
    """The admissions table shipped inside the package (`zoo train mlp --dataset admissions`)."""
    from zoo.datasets import tabular

    return tabular.packaged_path("admissions")


@pytest.fixture(scope="session")
def session_store(tmp_path_factory):
    """One SQLite MLflow store for the whole session (creating a store costs seconds)."""
    folder = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{folder}/mlflow.db"


@pytest.fixture()
def tracking_uri(session_store, monkeypatch, tmp_path):
    """Point MLflow at the session store and run the test in its own working directory."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", session_store)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(session_store)
    yield session_store
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture()
def run_cli(tracking_uri, capsys):
    """Run `zoo ARGS...` in this process; return (exit status, stdout, stderr)."""
    from zoo.cli import main

    def run(*argv):
        status = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def running_runs(uri):
    """Runs of every experiment in `uri` whose status is still RUNNING."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    return client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'")


def sample_inputs(model, count=4, seed=0):
    """Random inputs matching `model.inputs` (floats, ints, or strings), for prediction checks."""
    import keras

    rng = np.random.default_rng(seed)

    def one(tensor):
        shape = (count,) + tuple(1 if d is None else d for d in tensor.shape[1:])
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        if dtype == "string":
            import tensorflow as tf

            return tf.constant(np.full(shape, "a"))
        if "int" in dtype:
            return rng.integers(0, 5, size=shape).astype(dtype)
        return rng.random(shape).astype(dtype)

    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        # A subclassed model has no symbolic inputs; `build(input_shape)` records its input shape.
        shape = (model.get_build_config() or {}).get("input_shape")
        if shape is None:
            raise AssertionError(f"{model.name}: no inputs and no build config to sample from")
        if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
            return [rng.random((count,) + tuple(s[1:])).astype("float32") for s in shape]
        return rng.random((count,) + tuple(shape[1:])).astype("float32")
    if isinstance(model.input, dict):
        return {name: one(tensor) for name, tensor in model.input.items()}
    if len(inputs) == 1:
        return one(inputs[0])
    return [one(tensor) for tensor in inputs]
