"""`zoo compare` on a local SQLite store: read with sqlite3 (no MLflow import), the same table as MLflow's client.

The store is filled through `MlflowClient` (runs with metrics, a NaN, params and tags; a failed, a
deleted and a study's parent run; another experiment), then the quick reader and the client's
path print the same table.
"""

import json
import subprocess
import sys

import pytest


@pytest.fixture()
def store(session_store, tmp_path, monkeypatch):
    """A copy of the session's store (creating a store's tables costs seconds) with runs of its own."""
    import contextlib
    import sqlite3

    import mlflow

    mlflow.MlflowClient(session_store).search_experiments(max_results=1)  # creates it where no test did
    path = tmp_path / "mlflow.db"
    with contextlib.closing(sqlite3.connect(session_store[len("sqlite:///") :])) as source:
        with contextlib.closing(sqlite3.connect(path)) as copy:
            source.backup(copy)
            # Other tests' experiments stay; none of their runs is left running here.
            copy.execute("UPDATE runs SET status = 'FINISHED' WHERE status = 'RUNNING'")
            copy.execute("UPDATE experiments SET name = name || '-before' WHERE name IN ('zoo', 'other')")
            copy.commit()
    uri = f"sqlite:///{path}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    zoo, other = client.create_experiment("zoo"), client.create_experiment("other")
    made = []
    for i, (recipe, accuracy, status) in enumerate(
        [
            ("mlp", 0.81, "FINISHED"),
            ("cnn", 0.93, "FINISHED"),
            ("mlp", float("nan"), "FINISHED"),
            ("mlp", 0.99, "FAILED"),
        ]
    ):
        run = client.create_run(zoo, start_time=1_000_000 + i * 1000, run_name=f"{recipe}-{i}")
        client.set_tag(run.info.run_id, "zoo.recipe", recipe)
        client.log_param(run.info.run_id, "model.units", str(8 * (i + 1)))
        client.log_param(run.info.run_id, "epochs", "3")
        client.log_metric(run.info.run_id, "test_accuracy", 0.1, step=0)
        client.log_metric(run.info.run_id, "test_accuracy", accuracy, step=1)
        client.log_metric(run.info.run_id, "test_loss", 1 - i / 10)
        client.set_terminated(run.info.run_id, status, end_time=1_000_000 + i * 1000 + 65_000)
        made.append(run.info.run_id)
    client.delete_run(made[0])
    study = client.create_run(zoo, run_name="study")
    client.set_tag(study.info.run_id, "zoo.tune", "study")
    client.set_terminated(study.info.run_id)
    elsewhere = client.create_run(other, run_name="elsewhere")
    client.log_metric(elsewhere.info.run_id, "test_accuracy", 1.0)
    client.set_terminated(elsewhere.info.run_id)
    return uri, client, made


def _compare(capsys, *argv):
    from zoo.cli import main

    capsys.readouterr()
    assert main(["compare", *argv]) == 0
    return capsys.readouterr().out


def test_the_quick_reader_prints_what_mlflows_client_does(store, capsys, monkeypatch):
    from zoo.tracking import sqlite_runs

    uri, _, made = store
    runs = sqlite_runs.finished_runs(uri, "zoo")
    # The deleted and the failed run are left out; newest first, as search_runs answers.
    assert [run.info.run_id for run in runs] == [runs[0].info.run_id, made[2], made[1]]
    assert runs[2].data.metrics["test_accuracy"] == 0.93 and runs[2].data.params["model.units"] == "16"
    assert runs[1].data.metrics["test_accuracy"] != runs[1].data.metrics["test_accuracy"]  # NaN logged
    assert [run.info.run_id for run in sqlite_runs.finished_runs(uri, "zoo", recipe="cnn")] == [made[1]]
    assert sqlite_runs.finished_runs(uri, "no such experiment") is None
    assert sqlite_runs.finished_runs("http://127.0.0.1:5000", "zoo") is None

    quick = {fmt: _compare(capsys, "--format", fmt) for fmt in ("text", "json")}
    quick["cnn"] = _compare(capsys, "--recipe", "cnn", "--format", "csv")
    monkeypatch.setattr(sqlite_runs, "finished_runs", lambda *args, **kwargs: None)
    client = {fmt: _compare(capsys, "--format", fmt) for fmt in ("text", "json")}
    client["cnn"] = _compare(capsys, "--recipe", "cnn", "--format", "csv")
    assert quick == client
    # The NaN run (diverged) ranks after the scored one, and is not marked best.
    ranked = json.loads(quick["json"])["runs"]
    assert [(run["id"], run["best"]) for run in ranked] == [(made[1], True), (made[2], False)]


def test_a_running_run_leaves_the_store_to_mlflows_client(store):
    from zoo.tracking import sqlite_runs

    uri, client, _ = store
    # Maybe a lost run: the client's path ends it KILLED on the way (zoo.tracking.heartbeat).
    experiment = client.get_experiment_by_name("other").experiment_id
    running = client.create_run(experiment)
    assert sqlite_runs.finished_runs(uri, "zoo") is None
    client.set_terminated(running.info.run_id)
    assert len(sqlite_runs.finished_runs(uri, "zoo")) == 3


def test_compare_on_a_sqlite_store_imports_no_mlflow(store, tmp_path):
    uri, _, _ = store
    code = (
        "import sys; from zoo.cli import main; status = main(['compare', '--tracking-uri', sys.argv[1]]); "
        "assert status == 0; assert 'mlflow' not in sys.modules, sorted(m for m in sys.modules if 'mlflow' in m)"
    )
    done = subprocess.run([sys.executable, "-c", code, uri], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "cnn-1" in done.stdout, done.stdout
