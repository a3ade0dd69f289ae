"""Runs you can tell apart in the MLflow UI, and `zoo.train`, the Python face of `zoo train`."""

import mlflow
import pytest

import zoo


def test_default_run_names_are_unique_say_what_ran_and_the_description_sums_the_run_up(run_cli, tracking_uri):
    names = []
    for _ in range(2):
        # The same seed twice: MLflow's own generated name was the same for both.
        status, out, err = run_cli("train", "mlp", "--dataset", "iris", "--epochs", "1", "--experiment", "names")
        assert status == 0, err
        run = mlflow.MlflowClient(tracking_uri).get_run(out.strip().splitlines()[-1].split()[1])
        names.append(run.info.run_name)
        assert run.info.run_name.startswith("mlp-iris-") and len(run.info.run_name) == len("mlp-iris-3f2a")
        description = run.data.tags["mlflow.note.content"]
        accuracy = run.data.metrics["test_accuracy"]
        for words in ("zoo train mlp", "model `mlp`", "`iris`", "CPU:0", f"test_accuracy = {accuracy:.4g}"):
            assert words in description, description
    assert names[0] != names[1]


def test_zoo_train_takes_python_values_and_follows_the_command_line_path(tracking_uri):
    result = zoo.train("cnn", epochs=1, dataset="digits", filters=(8, 16), patience=0, experiment="python")
    run = mlflow.MlflowClient(tracking_uri).get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name.startswith("cnn-digits-")
    assert run.data.params["model.filters"] == "8,16" and run.data.params["epochs"] == "1"
    assert result.config.epochs == 1 and result.metrics["test_accuracy"] == run.data.metrics["test_accuracy"]
    # A trained CNN beats the 0.1 of guessing one digit class even after one epoch.
    assert result.metrics["test_accuracy"] > 0.3
    with pytest.raises(zoo.ZooError, match="Unknown key 'filter' for recipe 'cnn'.*Did you mean 'filters'"):
        zoo.train("cnn", filter=(8,))
    with pytest.raises(zoo.ZooError, match="Bad value for 'epochs'"):
        zoo.train("cnn", epochs="many")


def test_a_runs_epoch_metrics_writer_logs_in_order_and_ends_its_thread_with_the_run(tracking_uri):
    from zoo import tracking

    with tracking.EpochMetrics() as writer, mlflow.start_run() as run:
        for epoch in range(3):
            writer.log_epoch(epoch, {"loss": 1.0 / (epoch + 1), "note": "not a number"})
        writer.flush()
        history = tracking.metric_histories(run.info.run_id, ["loss", "note"])
        thread = writer._thread
    assert history == {"loss": [1.0, 0.5, 1.0 / 3], "note": []}
    assert thread is not None and not thread.is_alive(), "the writer thread outlived its run"
