"""`zoo.train` and `zoo.tune` inside a notebook's own MLflow run: nested, quiet, the user's run intact."""

import json
import os
import sys
import textwrap

import pytest

# A user's notebook, cell by cell: their experiment, autolog and run, the zoo in a cell of its own,
# then their run again. Not one `with` block: a notebook's run spans cells.
CELLS = [
    "import json\nimport mlflow",
    "import zoo",
    'mlflow.set_experiment("mine")\nmlflow.autolog()\nparent = mlflow.start_run(run_name="my-notebook-run")',
    'result = zoo.train("mlp", dataset="iris", epochs=2, patience=0)',
    textwrap.dedent(
        """
        from mlflow.utils import autologging_utils
        still = mlflow.active_run()
        mlflow.log_metric("after_zoo", 1.0)
        print(json.dumps({"parent": parent.info.run_id, "child": result.run_id,
                          "same": still is not None and still.info.run_id == parent.info.run_id,
                          "experiment": mlflow.get_experiment(still.info.experiment_id).name,
                          "autolog_back": not autologging_utils._AUTOLOGGING_GLOBALLY_DISABLED}))
        mlflow.end_run()
        """
    ),
]
NATIVE = ("cudart_stub", "cuInit", "absl::InitializeLog", "oneDNN", "cpu_feature_guard", "XLA", "I0000", "W0000")


def _streams(cell, name):
    return "".join(output.get("text", "") for output in cell.outputs if output.get("name") == name)


def _rendered(text):
    """What a Jupyter frontend shows of a stream: a backspace erases the character before it, a
    carriage return the line so far (JupyterLab's and the classic notebook's fixBackspace and
    fixCarriageReturn)."""
    shown = []
    for line in text.split("\n"):
        kept = []
        for char in line:
            if char == "\b":
                if kept:
                    kept.pop()
            elif char == "\r":
                kept = []
            else:
                kept.append(char)
        shown.append("".join(kept))
    return [line for line in shown if line.strip()]


def test_a_notebook_run_gets_one_quiet_nested_child_and_a_bar_per_epoch(tmp_path, monkeypatch):
    """A real .ipynb run headless by nbclient on an IPython kernel of this interpreter."""
    import mlflow
    import nbclient
    import nbformat

    jupyter = tmp_path / "jupyter"
    spec = jupyter / "kernels" / "zoo-tests"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "zoo", "language": "python"}))
    for variable, folder in (("JUPYTER_PATH", ""), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime")):
        monkeypatch.setenv(variable, str(jupyter / folder))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(jupyter / "config"))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    # The zoo's own quiet, not the suite's settings: the kernel starts without them.
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_LOGGING_LEVEL")}
    env["MLFLOW_TRACKING_URI"] = uri
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    notebook.metadata["kernelspec"] = {"name": "zoo-tests", "display_name": "zoo", "language": "python"}
    nbformat.write(notebook, tmp_path / "mine.ipynb")
    notebook = nbformat.read(tmp_path / "mine.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    imports, train, after = notebook.cells[1], notebook.cells[3], notebook.cells[4]

    assert not _streams(imports, "stderr"), "`import zoo` printed something"
    zoo_err = _streams(train, "stderr")
    for native in (*NATIVE, " INFO mlflow"):
        assert native not in zoo_err, zoo_err
    # Keras' bar redraws in place (carriage returns): once rendered, one finished line per epoch,
    # with the validation figures; not a line per batch.
    shown = [line for line in _rendered(_streams(train, "stdout")) if "/4" in line]
    assert len(shown) == 2 and all(line.lstrip("\x1b[1m").startswith("4/4") for line in shown), shown
    assert all("val_loss" in line and "━" in line for line in shown), shown
    assert "\r" in _streams(train, "stdout")
    facts = json.loads(_streams(after, "stdout").strip().splitlines()[-1])

    client = mlflow.MlflowClient(uri)
    assert sorted(e.name for e in client.search_experiments()) == ["Default", "mine"], "an experiment was created"
    mine = client.get_experiment_by_name("mine").experiment_id
    assert facts["same"] and facts["experiment"] == "mine" and facts["autolog_back"], facts
    parent = client.get_run(facts["parent"])
    children = client.search_runs([mine], f"tags.`mlflow.parentRunId` = '{facts['parent']}'")
    assert [c.info.run_id for c in children] == [facts["child"]], "autolog or zoo logged more than one child"
    child = children[0]
    assert child.info.status == "FINISHED" and child.info.experiment_id == mine
    assert child.data.metrics["test_accuracy"] > 0
    assert f"Nested under run `my-notebook-run` ({facts['parent']})" in child.data.tags["mlflow.note.content"]
    # The user's run was left to the user: running on after the zoo's cell, ended by their own call.
    assert parent.info.status == "FINISHED" and parent.data.metrics["after_zoo"] == 1.0
    assert "test_accuracy" not in parent.data.metrics
    # The fluent search reads the process's tracking URI, which an earlier test may have set elsewhere.
    mlflow.set_tracking_uri(uri)
    models = mlflow.search_logged_models(experiment_ids=[mine], output_format="list")
    assert [m.source_run_id for m in models if m.source_run_id in (facts["parent"], facts["child"])] == [facts["child"]]


def test_progress_is_a_bar_in_a_kernel_or_a_terminal_and_a_line_per_epoch_into_a_pipe(monkeypatch):
    import io
    import types

    from zoo import quiet

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert quiet.progress_verbosity() == 2
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert quiet.progress_verbosity() == 1
    # A kernel's stdout is no terminal, yet Keras' bar redraws in place there (the notebook test).
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert quiet.progress_verbosity() == 1


@pytest.mark.large  # 41 s on the loaded 2-core machine (a trial and the final run)
def test_a_search_inside_the_users_run_is_its_child_with_trials_under_it(tracking_uri):
    import mlflow

    import zoo

    experiment = mlflow.set_experiment("searching")
    with mlflow.start_run(run_name="my-search") as searching:
        study = zoo.tune(
            "mlp", 1, options={"dataset": "iris", "epochs": 1, "patience": 0}, storage="sqlite:///optuna.db"
        )
        assert mlflow.active_run().info.run_id == searching.info.run_id
    client = mlflow.MlflowClient()
    assert mlflow.get_experiment(experiment.experiment_id).name == "searching"
    parent = client.get_run(study.parent_run_id)
    assert parent.data.tags["mlflow.parentRunId"] == searching.info.run_id
    assert parent.info.experiment_id == experiment.experiment_id
    assert "Nested under run `my-search`" in parent.data.tags["mlflow.note.content"]
    under = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{study.parent_run_id}'")
    assert sorted(r.data.tags["zoo.tune"] for r in under) == ["final", "trial"]
