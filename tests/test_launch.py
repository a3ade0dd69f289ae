"""Two processes on loopback (CPU, JAX's keras.distribution, gloo collectives): `zoo launch` trains one
model into one MLflow run, equal to one process over the same devices, and ends when a process dies.
"""

import os
import signal
import subprocess
import sys
import time

import keras
import mlflow
import numpy as np
import pytest

from zoo.commands import launch

# Seconds from a process' SIGKILL to the launcher's exit: gloo sees the dead peer's socket close at
# the next all-reduce (about a second here); the launcher's --grace (10 s) SIGKILLs what is left.
KILL_BOUND = 30
TRAIN = ["train", "mlp", "--epochs", "2", "--batch-size", "64", "--set", "dropout=0"]


def _env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "jax", **extra}


def _zoo(folder, *arguments, **env):
    """`zoo ARGUMENTS` in a fresh process on JAX, in `folder`; its CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "zoo", *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(**env),
        cwd=folder,
    )


def _runs(store):
    mlflow.set_tracking_uri(store)
    return mlflow.search_runs(search_all_experiments=True, output_format="list")


def test_two_processes_make_one_run_equal_to_one_process(tmp_path):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    launched = _zoo(
        tmp_path,
        "launch",
        "--processes",
        "2",
        "--",
        *TRAIN,
        "--tracking-uri",
        store,
        "--output",
        str(tmp_path / "two"),
        "--experiment",
        "two",
    )
    assert launched.returncode == 0, launched.stderr[-4000:]
    # The same global batch over the same two devices, in one process.
    single = _zoo(
        tmp_path,
        *TRAIN,
        "--devices",
        "all",
        "--tracking-uri",
        store,
        "--output",
        str(tmp_path / "one"),
        "--experiment",
        "one",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    assert single.returncode == 0, single.stderr[-4000:]
    # The admissions table splits into 455, 57 and 57 rows: none divides by 2 processes (nor by
    # the global batch of 64), so every split ends on a padded batch.
    runs = {run.data.params.get("processes", "1"): run for run in _runs(store)}
    assert len(runs) == 2 and set(runs) == {"1", "2"}, "process 1 must open no run in the shared store"
    two = runs["2"]
    assert two.info.status == "FINISHED"
    assert two.data.params["replicas"] == "2" and two.data.params["strategy"] == "DataParallel"
    assert two.data.metrics["test_accuracy"] > 0.8  # the majority class of the admissions table is far lower
    distributed = keras.saving.load_model(tmp_path / "two" / "model.keras").get_weights()
    reference = keras.saving.load_model(tmp_path / "one" / "model.keras").get_weights()
    for a, b in zip(distributed, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # Process 0 removed its checkpoint folder on success; process 1 wrote none here.
    root = os.environ.get("ZOO_CHECKPOINT_DIR") or tmp_path / "zoo-checkpoints"
    assert not os.path.exists(os.path.join(root, two.info.run_id))


# Four more process starts on JAX (about 70 s): over the suite's 15-minute budget, so run with
# `pytest -m large`, like the GAN's two-process test.
@pytest.mark.large
def test_a_two_process_run_killed_after_an_epoch_resumes_under_launch_to_the_uninterrupted_result(tmp_path):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    launched = _zoo(
        tmp_path, "launch", "--processes", "2", "--", *TRAIN, "--tracking-uri", store, "--output", str(tmp_path / "two")
    )
    assert launched.returncode == 0, launched.stderr[-4000:]
    distributed = keras.saving.load_model(tmp_path / "two" / "model.keras").get_weights()

    # The same training, process 1 killed at the end of the first epoch, then resumed under a launch.
    address = f"127.0.0.1:{launch.free_port()}"
    interrupted = [
        subprocess.Popen(
            [sys.executable, "-c", DIES_AFTER_EPOCH_1, store, str(tmp_path / "resumed")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
            env=_env(**_variables(address, index)),
        )
        for index in range(2)
    ]
    assert [process.wait(timeout=600) for process in interrupted] != [0, 0]
    (failed,) = [run for run in _runs(store) if run.info.status != "FINISHED"]
    assert failed.info.status == "FAILED"
    resumed = _zoo(
        tmp_path, "launch", "--processes", "2", "--", "train", "--resume", failed.info.run_id, "--tracking-uri", store
    )
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    run = mlflow.MlflowClient().get_run(failed.info.run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["epochs_trained"] == 2
    continued = keras.saving.load_model(tmp_path / "resumed" / "model.keras").get_weights()
    for a, b in zip(continued, distributed, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# Both processes of a 2-process `mlp` training (TRAIN's settings); process 1 dies when epoch 1 ends,
# after process 0 checkpointed it, and process 0 fails at its next all-reduce.
DIES_AFTER_EPOCH_1 = """
import os, signal, sys
import keras
from zoo import training

class Dies(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if os.environ["KERAS_DISTRIBUTION_PROCESS_ID"] == "1":
            os.kill(os.getpid(), signal.SIGKILL)

options = {"epochs": 2, "batch_size": 64, "tracking_uri": sys.argv[1], "output": sys.argv[2], "experiment": "resumed"}
training.train("mlp", options, {"dropout": "0"}, callbacks=[Dies()])
"""


def _variables(address, index):
    return {
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": address,
        "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
        "KERAS_DISTRIBUTION_PROCESS_ID": str(index),
    }


GAN = ["train", "gan", "--epochs", "1", "--batch-size", "64", "--set", "samples=100", "--set", "judge_epochs=2"]
GAN += ["--set", "generator_filters=8", "--set", "discriminator_filters=8", "--set", "latent_dim=8"]


# About 5 minutes on 2 busy cores (two GAN trainings and a judge): opt-in, `pytest -m large`.
@pytest.mark.large
def test_gan_over_two_processes_started_as_a_cluster_does_equals_one_process(tmp_path):
    # Two identical commands with Keras' variables, as Kubernetes or Slurm start them (no `zoo launch`).
    store = f"sqlite:///{tmp_path}/mlflow.db"
    address = f"127.0.0.1:{launch.free_port()}"
    command = [sys.executable, "-m", "zoo", *GAN, "--tracking-uri", store, "--output", str(tmp_path / "two")]
    logs = [open(tmp_path / f"process{i}.log", "w+") for i in range(2)]
    started = [
        subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=_env(**_variables(address, index)),
        )
        for index, log in enumerate(logs)
    ]
    try:
        codes = [process.wait(timeout=600) for process in started]
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
        for log in logs:
            log.close()
    outputs = [(tmp_path / f"process{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    (run,) = _runs(store)
    assert run.info.status == "FINISHED" and run.data.params["processes"] == "2"
    # Every process knows the run: process 1 reports process 0's run, and opened none in the store.
    for output in outputs:
        assert f"run {run.info.run_id} finished" in output, output[-2000:]
    single = _zoo(
        tmp_path,
        *GAN,
        "--devices",
        "all",
        "--output",
        str(tmp_path / "one"),
        "--tracking-uri",
        f"sqlite:///{tmp_path}/one.db",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    assert single.returncode == 0, single.stderr[-4000:]
    import zoo.models.gan  # noqa: F401  (registers the GAN class for loading)

    distributed = keras.saving.load_model(tmp_path / "two" / "model.keras").get_weights()
    reference = keras.saving.load_model(tmp_path / "one" / "model.keras").get_weights()
    for a, b in zip(distributed, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def test_a_killed_process_ends_the_launch_and_fails_the_run(tmp_path):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    log = open(tmp_path / "launch.log", "w+")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "zoo", "launch", "--processes", "2", "--", "train", "mlp", "--epochs", "500"]
        + ["--tracking-uri", store],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_env(),
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 300
        while "Epoch 2/" not in (tmp_path / "launch.log").read_text():
            assert launcher.poll() is None and time.monotonic() < deadline, (tmp_path / "launch.log").read_text()
            time.sleep(0.5)
        processes = sorted(_children(launcher.pid))
        assert len(processes) == 2
        os.kill(processes[1], signal.SIGKILL)
        killed = time.monotonic()
        status = launcher.wait(timeout=KILL_BOUND + 30)
        took = time.monotonic() - killed
    finally:
        if launcher.poll() is None:
            launcher.kill()
        log.close()
    assert status != 0
    assert took < KILL_BOUND, f"the launch took {took:.1f} s to end after a process was killed"
    (run,) = _runs(store)
    assert run.info.status in ("FAILED", "KILLED")
    assert run.data.tags["zoo.failure"], "the run must say why it ended"
