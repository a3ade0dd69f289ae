"""Running a configuration again: `zoo train --config FILE` and `zoo train --like RUN_ID`."""

import mlflow
import yaml

from tests.conftest import running_runs


def _run(tracking_uri, out):
    return mlflow.MlflowClient(tracking_uri).get_run(out.strip().splitlines()[-1].split()[1])


def test_a_logged_config_runs_again_as_it_is_and_like_reruns_a_run_with_an_override(run_cli, tracking_uri, tmp_path):
    first = ["train", "mlp", "--dataset", "iris", "--epochs", "2", "--seed", "5", "--set", "hidden_units=8"]
    status, out, err = run_cli(*first, "--experiment", "again")
    assert status == 0, err
    original = _run(tracking_uri, out)
    saved = mlflow.artifacts.download_artifacts(f"runs:/{original.info.run_id}/config.yaml", dst_path=str(tmp_path))

    # The logged file, as it is: same recipe, options and hyperparameters, the same figures.
    status, out, err = run_cli("train", "--config", saved)
    assert status == 0, err
    copy = _run(tracking_uri, out)
    for key in ("seed", "epochs", "model.hidden_units", "data.name"):
        assert copy.data.params[key] == original.data.params[key], key
    assert copy.data.metrics["test_loss"] == original.data.metrics["test_loss"]
    assert copy.data.tags["zoo.config_file"] == "config.yaml"

    # --like: the run's configuration and data, in its experiment; a flag beside it wins.
    status, out, err = run_cli("train", "--like", f"runs:/{original.info.run_id}/model", "--seed", "3")
    assert status == 0, err
    like = _run(tracking_uri, out)
    assert like.data.params["seed"] == "3" and like.data.params["model.hidden_units"] == "8"
    assert like.data.params["data.name"] == "iris" and like.data.tags["zoo.like"] == original.info.run_id
    assert like.info.experiment_id == original.info.experiment_id
    assert not running_runs(tracking_uri)


def test_a_configuration_with_an_unknown_key_names_it_and_the_closest_valid_one(run_cli, tracking_uri, tmp_path):
    path = tmp_path / "run.yaml"
    for content, words in (
        ({"recipe": "mlp", "config": {"epoch": 3}}, "Unknown option 'epoch'"),
        ({"recipe": "mlp", "epochs": 1, "hiden_units": [8]}, "Unknown key 'hiden_units'"),
        ({"recipe": "mlp", "overrides": {"dropuot": 0.1}}, "Unknown key 'dropuot'"),
    ):
        path.write_text(yaml.safe_dump(content))
        status, out, err = run_cli("train", "--config", path, "--seed", "1")
        assert status == 2 and words in err and "Did you mean '" in err and "Traceback" not in err, err
    status, out, err = run_cli("train", "--config", path.with_name("missing.yaml"))
    assert status == 2 and "No configuration file" in err
    path.write_text(yaml.safe_dump({"recipe": "mlp", "epochs": 1}))
    status, out, err = run_cli("train", "cnn", "--config", path)
    assert status == 2 and "of recipe 'mlp', not 'cnn'" in err
    status, out, err = run_cli("train", "--like", "0123456789abcdef0123456789abcdef")
    assert status == 2 and "No MLflow run '0123456789abcdef0123456789abcdef'" in err
    assert not running_runs(tracking_uri)
