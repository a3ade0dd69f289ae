"""`zoo.train` and `zoo.tune` inside a notebook's own MLflow run: nested, quiet, the user's run intact."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

NOTEBOOK = textwrap.dedent(
    """
    import json, sys
    import mlflow
    import zoo

    mlflow.set_experiment("mine")
    mlflow.autolog()
    with mlflow.start_run(run_name="my-notebook-run") as parent:
        print("ZOO-STARTS", file=sys.stderr, flush=True)
        result = zoo.train("mlp", dataset="iris", epochs=1, patience=0)
        still = mlflow.active_run()
        mlflow.log_metric("after_zoo", 1.0)
        active = {"same": still is not None and still.info.run_id == parent.info.run_id,
                  "experiment": mlflow.get_experiment(still.info.experiment_id).name}
    from mlflow.utils import autologging_utils
    print("ZOO-ENDS", file=sys.stderr, flush=True)
    print(json.dumps({"parent": parent.info.run_id, "child": result.run_id, "active": active,
                      "autolog_back": not autologging_utils._AUTOLOGGING_GLOBALLY_DISABLED}))
    """
)


def test_a_notebook_run_gets_one_quiet_nested_child_in_its_own_experiment(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_LOGGING_LEVEL")}
    env["MLFLOW_TRACKING_URI"] = uri
    script = tmp_path / "notebook.py"
    script.write_text(NOTEBOOK)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    zoo_err = done.stderr.split("ZOO-STARTS", 1)[1].split("ZOO-ENDS", 1)[0]
    for native in ("cudart_stub", "cuInit", "absl::InitializeLog", "oneDNN", " INFO mlflow"):
        assert native not in zoo_err, zoo_err
    # Keras' progress stays: a script writing to a pipe gets one line per epoch.
    assert "4/4 - " in done.stdout and "val_loss" in done.stdout

    client = mlflow.MlflowClient(uri)
    assert sorted(e.name for e in client.search_experiments()) == ["Default", "mine"], "an experiment was created"
    mine = client.get_experiment_by_name("mine").experiment_id
    assert facts["active"] == {"same": True, "experiment": "mine"}
    assert facts["autolog_back"]
    parent = client.get_run(facts["parent"])
    children = client.search_runs([mine], f"tags.`mlflow.parentRunId` = '{facts['parent']}'")
    assert [c.info.run_id for c in children] == [facts["child"]], "autolog or zoo logged more than one child"
    child = children[0]
    assert child.info.status == "FINISHED" and child.info.experiment_id == mine
    assert f"Nested under run `my-notebook-run` ({facts['parent']})" in child.data.tags["mlflow.note.content"]
    # The user's run was left to the user: still running inside the `with`, ended by it, its metric there.
    assert parent.info.status == "FINISHED" and parent.data.metrics["after_zoo"] == 1.0
    assert "test_accuracy" not in parent.data.metrics
    # The fluent search reads the process's tracking URI, which an earlier test may have set elsewhere.
    mlflow.set_tracking_uri(uri)
    models = mlflow.search_logged_models(experiment_ids=[mine], output_format="list")
    assert [m.source_run_id for m in models if m.source_run_id in (facts["parent"], facts["child"])] == [facts["child"]]


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
