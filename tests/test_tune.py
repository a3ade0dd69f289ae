"""`zoo tune`: search spaces, the study as nested MLflow runs, resume, several processes, bad input."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, running_runs
from zoo import registry, training, tuning
from zoo.errors import ZooError

# === Search-space specs ===


@pytest.mark.parametrize(
    "spec, kind, low, high, choices",
    [
        ("log:1e-4..1e-2", "log", 1e-4, 1e-2, ()),
        ("0..0.5", "float", 0.0, 0.5, ()),
        ("float: .1 .. 2", "float", 0.1, 2.0, ()),
        ("int:16..256", "int", 16, 256, ()),
        ("intlog:8..512", "intlog", 8, 512, ()),
        ("choice:16,32|32,64", "choice", None, None, ("16,32", "32,64")),
    ],
)
def test_spec_forms(spec, kind, low, high, choices):
    dimension = tuning.parse_spec("key", spec)
    assert (dimension.kind, dimension.low, dimension.high, dimension.choices) == (kind, low, high, choices)
    assert tuning.parse_spec("key", dimension.spec) == dimension  # the spec written back parses the same


@pytest.mark.parametrize(
    "spec, words",
    [
        ("0..", "Malformed range"),
        ("a..b", "Malformed range"),
        ("0.5..0.1", "Empty range"),
        ("3..3", "Empty range"),
        ("int:1.5..4", "whole numbers"),
        ("log:0..1", "LOW > 0"),
        ("uniform:0..1", "Unknown search-space kind"),
        ("choice:", "Empty choice"),
        ("choice:16||32", "Empty choice"),
        ("choice:8|8", "Repeated choice"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, words):
    with pytest.raises(ZooError, match=words) as caught:
        tuning.parse_spec("key", spec)
    assert "\n" not in str(caught.value)


def test_space_items_need_a_key_once():
    assert list(tuning.parse_space(["a=0..1", "b=int:1..3"])) == ["a", "b"]
    with pytest.raises(ZooError, match="KEY=SPEC"):
        tuning.parse_space(["0..1"])
    with pytest.raises(ZooError, match="twice"):
        tuning.parse_space(["a=0..1", "a=0..2"])


@pytest.mark.parametrize("name", registry.names())
def test_every_model_declares_a_valid_default_space(name):
    """Every card's space names real hyperparameters, of the right type, that the builder accepts
    at both ends of each range and with each choice."""
    card = registry.info(name)
    assert card.search_space, f"{name}: declare search_space= in its @register"
    dimensions = tuning.parse_space(card.search_space)
    for key, dimension in dimensions.items():
        assert key in card.hyperparameters, f"{name}: '{key}' is not a hyperparameter"
        for value in dimension.values():
            registry.coerce(key, value, card.hyperparameters[key].annotation)
    tuning.check_model_values(name, dimensions)
    assert "Default search space" in card.format()


# === A study in MLflow ===


def _runs(uri, study, role):
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("zoo")
    return client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`zoo.study` = '{study}' and tags.`zoo.tune` = '{role}'",
        max_results=1000,
    )


def test_tune_nests_one_run_per_trial_and_continues_the_study(run_cli, tracking_uri, tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    common = ["tune", "mlp", "--epochs", "2", "--study", "s", "--storage", storage, "--sampler-seed", "1"]
    status, out, err = run_cli(*common, "--trials", "4")
    assert status == 0, err
    assert "best trial" in out and "test_accuracy" in out

    (parent,) = _runs(tracking_uri, "s", "study")
    trials = _runs(tracking_uri, "s", "trial")
    assert len(trials) == 4
    assert {run.data.tags["mlflow.parentRunId"] for run in trials} == {parent.info.run_id}
    assert parent.info.status == "FINISHED" and parent.data.tags["zoo.tune.metric"] == "val_accuracy"
    # Trials carry what a `zoo train` run carries, but never a test metric.
    for run in trials:
        assert run.data.tags["zoo.trial_state"] == "COMPLETE" and run.info.status == "FINISHED"
        assert {"model.learning_rate", "model.dropout", "model.hidden_units", "epochs"} <= set(run.data.params)
        assert "val_accuracy" in run.data.metrics and not any(k.startswith("test_") for k in run.data.metrics)
        assert len(run.inputs.dataset_inputs) == 3

    # The parent's best params are those of its best child.
    best = max(trials, key=lambda run: run.data.metrics["objective_val_accuracy"])
    assert parent.data.tags["zoo.tune.best_run"] == best.info.run_id
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(best.data.metrics["objective_val_accuracy"])
    for key in ("learning_rate", "dropout"):
        assert float(parent.data.tags[f"best.{key}"]) == pytest.approx(float(best.data.params[f"model.{key}"]))
    assert parent.data.tags["best.hidden_units"] == best.data.params["model.hidden_units"]
    # Tested once, in a run of the best configuration nested under the parent; a floor above the
    # majority class (breast cancer: 0.63) that an untrained network misses.
    (final,) = _runs(tracking_uri, "s", "final")
    assert final.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert final.data.params["model.hidden_units"] == best.data.params["model.hidden_units"]
    assert parent.data.metrics["test_accuracy"] == final.data.metrics["test_accuracy"] > 0.8
    import mlflow

    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id)}
    assert {"optimization_history.png", "param_importances.png", "best_params.json", "best_config.yaml"} <= artifacts
    # The best trial's configuration, as a file `zoo train --config` takes.
    from zoo.training import reproduce

    assert f"zoo train --config {tmp_path / 's-best.yaml'}" in out
    from zoo import training

    best_config = reproduce.from_file(str(tmp_path / "s-best.yaml"))
    config, overrides = training.make_config(training.get_recipe("mlp"), settings=best_config.values)
    assert best_config.recipe == "mlp" and config.epochs == 2
    assert ",".join(map(str, overrides["hidden_units"])) == best.data.params["model.hidden_units"]

    # The same command continues the study: new trials under the same parent, numbers go on;
    # --register registers the tested best configuration (as zoo train --register does).
    status, out, err = run_cli(*common, "--trials", "2", "--register", "tuned-mlp")
    assert status == 0, err
    (again,) = _runs(tracking_uri, "s", "study")
    assert again.info.run_id == parent.info.run_id
    numbers = sorted(int(run.data.tags["zoo.trial"]) for run in _runs(tracking_uri, "s", "trial"))
    assert numbers == list(range(6))
    version = mlflow.MlflowClient().get_model_version_by_alias("tuned-mlp", "champion")
    assert version.run_id == again.data.tags["zoo.tune.final_run"]
    assert not running_runs(tracking_uri)


def test_two_processes_share_one_study_on_a_new_sqlite_store_and_lose_no_metric(tmp_path):
    """Two workers first use a new SQLite MLflow store and a new study together (the schema race
    and the study's lock file), and every trial's every epoch is recorded (concurrent writers)."""
    import mlflow

    store, storage, epochs = f"sqlite:///{tmp_path}/mlflow.db", f"sqlite:///{tmp_path}/optuna.db", 3
    # One trial per worker tells a shared study (trials 0 and 1) from two studies (0 and 0).
    command = [sys.executable, "-m", "zoo", "tune", "mlp", "--trials", "1", "--epochs", str(epochs)]
    command += ["--patience", "0", "--study", "shared", "--storage", storage]
    env = dict(os.environ, MLFLOW_TRACKING_URI=store, PYTHONPATH=str(REPO))
    processes = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]
    trials = _runs(store, "shared", "trial")
    numbers = [int(run.data.tags["zoo.trial"]) for run in trials]
    assert sorted(numbers) == [0, 1]  # two trials, none run twice
    (parent,) = _runs(store, "shared", "study")
    assert {run.data.tags["mlflow.parentRunId"] for run in trials} == {parent.info.run_id}
    client = mlflow.MlflowClient(store)
    for run in [*trials, *_runs(store, "shared", "final")]:
        assert run.info.status == "FINISHED"
        for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, name)]
            assert sorted(steps) == list(range(epochs)), (run.info.run_id, name, steps)
        assert "test_accuracy" in run.data.metrics or run.data.tags["zoo.tune"] == "trial"
    assert not running_runs(store)


def test_a_pruned_trial_stops_and_says_so(tracking_uri):
    """Five earlier trials at an accuracy no trial reaches: the median pruner stops the next one."""
    import mlflow
    import optuna

    dimensions = tuning.parse_space(["dropout=0..0.5"])
    study = optuna.create_study(direction="maximize", pruner=tuning._pruner("median"))
    distribution = optuna.distributions.FloatDistribution(0.0, 0.5)
    for _ in range(tuning.STARTUP_TRIALS):
        study.add_trial(
            optuna.trial.create_trial(
                params={"dropout": 0.1},
                distributions={"dropout": distribution},
                value=1.5,
                intermediate_values={step: 1.5 for step in range(4)},
            )
        )
    parent = mlflow.MlflowClient().create_run(mlflow.set_experiment("zoo").experiment_id, tags={"zoo.tune": "study"})
    objective = tuning._Objective(
        training.get_recipe("mlp"), {"epochs": 4}, {}, dimensions, "val_accuracy", "pruning", parent.info.run_id, 0
    )
    try:
        study.optimize(objective, n_trials=1)
    finally:
        mlflow.MlflowClient().set_terminated(parent.info.run_id)

    trial = study.trials[-1]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs["zoo.epochs"] == 3  # warm-up of two epochs, pruned after the third
    run = mlflow.MlflowClient().get_run(trial.user_attrs["zoo.run_id"])
    assert run.info.status == "KILLED" and run.data.tags["zoo.trial_state"] == "PRUNED"
    assert "after epoch 3" in run.data.tags["zoo.pruned"]
    assert len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "val_accuracy")) == 3


# === Bad input: one line, exit 2, no run left RUNNING, the study untouched ===


@pytest.mark.parametrize(
    "arguments, words",
    [
        (["--space", "hidden_unit=int:8..64"], "Unknown search-space key 'hidden_unit'"),
        (["--space", "dropout=0.1.."], "Malformed range"),
        (["--space", "dropout=0.5..0.1"], "Empty range"),
        (["--space", "dropout=0..1"], "refuses"),
        (["--space", "activation=int:1..3"], "does not fit"),
        (["--metric", "val_nonsense"], "does not log the metric 'val_nonsense'"),
        (["--metric", "test_accuracy"], "test split stays untouched"),
        (["--storage", "sqlite:////no/such/folder/optuna.db"], "does not exist"),
        (["--storage", "DIRECTORY"], "Cannot open the study storage"),
        (["--storage", "nosuchdb://host/x"], "Cannot open the study storage"),
        (["--trials", "0"], "--trials must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_study(run_cli, tracking_uri, tmp_path, arguments, words):
    import optuna

    storage = f"sqlite:///{tmp_path}/optuna.db"
    arguments = [f"sqlite:///{tmp_path}" if a == "DIRECTORY" else a for a in arguments]
    if "--storage" in arguments:
        storage = None
    else:
        arguments += ["--storage", storage]
    if "--trials" not in arguments:
        arguments += ["--trials", "2"]
    status, out, err = run_cli("tune", "mlp", "--epochs", "1", "--study", "bad", *arguments)
    assert status == 2, err
    assert words in err and err.count("\n") == 1
    assert not running_runs(tracking_uri)
    if storage and os.path.exists(f"{tmp_path}/optuna.db"):
        assert optuna.get_all_study_summaries(storage) == []


def test_an_interrupted_trial_is_marked_and_runs_again(run_cli, tracking_uri, tmp_path):
    import signal
    import time

    storage = f"sqlite:///{tmp_path}/optuna.db"
    arguments = ["tune", "mlp", "--trials", "1", "--epochs", "30", "--patience", "0"]
    arguments += ["--study", "stopped", "--storage", storage]
    checkpoints = tmp_path / "checkpoints"
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri, PYTHONPATH=str(REPO), ZOO_CHECKPOINT_DIR=str(checkpoints))
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", *arguments], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # The signal goes as soon as the trial's first checkpoint is on disk: its metrics reach MLflow up
    # to a second later, by when a quick machine may have finished the 30 epochs (about 80 ms each).
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if list(checkpoints.glob("*/checkpoint.npz")):
            break
        time.sleep(0.05)
    assert process.poll() is None, "the trial ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0, err
    (stopped,) = _runs(tracking_uri, "stopped", "trial")
    assert stopped.info.status == "KILLED" and stopped.data.tags["zoo.trial_state"] == "FAIL"
    assert _runs(tracking_uri, "stopped", "study")[0].info.status == "KILLED"

    status, out, err = run_cli(*arguments)
    assert status == 0, err
    again = [run for run in _runs(tracking_uri, "stopped", "trial") if run.info.run_id != stopped.info.run_id]
    assert len(again) == 1 and again[0].data.tags["zoo.retry_of"] == stopped.data.tags["zoo.trial"]
    assert again[0].data.params["model.learning_rate"] == stopped.data.params["model.learning_rate"]
    assert again[0].data.tags["zoo.trial_state"] == "COMPLETE"
    assert _runs(tracking_uri, "stopped", "study")[0].info.status == "FINISHED"
    assert not running_runs(tracking_uri)
