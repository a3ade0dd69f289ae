"""Shared fixtures: an isolated MLflow store, the CLI in-process, sample inputs for any model."""

import atexit
import os
import pathlib
import shutil
import subprocess
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Tests never use the network: a missing tensorflow-datasets dataset is never downloaded.
os.environ.setdefault("ZOO_DOWNLOAD_PROBE", "none")

# Nothing the suite runs may write under the real home: Keras (~/.keras), matplotlib's font cache,
# the GAN judges (~/.cache/zoo), pip and MLflow's telemetry all follow these variables. They are
# set here, before the imports below, because some libraries read them once at import time; child
# processes (mlflow server, logical-device runs) inherit them.
# conftest is imported twice (as `conftest` by pytest, as `tests.conftest` by test modules): the
# second import must keep the folder the first one chose.
_SANDBOX = os.environ.get("ZOO_TESTS_HOME")
if not _SANDBOX:
    _SANDBOX = os.environ["ZOO_TESTS_HOME"] = tempfile.mkdtemp(prefix="zoo-tests-home-")
    atexit.register(shutil.rmtree, _SANDBOX, ignore_errors=True)
for _variable, _folder in (
    ("HOME", "home"),
    ("XDG_CACHE_HOME", "cache"),
    ("XDG_CONFIG_HOME", "config"),
    ("XDG_DATA_HOME", "data"),
    ("MPLCONFIGDIR", "matplotlib"),
    ("KERAS_HOME", "keras"),
):
    os.makedirs(os.path.join(_SANDBOX, _folder), exist_ok=True)
    os.environ[_variable] = os.path.join(_SANDBOX, _folder)
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.postgres import postgres  # noqa: E402,F401 - the session's PostgreSQL server, as a fixture

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


@pytest.fixture(scope="session")
def tracking_server(request, tmp_path_factory):
    """The session's `zoo server` (tests/servers.py), started, not yet waited for: `.wait()` gives its URL.

    Its store is a PostgreSQL database where tests/postgres.py can start a cluster (a team's set-up,
    which tests/test_team.py needs), else a SQLite file: the server tests of
    tests/test_tracking_server.py run on either. One server for both modules saves a start (10-30 s
    on 2 cores) and a stop; each module keeps to its own experiments and model names.
    """
    from tests import servers
    from tests.postgres import required, unavailable

    folder = tmp_path_factory.mktemp("tracking-server")
    if unavailable() is None or required():  # where PostgreSQL is required, its absence fails here
        store = request.getfixturevalue("postgres").create("mlflow")
    else:
        store = f"sqlite:///{folder}/mlflow.db"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for inherited in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_URI"):
        env.pop(inherited, None)
    with servers.started(store, folder, env=env) as server:
        yield server


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


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path, monkeypatch):
    """Every test runs in its own temporary folder, so that what lands in the working directory
    (MLflow's ./mlruns beside a SQLite store named by path, ./mlflow.db, ./zoo-checkpoints) never
    lands in the checkout: the session's git-status check caught two tests doing that."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture()
def run_cli(tracking_uri, capsys):
    """Run `zoo ARGS...` in this process; return (exit status, stdout, stderr)."""
    from zoo.cli import main

    def run(*argv):
        # What the test printed before (MLflow's lines when its call created the store) is not the CLI's.
        capsys.readouterr()
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


def one_recipe_per_module():
    """One recipe name per recipe module, sorted: rnn, lstm and gru share their module's code (the
    run loop, the data) and differ only in the cell, so a whole run of one of them stands for all."""
    from zoo import training

    chosen = {}
    for name in training.recipe_names():
        chosen.setdefault(type(training.get_recipe(name)).__module__, name)
    return sorted(chosen.values())


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


# === The suite's hygiene: this checkout's code, nothing left in it ===


def _imported_from_elsewhere():
    """Names of zoo's packages that Python imports from outside this checkout."""
    import importlib

    homes = {"zoo": REPO / "zoo", "zoo.recipes": REPO / "recipes", "zoo.datasets": REPO / "datasets"}
    wrong = []
    for name, home in homes.items():
        where = pathlib.Path(importlib.import_module(name).__file__).resolve().parent
        if where != home:
            wrong.append(f"{name} from {where}")
    return wrong


def _git_status():
    """`git status` lines of the checkout, ignored files included (None outside a git checkout)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--ignored", "--untracked-files=all"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    # Bytecode and the virtual environment change under any Python run; they are not the suite's output.
    noise = ("__pycache__/", ".pytest_cache/", ".venv/", ".ruff_cache/")
    return {line for line in result.stdout.splitlines() if not any(part in line for part in noise)}


def pytest_configure(config):
    # An editable install of another clone would silently test that clone's code.
    wrong = _imported_from_elsewhere()
    if wrong:
        raise pytest.UsageError(
            f"The tests in {REPO} would test code from another checkout: {', '.join(wrong)}. "
            f"Run `pip install -e {REPO}` in this environment."
        )
    config.stash[_STATUS_AT_START] = _git_status()


_STATUS_AT_START = pytest.StashKey()


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when the suite left a file in the checkout (tests write only in temporary folders)."""
    before = session.config.stash.get(_STATUS_AT_START, None)
    after = _git_status()
    if before is None or after is None:
        return
    new = sorted(after - before)
    if new:
        session.config.stash[_LEFT_BEHIND] = new
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_LEFT_BEHIND = pytest.StashKey()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    new = config.stash.get(_LEFT_BEHIND, None)
    if new:
        terminalreporter.write_line(
            "FAILED: the suite left files in the checkout (git status): " + "; ".join(new), red=True
        )


# Tests moved to the opt-in `large` set to keep the default suite within its 15 minutes on 2 cores
# after issues 30-35 added about four minutes of tests (a full run measured 1,112 s). Each covers a
# path the default suite still exercises more cheaply elsewhere (named after it).
BUDGET_LARGE = {
    # JAX without TensorFlow: the backend matrix (test_backends.py) trains every model on JAX.
    "tests/test_pipelines.py::test_jax_trains_in_memory_recipes_and_streams_a_csv_without_tensorflow",
    # SIGTERM (15): the SIGINT case (2) of the same test, which takes the same path, stays.
    "tests/test_faults.py::test_signal_kills_the_run_keeps_the_checkpoint_and_resume_matches_an_uninterrupted_run[15]",
    # Several devices: the one-step equality tests on two JAX and two logical TF devices stay.
    "tests/test_devices_jax.py::test_devices_all_on_jax_trains_over_data_parallel",
    "tests/test_devices_jax.py::test_one_gan_and_rbm_step_over_two_jax_devices_matches_one_device",
    "tests/test_devices_jax.py::test_multi_worker_tf_config_points_to_the_jax_path",
    "tests/test_devices.py::test_two_logical_devices_match_one_device",
    # `--backend jax` on the command line: the backend matrix runs the same recipes on JAX.
    "tests/test_backends.py::test_backend_option_trains_on_jax_and_the_run_records_it",
    # run_all's table: test_a_script_run_with_an_impossible_target_exits_1 still runs a script.
    "tests/test_benchmarks.py::test_runner_writes_the_table_for_a_quick_subset",
    # Concurrent first use of a new SQLite store, every epoch's metrics recorded: the two tune
    # workers of test_tune.py::test_two_processes_share_one_study_on_a_new_sqlite_store_and_lose_no_metric
    # (on PostgreSQL: test_team.py's four trainings at once), which paid for test_team.py's scenarios.
    "tests/test_faults.py::test_three_concurrent_runs_on_one_new_sqlite_store_record_every_metric",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in BUDGET_LARGE:
            item.add_marker(pytest.mark.large)
