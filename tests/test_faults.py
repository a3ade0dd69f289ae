"""Interruption, resume, divergence and concurrent writers, with real processes and signals."""

import os
import signal
import subprocess
import sys
import time

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf

from zoo import faults, training

# Patience 30 of 40 epochs: early stopping's state still crosses the resume, but the run cannot
# stop on its own before the signal. An epoch takes about 80 ms on a quiet machine, so the signal is
# sent as soon as the first checkpoint is on disk (the metrics reach MLflow up to a second late,
# long enough for CI to have finished the run before a signal sent on them arrived).
MLP_OPTIONS = ["--dataset", "breast_cancer", "--epochs", "40", "--patience", "30", "--seed", "3"]
# SIGINT is not resumed: its run may be as long as needed to be still training when the signal lands.
LONG_MLP_OPTIONS = ["--dataset", "breast_cancer", "--epochs", "1000", "--patience", "1000", "--seed", "3"]


def _zoo_process(args, cwd, store, checkpoints=None, **kwargs):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if checkpoints is not None:
        env["ZOO_CHECKPOINT_DIR"] = str(checkpoints)
    return subprocess.Popen(
        [sys.executable, "-m", "zoo", *args],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def _wait_for_checkpoint(client, experiment_name, folder, process, timeout=240):
    """The run id, once the run's first per-epoch checkpoint is in `folder`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        if list(folder.glob(f"*/{faults.CHECKPOINT}")):
            experiment = client.get_experiment_by_name(experiment_name)
            return client.search_runs([experiment.experiment_id])[0].info.run_id
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint written in {folder} within {timeout} s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_kills_the_run_keeps_the_checkpoint_and_resume_matches_an_uninterrupted_run(tmp_path, signum):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    client = mlflow.MlflowClient(store)
    experiment = f"signal-{signum}"
    options = MLP_OPTIONS if signum == signal.SIGTERM else LONG_MLP_OPTIONS
    process = _zoo_process(
        ["train", "mlp", *options, "--experiment", experiment, "--output", str(tmp_path / "resumed")],
        tmp_path,
        store,
        checkpoints=tmp_path / "checkpoints",
    )
    run_id = _wait_for_checkpoint(client, experiment, tmp_path / "checkpoints", process)
    sent = time.time()
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert time.time() - sent < 30, "the process did not exit promptly"
    assert process.returncode == 128 + signum, err
    assert f"zoo train --resume {run_id}" in err and "Traceback" not in err
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["zoo.resume"] == f"zoo train --resume {run_id}"
    assert signal.Signals(signum).name in run.data.tags["zoo.failure"]
    checkpoint = run.data.tags["zoo.checkpoint"]
    assert os.path.exists(os.path.join(checkpoint, faults.CHECKPOINT))
    if signum == signal.SIGINT:
        return  # Resume is checked once, after SIGTERM, to keep the suite short.

    resumed = _zoo_process(["train", "--resume", run_id], tmp_path, store)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["zoo.failure"] == ""
    steps = [m.step for m in client.get_metric_history(run_id, "loss")]
    assert sorted(steps) == list(range(len(steps))), "metric history has gaps or duplicates"
    assert int(run.data.metrics["epochs_trained"]) == len(steps)
    assert not os.path.exists(checkpoint), "a finished run's checkpoint is removed"

    # The same run without interruption, in this process, must end with the same model.
    mlflow.set_tracking_uri(store)
    options = dict(zip([o[2:].replace("-", "_") for o in MLP_OPTIONS[::2]], MLP_OPTIONS[1::2]))
    reference = training.train(
        "mlp", {**options, "experiment": "reference", "tracking_uri": store, "checkpoint_dir": str(tmp_path / "ckpt")}
    )
    assert reference.metrics["epochs_trained"] == run.data.metrics["epochs_trained"]
    resumed_model = keras.saving.load_model(tmp_path / "resumed" / "model.keras")
    for want, got in zip(reference.model.get_weights(), resumed_model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_resume_errors_are_one_line(run_cli, tracking_uri):
    status, _, err = run_cli("train", "--resume", "0123456789abcdef")
    assert status == 2 and "No MLflow run '0123456789abcdef'" in err
    finished = training.train("mlp", {"dataset": "iris", "epochs": 1})
    status, _, err = run_cli("train", "--resume", finished.run_id)
    assert status == 2 and "already FINISHED" in err
    status, _, err = run_cli("train", "--resume", finished.run_id, "mlp")
    assert status == 2


def test_nan_loss_fails_the_run_with_its_place(run_cli, tracking_uri, tmp_path, admissions_csv):
    import pandas as pd

    # Every number in the file is finite (infinite ones are refused before the run), but the
    # squared error of a target near 1e32 overflows float32 in the first batch: a real divergence.
    frame = pd.read_csv(admissions_csv)
    frame["score"] = frame["gre"] * 1e30
    path = tmp_path / "overflow.csv"
    frame.to_csv(path, index=False)
    status, _, err = run_cli(
        "train", "mlp", "--data", path, "--target", "score", "--epochs", "3", "--experiment", "nan"
    )
    assert status == 1, err
    assert err.strip().splitlines()[-1].startswith("zoo: training diverged: loss became inf at epoch 0, batch 0")
    client = mlflow.MlflowClient(tracking_uri)
    run = client.search_runs([client.get_experiment_by_name("nan").experiment_id])[0]
    assert run.info.status == "FAILED"
    assert "Diverged: loss became inf at epoch 0, batch 0" in run.data.tags["zoo.failure"]


def test_divergence_after_a_good_epoch_keeps_that_checkpoint(tmp_path):
    # Epoch 0 is clean; epoch 1 feeds a NaN: the run's callbacks must stop there and leave
    # epoch 0's checkpoint on disk (Keras' TerminateOnNaN + BackupAndRestore would delete it).
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    clean = np.ones((8, 2), "float32")
    poisoned = clean.copy()
    poisoned[3, 0] = np.nan
    batches = tf.data.Dataset.from_tensor_slices((np.concatenate([clean, poisoned]), np.ones(16, "float32")))
    logged = []
    folder = tmp_path / "checkpoint"
    checkpoint = faults.EpochCheckpoint(str(folder), lambda epoch, _logs: logged.append(epoch))
    with pytest.raises(faults.Diverged, match="at epoch 1, batch 0"):
        model.fit(
            batches.batch(8),
            epochs=3,
            verbose=0,
            steps_per_epoch=1,
            callbacks=[faults.StopOnNaN(), checkpoint],
        )
    # The checkpoint is written off the training thread: whoever catches fit's exception waits for it.
    checkpoint.wait()
    assert logged == [0]
    restored = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    restored.compile("sgd", "mse")
    assert faults.restore(restored, str(folder)) == 1
    assert np.isfinite(restored.get_weights()[0]).all()


def test_the_checkpoint_copies_the_values_an_epoch_ended_with():
    # The training thread hands the writer its snapshot and goes on training: the snapshot must be
    # the values at the epoch's end, untouched by the steps that follow.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    x, y = np.ones((8, 2), "float32"), np.zeros(8, "float32")
    model.fit(x, y, epochs=1, verbose=0)
    variables = faults._checkpoint_variables(model)
    before = [np.array(v.numpy()) for v in variables]
    taken = faults._copy_values(variables)
    model.fit(x, y, epochs=2, verbose=0)
    assert len(taken) == len(variables) > 4
    for want, got, variable in zip(before, taken, variables):
        np.testing.assert_array_equal(got, want, err_msg=variable.path)
    assert not np.array_equal(faults._copy_values(variables)[0], before[0]), "the kernel did not train"


def test_checkpoint_restores_every_optimizer_and_seed_generator_of_a_custom_model(tmp_path):
    import zoo

    # The GAN keeps its two optimizers as attributes and draws dropout masks from seed generators:
    # a resumed run needs all of them, not only `model.optimizer` (which the GAN does not have).
    rng = np.random.default_rng(0)
    images = rng.random((64, 8, 8, 1), dtype="float32")
    labels = rng.integers(0, 10, 64)
    small = {"num_classes": 10, "generator_filters": 8, "discriminator_filters": 8, "latent_dim": 8}
    keras.utils.set_random_seed(1)
    trained = zoo.get("gan", **small)
    folder = str(tmp_path / "checkpoint")
    trained.fit(
        images,
        labels,
        batch_size=32,
        epochs=2,
        verbose=0,
        callbacks=[faults.EpochCheckpoint(folder, lambda epoch, logs: None)],
    )
    fresh = zoo.get("gan", **small)
    assert faults.restore(fresh, folder) == 2
    pairs = [
        (trained.generator_optimizer, fresh.generator_optimizer),
        (trained.discriminator_optimizer, fresh.discriminator_optimizer),
        (trained, fresh),
    ]
    for saved, restored in pairs:
        assert len(saved.variables) == len(restored.variables) > 1
        for want, got in zip(saved.variables, restored.variables):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=want.path)
    assert int(fresh.generator_optimizer.iterations.numpy()) == 4
    assert any(v.path.endswith("seed_generator_state") for v in fresh.variables)


def test_a_checkpoint_of_another_model_is_refused_with_the_mismatch(tmp_path):
    folder = str(tmp_path / "checkpoint")
    small = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    small.compile("sgd", "mse")
    small.fit(
        np.ones((4, 2)),
        np.ones(4),
        epochs=1,
        verbose=0,
        callbacks=[faults.EpochCheckpoint(folder, lambda epoch, logs: None)],
    )
    wider = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    wider.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"does not fit this model .*\[2, 1\] in the checkpoint.*\[2, 3\]"):
        faults.restore(wider, folder)


def test_three_concurrent_runs_on_one_new_sqlite_store_record_every_metric(tmp_path):
    store = f"sqlite:///{tmp_path}/shared.db"
    processes = [
        _zoo_process(
            [
                "train",
                "mlp",
                "--dataset",
                "iris",
                "--epochs",
                "6",
                "--patience",
                "0",
                "--seed",
                str(seed),
                "--experiment",
                "concurrent",
            ],
            tmp_path,
            store,
        )
        for seed in range(3)
    ]
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
    client = mlflow.MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("concurrent").experiment_id])
    assert len(runs) == 3
    for run in runs:
        assert run.info.status == "FINISHED"
        for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == list(range(6)), name
        assert "test_accuracy" in run.data.metrics
