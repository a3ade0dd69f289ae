"""Runs compared for real: a live `mlflow server`, the model registry, MLproject, `zoo compare`, the UI.

The session's `zoo server` (conftest's `tracking_server`: `mlflow server` on a PostgreSQL database of
the session's throwaway cluster where one can start, else on a SQLite file; artifacts proxied into a
temporary folder) serves the whole module. Three runs go to it once: the MLP recipe through `zoo
train` (registered, with system metrics), the CNN recipe through `zoo train`, and the MLP again
through `mlflow run` on this repository's MLproject (registered under the same name, as a weaker
model). The tests read them
back through the REST API, `MlflowClient`, `mlflow.pyfunc`, `zoo compare` and the MLflow UI in
headless Chromium (Debian's `chromium`), driven over the DevTools protocol.

The UI screenshot is kept in the test's pytest tmp folder, and copied to $ZOO_TEST_ARTIFACTS when
that is set (tests write nothing in the checkout).
"""

import base64
import contextlib
import dataclasses
import fcntl
import http.server
import json
import os
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest

from tests import baselines
from tests.conftest import REPO

EXPERIMENT = "zoo-server-test"
MODEL_NAME = "zoo-mlp-server-test"
SERVER_START_TIMEOUT = 180
ARTIFACTS = os.environ.get("ZOO_TEST_ARTIFACTS")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def _server_started(tracking_server):
    """Start the session's server as the module begins, if no earlier module did: it needs 10-30 s
    to answer, and the first tests (which do not need it) run meanwhile."""
    return tracking_server


@pytest.fixture(scope="module")
def server(tracking_server):
    """The session's server once `/health` answers; (url, artifact root folder)."""
    return tracking_server.wait(), pathlib.Path(tracking_server.artifacts)


def _zoo(*argv):
    """`zoo ARGV...` in this process; fail the test with its stderr unless it exits 0."""
    import io

    from zoo.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    assert status == 0, f"zoo {' '.join(map(str, argv))} exited {status}:\n{err.getvalue()[-3000:]}"
    return out.getvalue(), err.getvalue()


def _run_id(stdout):
    return next(line.split()[1] for line in stdout.splitlines() if line.startswith("run "))


@pytest.fixture(scope="module")
def runs(server, tmp_path_factory):
    """The three runs of the module, logged once: {"mlp": id, "second": id, "project": id, ...}."""
    import mlflow

    from zoo import training

    url, _ = server
    folder = tmp_path_factory.mktemp("server-runs")
    previous_uri = os.environ.get("MLFLOW_TRACKING_URI")
    previous_cwd = os.getcwd()
    os.chdir(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZOO_CHECKPOINT_DIR", str(folder / "checkpoints"))
        # Sample every second: MLflow drops the last partial interval, so a short run needs it.
        patch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "1")
        try:
            common = ["--tracking-uri", url, "--experiment", EXPERIMENT]
            out, err = _zoo("train", "mlp", "--epochs", 2, "--register", MODEL_NAME, "--system-metrics", *common)
            mlp = _run_id(out)
            assert f"registered {MODEL_NAME} version 1 as @champion" in err

            # The same recipe through MLflow Projects, as a model that cannot beat the first one
            # (one epoch at a learning rate of 1e-6): it must be registered as the challenger. It
            # starts after the first run ended and runs while the second recipe trains here.
            env = dict(
                os.environ,
                MLFLOW_TRACKING_URI=url,
                PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
            )
            for inherited in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
                env.pop(inherited, None)  # set_experiment() in this process exports the id
            project = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "run",
                    str(REPO),
                    "-e",
                    "mlp",
                    "--env-manager",
                    "local",
                    "--experiment-name",
                    EXPERIMENT,
                    "-P",
                    "epochs=1",
                    "-P",
                    "set=learning_rate=1e-6",
                    "-P",
                    f"register={MODEL_NAME}",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                start_new_session=True,
            )
            try:
                # Two recipes for the UI and `zoo compare`; the CNN recipe is preferred, the MLP on
                # another table stands in where it does not exist.
                if "cnn" in training.recipe_names():
                    second_recipe, argv = "cnn", ["train", "cnn", "--epochs", 1]
                else:
                    second_recipe, argv = "mlp", ["train", "mlp", "--epochs", 1, "--dataset", "wine"]
                second = _run_id(_zoo(*argv, *common)[0])
                project_out, project_err = project.communicate(timeout=400)
            finally:
                if project.poll() is None:
                    os.killpg(project.pid, signal.SIGKILL)
                    project.wait()
            assert project.returncode == 0, project_err[-3000:]
            project_run = _run_id(project_out)
            yield {
                "mlp": mlp,
                "second": second,
                "second_recipe": second_recipe,
                "project": project_run,
                "project_stderr": project_err,
            }
        finally:
            os.chdir(previous_cwd)
            while mlflow.active_run():
                mlflow.end_run()
            mlflow.set_tracking_uri(previous_uri)


@contextlib.contextmanager
def _tracking_uri(uri):
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def _get(url, path, **query):
    with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(query)}", timeout=30) as response:
        body = response.read()
    return json.loads(body) if path.startswith("/api/2.0/mlflow/") else body


# === Failing fast ===


def test_unreachable_server_fails_within_seconds_with_one_line(capsys):
    from zoo.cli import build_parser, main

    build_parser()  # imports (recipes, TensorFlow, MLflow) outside the timing
    import mlflow  # noqa: F401

    from zoo.quiet import load_tensorflow

    load_tensorflow()
    url = f"http://127.0.0.1:{_free_port()}"
    for argv in (["train", "mlp", "--epochs", "1", "--tracking-uri", url], ["compare", "--tracking-uri", url]):
        started = time.monotonic()
        status = main(argv)
        elapsed = time.monotonic() - started
        err = capsys.readouterr().err
        assert status == 2 and elapsed < 10, (status, elapsed, err)
        assert err.count("\n") == 1 and err.startswith(f"zoo: error: Cannot reach the MLflow tracking server at {url}")
        assert "Connection refused" in err and "mlflow server --host" in err


def test_a_server_that_is_not_mlflow_is_named_as_such(capsys):
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    web = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        from zoo.cli import main

        url = f"http://127.0.0.1:{web.server_address[1]}"
        assert main(["compare", "--tracking-uri", url]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{url} answered HTTP 404 at /health" in err
    finally:
        web.shutdown()
        web.server_close()


# === Reading the runs back ===


def test_run_reads_back_through_the_rest_api(server, runs):
    url, artifact_root = server
    run = _get(url, "/api/2.0/mlflow/runs/get", run_id=runs["mlp"])["run"]
    assert run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["recipe"] == "mlp" and params["epochs"] == "2" and params["data.name"] == "breast_cancer"
    assert "register" not in params and "tracking_uri" not in params  # where a run goes is not a param
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["zoo.recipe"] == "mlp" and tags["zoo.model_alias"] == "champion"
    assert tags["zoo.registered_model"] == f"{MODEL_NAME}/1"

    for key in ("loss", "val_accuracy"):
        history = _get(url, "/api/2.0/mlflow/metrics/get-history", run_id=runs["mlp"], metric_key=key)["metrics"]
        assert sorted(m["step"] for m in history) == [0, 1]
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics["epochs_trained"] == 2
    # Floor: the majority class gets 41 of the 57 test rows (0.719); 2 epochs must get 5 more right.
    from zoo.datasets import tabular

    test = tabular.prepare(tabular.load_embedded("breast_cancer"), seed=42).test
    correct = baselines.count(metrics["test_accuracy"], len(test))
    baselines.assert_beats(correct, baselines.majority_count(test["target"]), 5, len(test), "mlp through the server")
    assert metrics["system/cpu_utilization_percentage"] >= 0 and "system/system_memory_usage_megabytes" in metrics

    # Dataset lineage: each split with its source, digest and schema.
    inputs = run["inputs"]["dataset_inputs"]
    contexts = {i["tags"][0]["value"]: i["dataset"] for i in inputs}
    assert set(contexts) == {"training", "validation", "testing"}
    for dataset in contexts.values():
        assert dataset["digest"] and "load_breast_cancer" in dataset["source"]
        assert "mean radius" in dataset["schema"]

    listed = _get(url, "/api/2.0/mlflow/artifacts/list", run_id=runs["mlp"])
    assert {"config.yaml", "learning_curve.png"} <= {f["path"] for f in listed["files"]}
    # Artifacts go through the server's proxy into its local artifact root.
    relative = listed["root_uri"].removeprefix("mlflow-artifacts:/")
    config = _get(url, f"/api/2.0/mlflow-artifacts/artifacts/{relative}/config.yaml").decode()
    assert "mlp" in config and "breast_cancer" in config
    assert (artifact_root / relative / "config.yaml").read_text() == config

    experiment = _get(url, "/api/2.0/mlflow/experiments/get-by-name", experiment_name=EXPERIMENT)["experiment"]
    assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in experiment["tags"]
    # The zoo's shared view of the experiment shows the recipes' main metric, and it is the primary one.
    tags = {tag["key"]: tag["value"] for tag in experiment["tags"]}
    assert "metrics.`test_accuracy`" in json.loads(tags["mlflow.sharedViewState.zoo"])["selectedColumns"]
    assert tags["mlflow.experiment.primaryMetric.name"] == "test_accuracy"
    # The model carries its input example (the MLflow UI shows it, `zoo serve` prints it).
    from zoo import serving

    with _tracking_uri(url):
        request = json.loads(serving.example_request(f"runs:/{runs['mlp']}/model"))
    assert set(request) == {"dataframe_split"} and "mean radius" in request["dataframe_split"]["columns"]


def test_registered_model_predicts_on_raw_rows_like_the_logged_metric(server, runs):
    import mlflow
    import sklearn.datasets

    from zoo.datasets import tabular

    url, _ = server
    client = mlflow.MlflowClient(url)
    history = client.get_metric_history(runs["mlp"], "val_loss")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [0, 1]
    assert {a.path for a in client.list_artifacts(runs["mlp"])} >= {"config.yaml", "learning_curve.png"}
    assert len(client.get_metric_history(runs["mlp"], "system/cpu_utilization_percentage")) >= 1

    # The champion, downloaded through the server, on the raw test rows of the same split.
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    splits = tabular.prepare(tabular.load_embedded("breast_cancer"), seed=42)
    frame = sklearn.datasets.load_breast_cancer(as_frame=True).frame
    # As read from a file: a fresh index (MLflow's schema check fails on a sparse one: KeyError 0).
    raw = frame.loc[splits.test.index].drop(columns="target").reset_index(drop=True)
    probabilities = np.asarray(model.predict(raw, params={"output": "array"})).reshape(-1)
    accuracy = np.mean((probabilities > 0.5) == splits.labels(splits.test))
    # By default the answer names the two classes, with the likelier one as `label`.
    answer = model.predict(raw)
    first, second, label = answer.columns
    assert label == "label" and answer[label].tolist() == [(second if p > 0.5 else first) for p in probabilities]
    assert accuracy == pytest.approx(client.get_run(runs["mlp"]).data.metrics["test_accuracy"], abs=1e-6)


def test_registry_keeps_the_better_model_as_champion(server, runs):
    import mlflow

    url, _ = server
    client = mlflow.MlflowClient(url)
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    challenger = client.get_model_version_by_alias(MODEL_NAME, "challenger")
    assert (champion.version, champion.run_id) == ("1", runs["mlp"])
    assert (challenger.version, challenger.run_id) == ("2", runs["project"])
    assert champion.tags["zoo.main_metric"] == "test_accuracy"
    first = client.get_run(runs["mlp"]).data.metrics["test_accuracy"]
    weaker = client.get_run(runs["project"]).data.metrics["test_accuracy"]
    assert weaker < first, "the one-epoch run at learning rate 1e-6 was expected to be worse"
    assert f"version 2 as @challenger (test_accuracy {weaker:.4g} does not beat" in runs["project_stderr"]
    assert client.get_run(runs["project"]).data.tags["zoo.model_alias"] == "challenger"

    # A version that beats the champion takes the alias over (here: the champion's own model
    # registered again from a new run, reported with a better accuracy).
    from zoo import tracking

    mlflow.set_tracking_uri(url)
    # In an experiment of its own, so that the runs compared below stay the three of the module.
    with mlflow.start_run(experiment_id=client.create_experiment(f"{EXPERIMENT}-promotion")):
        version, alias = tracking.register_model(
            type("Info", (), {"model_uri": champion.source})(), MODEL_NAME, {"test_accuracy": first + 0.01}
        )
    assert (version, alias) == (3, "champion")
    assert client.get_model_version_by_alias(MODEL_NAME, "champion").version == "3"
    assert not client.get_model_version(MODEL_NAME, "1").aliases
    assert not tracking.greater_is_better("test_loss") and tracking.greater_is_better("test_macro_f1")


def test_bad_register_name_fails_before_any_run(server, runs, capsys):
    import mlflow

    from zoo.cli import main

    url, _ = server
    client = mlflow.MlflowClient(url)
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    before = len(client.search_runs([experiment]))
    assert main(["train", "mlp", "--register", "team/model", "--tracking-uri", url, "--experiment", EXPERIMENT]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--register needs a model name without '/' or ':'" in err
    assert len(client.search_runs([experiment])) == before


def test_mlproject_entry_point_logs_into_the_run_mlflow_run_created(server, runs):
    import mlflow

    url, _ = server
    run = mlflow.MlflowClient(url).get_run(runs["project"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.source.type"] == "PROJECT" and run.data.tags["mlflow.project.entryPoint"] == "mlp"
    assert run.data.tags["zoo.recipe"] == "mlp"
    # Declared and passed-through -P values, as logged by `mlflow run` and by the recipe, agree.
    assert run.data.params["epochs"] == "1" and run.data.params["dataset"] == "breast_cancer"
    assert run.data.params["model.learning_rate"] == "1e-06" and run.data.metrics["epochs_trained"] == 1
    assert mlflow.MlflowClient(url).get_experiment(run.info.experiment_id).name == EXPERIMENT


def test_mlproject_has_an_entry_point_with_the_defaults_of_every_recipe():
    import yaml

    from zoo import training

    project = yaml.safe_load((REPO / "MLproject").read_text())
    for name in training.recipe_names():
        assert name in project["entry_points"], f"MLproject has no entry point for recipe '{name}': add one"
        entry = project["entry_points"][name]
        recipe = training.get_recipe(name)
        defaults = {f.name: f.default for f in dataclasses.fields(recipe.Config)}
        assert f"python -m zoo train {name} " in entry["command"] + " "
        for param, spec in entry.get("parameters", {}).items():
            assert param in defaults, f"MLproject {name}: '{param}' is not an option of the recipe"
            assert str(spec["default"]) == str(defaults[param]), (
                f"MLproject {name}: default {param}={spec['default']} differs from the recipe's "
                f"{defaults[param]}; `mlflow run` and `zoo train` would train differently"
            )
            assert f"--{param.replace('_', '-')} {{{param}}}" in entry["command"]


# === zoo compare ===


def test_compare_prints_runs_side_by_side_best_first(server, runs, capsys):
    import mlflow

    from zoo.cli import main

    url, _ = server
    client = mlflow.MlflowClient(url)
    accuracy = {key: client.get_run(runs[key]).data.metrics["test_accuracy"] for key in ("mlp", "second", "project")}

    assert main(["compare", "--experiment", EXPERIMENT, "--tracking-uri", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:2] == ["#", "run"] and "test_accuracy" in header and "duration" in header
    assert max(map(len, lines)) <= 100, "\n".join(lines)  # fits a 100-column terminal by default
    assert lines[1].startswith("*1 ") and lines[-1].startswith("* best on test_accuracy")

    assert main(["compare", "--experiment", EXPERIMENT, "--tracking-uri", url, "--format", "csv"]) == 0
    import csv

    records = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    order = [next(k for k in accuracy if runs[k] == record["id"]) for record in records]
    assert order == sorted(accuracy, key=accuracy.get, reverse=True)
    assert {record["recipe"] for record in records} == {"mlp", runs["second_recipe"]}
    assert records[0]["best"] == "True" and records[0]["test_accuracy"] == f"{max(accuracy.values()):.4g}"
    # Only params whose values differ: every run here has the default seed, and 1 or 2 epochs.
    assert "seed" not in records[0] and "epochs" in records[0]

    assert (
        main(
            ["compare", "--experiment", EXPERIMENT, "--tracking-uri", url, "--metric", "test_loss", "--format", "json"]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)["runs"]
    losses = [float(row["test_loss"]) for row in rows]
    assert losses == sorted(losses)  # a loss ranks lowest first

    assert main(["compare", "--experiment", EXPERIMENT, "--tracking-uri", url, "--metric", "test_acuracy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Did you mean 'test_accuracy'" in err


# === The MLflow UI in headless Chromium ===


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (no extra package needed)."""

    def __init__(self, profile, width=1700, height=900):
        executable = shutil.which("chromium") or shutil.which("chromium-browser")
        assert executable, "Chromium is missing: apt-get install -y chromium (the UI test drives it)"
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()

        def on_fds_3_and_4():  # --remote-debugging-pipe reads commands on fd 3, answers on fd 4
            read = fcntl.fcntl(commands_read, fcntl.F_DUPFD, 10)
            write = fcntl.fcntl(replies_write, fcntl.F_DUPFD, 10)
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=on_fds_3_and_4,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(commands_read)
        os.close(replies_write)
        self._buffer, self._id, self._session = b"", 0, None
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def send(self, method, timeout=60, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if self._session and not method.startswith("Target."):
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    assert "error" not in reply, f"{method}: {reply['error']}"
                    return reply["result"]
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self._replies], [], [], left)[0], f"Chromium: no answer to {method}"
            chunk = os.read(self._replies, 1 << 20)
            assert chunk, "Chromium exited"
            self._buffer += chunk

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return None if "exceptionDetails" in result else result["result"].get("value")

    def wait_for(self, expression, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"the page never satisfied: {expression}\nits text:\n{self.text()[:2000]}")

    def text(self):
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def click(self, element_js):
        """Click, with real mouse events (menus open on pointer events), the element `element_js` finds."""
        x, y = self.wait_for(
            f"(() => {{ const e = {element_js}; if (!e) return null; e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path):
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))

    def close(self):
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


# Cells of the runs table by row: {row index: {column id: text}} (ag-grid may split a row into
# several elements for pinned columns).
_TABLE_JS = """(() => {
  const rows = {};
  for (const row of document.querySelectorAll('.ag-row')) {
    const cells = rows[row.getAttribute('row-index')] ||= {};
    for (const cell of row.querySelectorAll('.ag-cell')) cells[cell.getAttribute('col-id')] = cell.innerText;
  }
  return rows;
})()"""


def test_mlflow_ui_lists_runs_of_two_recipes_with_their_test_metric(server, runs, tmp_path):
    import mlflow

    from zoo.tracking import view

    url, _ = server
    client = mlflow.MlflowClient(url)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    expected = {}
    for key in ("mlp", "second", "project"):
        run = client.get_run(runs[key])
        expected[run.info.run_name] = (run.data.tags["zoo.recipe"], run.data.metrics["test_accuracy"])
    assert all(len(name) <= 25 for name in expected), expected  # the UI's name column shows about 25

    browser = Chromium(tmp_path / "chromium-profile")
    try:
        # The link `zoo ui` prints: the zoo's shared view of the experiment, in model-training mode.
        browser.send("Page.navigate", url=view.view_url(url, experiment.experiment_id))
        names = json.dumps(sorted(expected))
        browser.wait_for(f"{names}.every(name => document.body && document.body.innerText.includes(name))")
        # The main metric is a visible column without a click: the zoo's view chose it, sorted by it.
        column = "metrics.`test_accuracy`"
        browser.wait_for(f"document.querySelectorAll('.ag-cell[col-id=\"{column}\"]').length >= {len(expected)}")
        # Model-training mode: the sidebar offers Runs and Models, none of GenAI's pages.
        sidebar = browser.text()
        assert "Model training" in sidebar and "Judges" not in sidebar and "Prompts" not in sidebar, sidebar[:1500]
        # MLflow 3.18 opens its assistant once per browser on a local server, whatever the
        # experiment's kind (local storage `mlflow.assistant.fab.autoOpenedOnFirstLoad`): closed
        # once, it stays closed, and the runs table takes the page.
        panel = "document.querySelector('[data-component-id=\"mlflow.assistant.chat_panel.close\"]')"
        if browser.evaluate(f"Boolean({panel})"):
            browser.click(panel)
            browser.wait_for(f"!{panel}")
        # Opened again from the link (the view replaces its key in the address once applied).
        browser.send("Page.navigate", url=view.view_url(url, experiment.experiment_id))
        time.sleep(1)
        browser.wait_for(f"document.querySelectorAll('.ag-cell[col-id=\"{column}\"]').length >= {len(expected)}")
        time.sleep(1)
        assert not browser.evaluate(f"Boolean({panel})"), "the assistant panel opened again"
        table = browser.evaluate(_TABLE_JS)
        shown = {}
        for cells in table.values():
            name = next((n for n in expected if n in cells.get("attributes.`Run Name`", "")), None)
            if name:
                shown[name] = float(cells[column])
        # The run names are shown whole.
        assert all(name in sidebar for name in expected)
        browser.screenshot(tmp_path / "mlflow_ui_runs.png")
    finally:
        browser.close()
    if ARTIFACTS:
        pathlib.Path(ARTIFACTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "mlflow_ui_runs.png", pathlib.Path(ARTIFACTS) / "mlflow_ui_runs.png")

    assert set(shown) == set(expected)
    assert len({recipe for recipe, _ in expected.values()}) == (2 if runs["second_recipe"] != "mlp" else 1)
    for name, (_, accuracy) in expected.items():
        assert shown[name] == pytest.approx(accuracy, abs=1e-3)
    # Sorted by test_accuracy, best first, as the zoo's view says.
    order = [
        n
        for _, n in sorted(
            (int(i), next(n for n in expected if n in c.get("attributes.`Run Name`", ""))) for i, c in table.items()
        )
    ]
    assert order == sorted(expected, key=lambda n: expected[n][1], reverse=True)
