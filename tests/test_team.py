"""A team's set-up on a real PostgreSQL (tests/postgres.py starts one): `zoo server` on it, runs and
studies shared by concurrent processes, and one-line errors for a wrong login or a missing database.

The default suite runs the login errors, the advisory lock and one `zoo train` into PostgreSQL; what
starts a server or several TensorFlow processes (`zoo server`, four trainings at once, two tune
workers, a two-process launch, four first uses of a new database) is `large`.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import REPO, running_runs
from tests.postgres import PASSWORD as postgres_password
from zoo.errors import ZooError
from zoo.tracking import database

SERVER_START_TIMEOUT = 180


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", **extra)
    for inherited in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_URI"):
        env.pop(inherited, None)
    return env


@pytest.fixture(scope="module")
def team_server(postgres, tmp_path_factory):
    """`zoo server` on a new PostgreSQL database, artifacts proxied into a temporary folder: its URL."""
    folder = tmp_path_factory.mktemp("team-server")
    store = postgres.create("mlflow")
    port = _free_port()
    log = open(folder / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", "server", "--backend-store-uri", store, "--port", str(port)]
        + ["--artifacts-destination", str(folder / "artifacts"), "--workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        # One worker and no job runner: the same server, lighter on a 2-core test machine.
        env=_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
        cwd=folder,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"zoo server did not answer /health:\n{(folder / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(0.25)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _zoo_processes(commands, folder, **env):
    """Start one `zoo` process per argument list at once, wait for all; their (status, out, err)."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "zoo", *map(str, command)],
            cwd=folder,
            env=_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=900)
        results.append((process.returncode, out, err))
    return results


def _printed_metrics(out):
    """{name: value} of the `run ID finished: a=1, b=2` line `zoo train` prints, and the run id."""
    line = next(line for line in out.splitlines() if line.startswith("run ") and " finished: " in line)
    head, _, values = line.partition(" finished: ")
    metrics = dict(item.split("=") for item in values.split(", "))
    return head.split()[1], {key: float(value) for key, value in metrics.items()}


# === One-line errors (default suite) ===


def test_wrong_password_and_missing_database_are_one_line_errors(postgres, run_cli, tmp_path):
    postgres.create("team_errors")
    wrong, missing = postgres.url("team_errors", password="not-the-pass"), postgres.url("absent")
    with pytest.raises(ZooError, match="refused the login of user 'zoo'") as caught:
        database.check(wrong)
    assert "not-the-pass" not in str(caught.value) and ":***@" in str(caught.value)
    with pytest.raises(ZooError, match="database 'absent' does not exist") as caught:
        database.check(missing)
    assert "createdb" in str(caught.value)
    with pytest.raises(ZooError, match="no database server answers"):
        database.check(f"postgresql://zoo:x@127.0.0.1:{_free_port()}/mlflow")

    # Every command that takes a database URL says it within seconds (MLflow and Optuna retry
    # for about two minutes and end in a traceback), exit 2, one line, no run left behind.
    storage = f"sqlite:///{tmp_path}/optuna.db"
    cases = [
        (["train", "mlp", "--epochs", "1", "--tracking-uri", wrong], "refused the login"),
        (["tune", "mlp", "--trials", "1", "--epochs", "1", "--storage", missing], "does not exist"),
        (["tune", "mlp", "--trials", "1", "--epochs", "1", "--storage", storage, "--tracking-uri", missing], "exist"),
        (["server", "--backend-store-uri", wrong, "--port", _free_port()], "refused the login"),
        (["ui", "--tracking-uri", missing], "does not exist"),
    ]
    for argv, words in cases:
        started = time.monotonic()
        status, out, err = run_cli(*argv)
        assert status == 2, (argv, out, err)
        assert words in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        assert time.monotonic() - started < 30, argv
    assert not (tmp_path / "optuna.db").exists()


def test_advisory_lock_holds_other_connections_off(postgres):
    import sqlalchemy

    url = postgres.create("team_lock")
    key = __import__("zlib").crc32(b"zoo: tune bookkeeping")
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as other:
            probe = sqlalchemy.text("SELECT pg_try_advisory_lock(:key)")
            release = sqlalchemy.text("SELECT pg_advisory_unlock(:key)")
            with database.advisory_lock(url, "zoo: tune bookkeeping"):
                assert other.execute(probe, {"key": key}).scalar() is False
            assert other.execute(probe, {"key": key}).scalar() is True
            other.execute(release, {"key": key})
    finally:
        engine.dispose()


def test_zoo_server_command_line_and_what_it_refuses(run_cli, tracking_uri, tmp_path):
    import mlflow

    from zoo.cli import build_parser
    from zoo.commands import server

    # The session's SQLite store: a new one would cost its schema's creation (seconds).
    store, artifacts, port = tracking_uri, tmp_path / "artifacts", _free_port()
    argv = ["server", "--backend-store-uri", store, "--artifacts-destination", str(artifacts), "--port", str(port)]
    command = server.command_line(build_parser().parse_args([*argv, "--", "--allowed-hosts", "mlflow.example"]))
    assert command[1:] == [
        *("-m", "mlflow", "server", "--backend-store-uri", store),
        *("--artifacts-destination", str(artifacts), "--serve-artifacts", "--host", "127.0.0.1"),
        *("--port", str(port), "--allowed-hosts", "mlflow.example"),
    ]
    assert artifacts.is_dir()
    # The store was prepared (under its lock) and its Default experiment opens in model-training mode.
    assert mlflow.MlflowClient(store).get_experiment("0").tags["mlflow.experimentKind"] == "custom_model_development"

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        status, _, err = run_cli("server", "--backend-store-uri", store, "--port", busy.getsockname()[1])
    assert status == 2 and "Cannot listen on 127.0.0.1" in err and err.count("\n") == 1
    status, _, err = run_cli("server", "--backend-store-uri", "http://127.0.0.1:5000")
    assert status == 2 and "is a tracking server, not a store" in err


# === MLflow on PostgreSQL ===


def test_train_logs_every_metric_to_postgresql(postgres, run_cli):
    import mlflow

    url = postgres.create("team_direct")
    previous = mlflow.get_tracking_uri()
    try:
        status, out, err = run_cli("train", "mlp", "--epochs", 3, "--patience", 0, "--tracking-uri", url)
        assert status == 0, err
        _check_run(mlflow.MlflowClient(url), *_printed_metrics(out), epochs=3)
    finally:
        mlflow.set_tracking_uri(previous)  # the next tests' store, not a database that ends with the session


def _check_run(client, run_id, printed, epochs):
    """The run FINISHED with what `zoo train` printed, and one value per epoch of each per-epoch metric."""
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    for key, value in printed.items():
        assert run.data.metrics[key] == pytest.approx(value, rel=1e-3), (run_id, key)
    per_epoch = [key for key in run.data.metrics if key in ("loss", "val_loss", "accuracy", "val_accuracy")]
    assert len(per_epoch) == 4, run.data.metrics
    for key in per_epoch:
        steps = sorted(m.step for m in client.get_metric_history(run_id, key))
        assert steps == list(range(epochs)), (run_id, key, steps)


@pytest.mark.large
def test_four_first_uses_of_a_new_database_at_once_all_succeed(postgres, tmp_path):
    """Without the advisory lock, three of four processes failed creating MLflow's tables together
    (UniqueViolation on pg_type_typname_nsp_index)."""
    url = postgres.create("team_race")
    code = f"from zoo.tracking import database; database.prepare_mlflow_store({url!r}); print('ready')"
    processes = [
        subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    assert [process.communicate(timeout=600)[0].strip() for process in processes] == ["ready"] * 4


# === Through `zoo server` on PostgreSQL ===


@pytest.mark.large
def test_zoo_server_on_postgresql_takes_a_run_and_zoo_ui_points_at_it(team_server, tmp_path, capsys):
    import mlflow

    from zoo.cli import main

    ((status, out, err),) = _zoo_processes(
        [["train", "mlp", "--epochs", "2", "--tracking-uri", team_server, "--experiment", "team-one"]], tmp_path
    )
    assert status == 0, err[-3000:]
    run_id, printed = _printed_metrics(out)
    client = mlflow.MlflowClient(team_server)
    run = client.get_run(run_id)
    _check_run(client, run_id, printed, epochs=int(run.data.metrics["epochs_trained"]))
    # Artifacts go through the server (proxied), not to a path the client must reach.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert {a.path for a in client.list_artifacts(run_id)}
    # The experiment opens in the UI's model-training mode.
    assert client.get_experiment_by_name("team-one").tags.get("mlflow.experimentKind") == "custom_model_development"

    capsys.readouterr()
    assert main(["ui", "--tracking-uri", team_server]) == 0
    assert f"open {team_server} in a browser" in capsys.readouterr().out


@pytest.mark.large
def test_four_concurrent_trainings_through_the_server_lose_no_metric(team_server, tmp_path):
    import mlflow

    epochs = 4
    command = ["train", "mlp", "--epochs", epochs, "--patience", 0, "--tracking-uri", team_server]
    results = _zoo_processes([[*command, "--experiment", "team-four", "--seed", seed] for seed in range(4)], tmp_path)
    client = mlflow.MlflowClient(team_server)
    runs = []
    for status, out, err in results:
        assert status == 0, err[-3000:]
        runs.append(_printed_metrics(out))
    assert len({run_id for run_id, _ in runs}) == 4
    for run_id, printed in runs:
        _check_run(client, run_id, printed, epochs)
    assert not running_runs(team_server)


@pytest.mark.large
def test_two_tune_workers_share_one_study_on_postgresql(postgres, team_server, tmp_path):
    import mlflow

    storage = postgres.create("optuna")
    command = ["tune", "mlp", "--trials", 2, "--epochs", 1, "--study", "shared", "--storage", storage]
    command += ["--tracking-uri", team_server, "--experiment", "team-tune"]
    results = _zoo_processes([command, command], tmp_path)
    for status, out, err in results:
        assert status == 0, err[-3000:]
        assert re.search(r"study shared \(postgresql://zoo:\*\*\*@", out), out
        assert postgres_password not in out + err
    client = mlflow.MlflowClient(team_server)
    experiment = client.get_experiment_by_name("team-tune").experiment_id
    parents = client.search_runs([experiment], "tags.`zoo.tune` = 'study'")
    assert len(parents) == 1
    trials = client.search_runs([experiment], "tags.`zoo.tune` = 'trial'")
    assert sorted(int(run.data.tags["zoo.trial"]) for run in trials) == [0, 1, 2, 3]
    assert {run.data.tags["mlflow.parentRunId"] for run in trials} == {parents[0].info.run_id}
    # The best configuration was trained again and tested once, not once per worker.
    assert len(client.search_runs([experiment], "tags.`zoo.tune` = 'final'")) == 1
    assert not running_runs(team_server)


@pytest.mark.large
def test_launch_two_processes_log_one_run_to_the_server(team_server, tmp_path):
    import mlflow

    command = ["launch", "--processes", 2, "--", "train", "mlp", "--epochs", 2, "--batch-size", 64]
    command += ["--tracking-uri", team_server, "--experiment", "team-launch"]
    ((status, out, err),) = _zoo_processes([command], tmp_path, KERAS_BACKEND="jax")
    assert status == 0, err[-3000:]
    run_id, printed = _printed_metrics(out)
    client = mlflow.MlflowClient(team_server)
    runs = client.search_runs([client.get_experiment_by_name("team-launch").experiment_id])
    assert [run.info.run_id for run in runs] == [run_id]
    assert runs[0].info.status == "FINISHED" and runs[0].data.metrics["test_accuracy"] == pytest.approx(
        printed["test_accuracy"], rel=1e-3
    )
