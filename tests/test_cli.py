"""The `zoo` command: listing, training, and one-line errors with exit status 2 for bad input."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import mlflow

from tests.conftest import running_runs


def test_list_and_info(run_cli):
    status, out, _ = run_cli("list")
    assert status == 0 and "mlp" in out
    status, out, _ = run_cli("list", "--technique", "mlp")
    assert status == 0 and out.split()[0] == "mlp"
    status, out, _ = run_cli("info", "mlp")
    assert status == 0 and "hidden_units: tuple[int, ...] = (64, 32)" in out and "zoo train mlp" in out


def test_train_mlp_from_the_command_line(run_cli, tracking_uri, admissions_csv):
    status, out, err = run_cli(
        "train",
        "mlp",
        "--data",
        admissions_csv,
        "--target",
        "admit",
        "--epochs",
        "2",
        "--set",
        "hidden_units=8",
        "--set",
        "activation=sigmoid",
        "--experiment",
        "cli-test",
        "--run-name",
        "first",
    )
    assert status == 0, err
    run_id = out.strip().splitlines()[-1].split()[1]
    run = mlflow.MlflowClient(tracking_uri).get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "first"
    assert run.data.params["model.hidden_units"] == "8" and run.data.params["model.activation"] == "sigmoid"
    assert mlflow.MlflowClient(tracking_uri).get_experiment(run.info.experiment_id).name == "cli-test"


def _bad_inputs(tmp, admissions_csv):
    empty = tmp / "empty.csv"
    empty.write_text("")
    one_class = tmp / "one.csv"
    one_class.write_text("x,y\n1,a\n2,a\n3,a\n4,a\n5,a\n")
    letters = tmp / "letters.csv"
    letters.write_text("x,y\n1,0\n2,1\n3,0\nfour,1\n5,0\n6,1\n7,0\n8,1\n")
    return [
        (["train", "cnnn"], "invalid choice: 'cnnn'"),
        (["info", "mpl"], "Unknown model 'mpl'. Did you mean 'mlp'?"),
        (["train", "mlp", "--set", "hiddn_units=8"], "Unknown key 'hiddn_units'"),
        (["train", "mlp", "--set", "hidden_units=eight"], "Bad value for 'hidden_units'"),
        (["train", "mlp", "--epochs", "many"], "Bad value for 'epochs': expected int"),
        (["train", "mlp", "--set", "dropout=3"], "'dropout' must be in [0.0, 1.0)"),
        (["train", "mlp", "--data", str(tmp / "missing.csv"), "--target", "y"], "CSV file not found"),
        (["train", "mlp", "--data", admissions_csv, "--target", "admitted"], "Target column 'admitted' is not in"),
        (["train", "mlp", "--data", str(empty), "--target", "y"], "CSV file is empty"),
        (["train", "mlp", "--data", str(one_class), "--target", "y"], "only 1 distinct value"),
        (["train", "mlp", "--data", str(letters), "--target", "y"], "row 5 holds 'four'"),
        (["train", "mlp", "--dataset", "mnist_tabular"], "Unknown embedded table"),
        (["train", "mlp", "--set", "noequals"], "--set expects KEY=VALUE"),
        (["train", "mlp", "--tracking-uri", "http://127.0.0.1:9"], "Cannot reach the MLflow tracking server"),
    ]


def test_bad_input_gives_one_line_and_exit_2(run_cli, tracking_uri, tmp_path, admissions_csv):
    for argv, expected in _bad_inputs(tmp_path, admissions_csv):
        status, out, err = run_cli(*argv)
        assert status == 2, (argv, err)
        assert expected in err, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("zoo: error: "), (argv, err)
        assert "Traceback" not in err
    assert not running_runs(tracking_uri)


def _zoo(*argv, env=None, **kwargs):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "zoo", *argv], capture_output=True, text=True, env=environment, timeout=300, **kwargs
    )


def test_python_dash_m_zoo_bad_input_has_no_traceback(tmp_path):
    result = _zoo("train", "mlp", "--data", str(tmp_path / "nope.csv"), "--target", "y", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"zoo: error: CSV file not found: {tmp_path / 'nope.csv'}. Check the path given to --data."
    ]
    assert not (tmp_path / "mlflow.db").exists() or not running_runs(f"sqlite:///{tmp_path}/mlflow.db")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ui_serves_the_store_that_train_wrote(tmp_path, session_store):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", "ui", "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": session_store},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, process.stdout.read().decode()[-2000:]
                assert time.time() < deadline, "mlflow ui did not answer /health in 90 s"
                time.sleep(1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search",
            data=b'{"max_results": 100}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read().decode()
        client = mlflow.MlflowClient(session_store)
        for experiment in client.search_experiments():
            assert experiment.name in body
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
