"""A team's set-up on a real PostgreSQL (tests/postgres.py starts one): `zoo server` on it, runs and
studies shared by concurrent processes, and one-line errors for a wrong login or a missing database.

The issue's four scenarios run in the default suite, against the session's `zoo server` on a
PostgreSQL database (conftest's `tracking_server`, which tests/test_tracking_server.py and
tests/test_launch.py share): four trainings through it and two tune workers sharing a study start
at once here (on 2 cores that costs about what the six cost one after another, and it loads the
server and the database with more concurrent writers than either scenario alone); the wrong login
and the missing database are below; `zoo launch --processes 2` logging one run to the server is
tests/test_launch.py::test_two_processes_make_one_run_equal_to_one_process. Four first uses of a
new database at once (a stress test of the schema lock) is `large`.
"""

import os
import re
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, running_runs
from tests.postgres import PASSWORD as postgres_password
from tests.servers import free_port
from zoo.errors import ZooError
from zoo.tracking import database


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", **extra)
    for inherited in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_URI"):
        env.pop(inherited, None)
    return env


@pytest.fixture(scope="module")
def team_server(postgres, tracking_server):
    """The session's `zoo server`, on a PostgreSQL database of the session's cluster: its URL."""
    assert tracking_server.store.startswith("postgresql://"), tracking_server.store
    return tracking_server.wait()


def _zoo_processes(groups, folder):
    """Start the `zoo` processes of every group at once, wait for all: {group: [(status, out, err), ...]}.

    `groups` maps a name to argument lists, one process each. Each process runs in its own folder
    under `folder` and writes its output to files there (a pipe that nobody reads while the test
    waits for another process could fill and stall it).
    """
    started = []
    for name, commands in groups.items():
        for index, command in enumerate(commands):
            home = folder / f"{name}-{index}"
            home.mkdir()
            out, err = open(home / "stdout", "w+"), open(home / "stderr", "w+")
            process = subprocess.Popen(
                [sys.executable, "-m", "zoo", *map(str, command)], cwd=home, env=_env(), stdout=out, stderr=err
            )
            started.append((name, process, out, err))
    results = {name: [] for name in groups}
    try:
        for name, process, out, err in started:
            process.wait(timeout=900)
            out.seek(0), err.seek(0)
            results[name].append((process.returncode, out.read(), err.read()))
    finally:
        for _, process, out, err in started:
            if process.poll() is None:
                process.kill()
                process.wait()
            out.close(), err.close()
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
        database.check(f"postgresql://zoo:x@127.0.0.1:{free_port()}/mlflow")

    # Every command that takes a database URL says it within seconds (MLflow and Optuna retry
    # for about two minutes and end in a traceback), exit 2, one line, no run left behind. The
    # imports come first, outside the timing (TensorFlow's took 40 s on a machine under a load of 25).
    from zoo.cli import build_parser
    from zoo.quiet import load_tensorflow

    build_parser()
    load_tensorflow()
    storage = f"sqlite:///{tmp_path}/optuna.db"
    cases = [
        (["train", "mlp", "--epochs", "1", "--tracking-uri", wrong], "refused the login"),
        (["tune", "mlp", "--trials", "1", "--epochs", "1", "--storage", missing], "does not exist"),
        (["tune", "mlp", "--trials", "1", "--epochs", "1", "--storage", storage, "--tracking-uri", missing], "exist"),
        (["server", "--backend-store-uri", wrong, "--port", free_port()], "refused the login"),
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
    store, artifacts, port = tracking_uri, tmp_path / "artifacts", free_port()
    argv = ["server", "--backend-store-uri", store, "--artifacts-destination", str(artifacts), "--port", str(port)]
    command = server.command_line(build_parser().parse_args([*argv, "--", "--allowed-hosts", "mlflow.example"]))
    assert command[1:] == [
        *("-m", "mlflow", "server", "--backend-store-uri", store),
        *("--artifacts-destination", str(artifacts), "--serve-artifacts", "--host", "127.0.0.1"),
        *("--port", str(port), "--uvicorn-opts", f"--timeout-keep-alive {server.KEEP_ALIVE_SECONDS}"),
        *("--allowed-hosts", "mlflow.example"),
    ]
    # The user's own uvicorn options replace the zoo's keep-alive.
    own = server.command_line(build_parser().parse_args([*argv, "--", "--uvicorn-opts", "--timeout-keep-alive 9"]))
    assert own[-2:] == ["--uvicorn-opts", "--timeout-keep-alive 9"] and own.count("--uvicorn-opts") == 1
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


# === Through `zoo server` on PostgreSQL: two scenarios' processes at once ===

TRAIN_EPOCHS = 4


@pytest.fixture(scope="module")
def team_processes(postgres, team_server, tmp_path_factory):
    """Four `zoo train` and two `zoo tune` workers on one study, all started at once against the
    server: {"train": [...], "tune": [...]} of (status, stdout, stderr), and the study's storage URL
    as "storage"."""
    storage = postgres.create("optuna")
    train = ["train", "mlp", "--epochs", TRAIN_EPOCHS, "--patience", 0, "--tracking-uri", team_server]
    # One trial per worker is enough to tell a shared study (trials 0 and 1) from two (0 and 0).
    tune = ["tune", "mlp", "--trials", 1, "--epochs", 1, "--study", "shared", "--storage", storage]
    groups = {
        "train": [[*train, "--experiment", "team-four", "--seed", seed] for seed in range(4)],
        "tune": [[*tune, "--tracking-uri", team_server, "--experiment", "team-tune"]] * 2,
    }
    return _zoo_processes(groups, tmp_path_factory.mktemp("team-processes")) | {"storage": storage}


def test_four_concurrent_trainings_through_the_server_lose_no_metric(team_server, team_processes, capsys):
    import mlflow

    from zoo.cli import main

    runs = []
    for status, out, err in team_processes["train"]:
        assert status == 0, err[-3000:]
        runs.append(_printed_metrics(out))
    assert len({run_id for run_id, _ in runs}) == 4
    client = mlflow.MlflowClient(team_server)
    for run_id, printed in runs:
        _check_run(client, run_id, printed, TRAIN_EPOCHS)
        # Artifacts go through the server (proxied), not to a path the client must reach.
        run = client.get_run(run_id)
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        assert {"config.yaml", "learning_curve.png"} <= {a.path for a in client.list_artifacts(run_id)}
    # The experiment opens in the UI's model-training mode.
    assert client.get_experiment_by_name("team-four").tags.get("mlflow.experimentKind") == "custom_model_development"
    assert not running_runs(team_server)  # of the six processes' runs (all ended), none left RUNNING

    capsys.readouterr()
    assert main(["ui", "--tracking-uri", team_server]) == 0
    assert f"open {team_server} in a browser" in capsys.readouterr().out


def test_two_tune_workers_share_one_study_on_postgresql(team_server, team_processes):
    import mlflow
    import optuna

    for status, out, err in team_processes["tune"]:
        assert status == 0, err[-3000:]
        assert re.search(r"study shared \(postgresql://zoo:\*\*\*@", out), out
        assert postgres_password not in out + err
    client = mlflow.MlflowClient(team_server)
    experiment = client.get_experiment_by_name("team-tune").experiment_id
    (parent,) = client.search_runs([experiment], "tags.`zoo.tune` = 'study'")
    assert parent.info.status == "FINISHED"
    trials = client.search_runs([experiment], "tags.`zoo.tune` = 'trial'")
    assert sorted(int(run.data.tags["zoo.trial"]) for run in trials) == [0, 1]
    assert {run.data.tags["mlflow.parentRunId"] for run in trials} == {parent.info.run_id}
    study = optuna.load_study(study_name="shared", storage=team_processes["storage"])
    assert sorted(trial.number for trial in study.trials) == [0, 1]
    # The best configuration is trained again and tested once per best trial, not once per worker:
    # a second worker retrains only when a trial it finished later beat the first one's best.
    finals = client.search_runs([experiment], "tags.`zoo.tune` = 'final'")
    tested = [run.data.tags["zoo.trial"] for run in finals]
    assert finals and len(set(tested)) == len(tested), tested
    assert parent.data.tags["zoo.tune.final_run"] in {run.info.run_id for run in finals}
    assert all(run.info.status == "FINISHED" for run in [*trials, *finals])
