"""Two processes on loopback (CPU, JAX's keras.distribution, gloo collectives): `zoo launch` trains one
model into one MLflow run (logged through the session's `zoo server`, on PostgreSQL where the tests
can start one), equal to one process over the same devices, and ends when a process dies.
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import mlflow
import numpy as np
import pytest

from tests import test_devices_jax
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


def _launch(folder, command, store, *extra):
    """`zoo launch --processes 2 -- COMMAND` into `store` and `folder`/two, in `folder`; it must succeed.
    Returns its CompletedProcess."""
    launched = _zoo(
        folder,
        "launch",
        "--processes",
        "2",
        "--",
        *command,
        "--tracking-uri",
        store,
        "--output",
        str(folder / "two"),
        *extra,
    )
    assert launched.returncode == 0, launched.stderr[-4000:]
    return launched


def _runs(store):
    mlflow.set_tracking_uri(store)
    return mlflow.search_runs(search_all_experiments=True, output_format="list")


def test_two_processes_make_one_run_equal_to_one_process(tracking_server, tmp_path):
    """Both runs go to the session's `zoo server` (on PostgreSQL where the tests can start one, as a
    team's cluster logs to it), each in a new experiment of its own."""
    store = tracking_server.wait()
    names = {"two": f"launch-two-{tmp_path.name}", "one": f"launch-one-{tmp_path.name}"}
    launched = _launch(tmp_path, TRAIN, store, "--experiment", names["two"])
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
        names["one"],
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    assert single.returncode == 0, single.stderr[-4000:]
    client = mlflow.MlflowClient(store)
    experiments = [client.get_experiment_by_name(name).experiment_id for name in names.values()]
    # The admissions table splits into 455, 57 and 57 rows: none divides by 2 processes (nor by
    # the global batch of 64), so every split ends on a padded batch.
    runs = {run.data.params.get("processes", "1"): run for run in client.search_runs(experiments)}
    assert len(runs) == 2 and set(runs) == {"1", "2"}, "process 1 must open no run in the shared store"
    two = runs["2"]
    assert two.info.status == "FINISHED" and f"run {two.info.run_id} finished: " in launched.stdout
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
    _launch(tmp_path, TRAIN, store)
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
    command = ["-m", "zoo", *GAN, "--tracking-uri", store, "--output", str(tmp_path / "two")]
    outputs = ["".join(output) for output in _as_a_cluster(tmp_path, command)]
    (run,) = _runs(store)
    assert run.info.status == "FINISHED" and run.data.params["processes"] == "2"
    # Every process knows the run: process 1 reports process 0's run, and opened none in the store.
    for output in outputs:
        assert f"run {run.info.run_id} finished" in output, output[-2000:]
    _check_equals_one_process(tmp_path, GAN)


def _as_a_cluster(folder, arguments):
    """Run `python ARGUMENTS` as two processes with Keras' variables, in `folder`, until both end
    (they must succeed); [(stdout, stderr)] of each."""
    address = f"127.0.0.1:{launch.free_port()}"
    # Files, not pipes: a process blocked on a full pipe would leave the other waiting in a collective.
    files = [(open(folder / f"process{i}.out", "w+"), open(folder / f"process{i}.log", "w+")) for i in range(2)]
    started = [
        subprocess.Popen(
            [sys.executable, *arguments], stdout=out, stderr=err, cwd=folder, env=_env(**_variables(address, index))
        )
        for index, (out, err) in enumerate(files)
    ]
    try:
        codes = [process.wait(timeout=600) for process in started]
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
        for pair in files:
            for file in pair:
                file.close()
    outputs = [((folder / f"process{i}.out").read_text(), (folder / f"process{i}.log").read_text()) for i in range(2)]
    assert codes == [0, 0], outputs[0][1][-3000:] + outputs[1][1][-3000:]
    return outputs


def _check_equals_one_process(folder, command):
    """Train `command` in one process over two host devices, at the same global batch, into
    `folder`/one and `folder`/one.db, and check its final weights against `folder`/two's."""
    single = _zoo(
        folder,
        *command,
        "--devices",
        "all",
        "--output",
        str(folder / "one"),
        "--tracking-uri",
        f"sqlite:///{folder}/one.db",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    assert single.returncode == 0, single.stderr[-4000:]
    import zoo.models.gan  # noqa: F401  (registers the subclassed models for loading)
    import zoo.models.rbm  # noqa: F401

    distributed = keras.saving.load_model(folder / "two" / "model.keras").get_weights()
    reference = keras.saving.load_model(folder / "one" / "model.keras").get_weights()
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


# One case of each recipe and of each configuration the recurrent recipes have (the cell varies
# too), small enough to train two epochs in a minute: case -> `zoo train` arguments. Nothing random
# differs between one process and two (dropout off, no augmentation); the RBM's Gibbs noise is a
# hash of (seed, step, place in the global batch), the same on any devices (zoo/models/rbm.py).
EVERY_TECHNIQUE = {
    "cnn": ["cnn", "--set", "dropout=0", "--set", "translation=0", "--set", "filters=8,16", "--set", "dense_units=32"],
    "lstm-many_to_one": ["lstm", "--set", "dropout=0", "--set", "units=16"],
    "gru-many_to_many": ["gru", "--mode", "many_to_many", "--videos", "200", "--frames", "8", "--set", "dropout=0"]
    + ["--set", "units=16"],
    "rnn-one_to_many": ["rnn", "--mode", "one_to_many", "--set", "dropout=0", "--set", "units=16"],
    "lstm-forecast": ["lstm", "--mode", "many_to_many", "--dataset", "sunspots", "--set", "units=16"],
    "rbm": ["rbm", "--samples", "4", "--gibbs-steps", "5", "--set", "hidden_units=16"],
}


# Three trainings per case (two processes, then one): 55-80 s each on 2 cores under a load of 3,
# 3-4 minutes under 9: opt-in, `pytest -m large`.
@pytest.mark.large
@pytest.mark.parametrize("case", sorted(EVERY_TECHNIQUE))
def test_every_technique_over_two_processes_equals_one_process(case, tmp_path):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    command = ["train", *EVERY_TECHNIQUE[case], "--epochs", "2", "--batch-size", "64"]
    _launch(tmp_path, command, store)
    (run,) = _runs(store)
    assert run.info.status == "FINISHED" and run.data.params["processes"] == "2"
    _check_equals_one_process(tmp_path, command)
    # Process 0 computed the test metrics alone, over the whole split, as the one process did.
    (single,) = _runs(f"sqlite:///{tmp_path}/one.db")
    tested = {key: value for key, value in single.data.metrics.items() if key.startswith("test_")}
    assert tested and {key: run.data.metrics[key] for key in tested} == pytest.approx(tested, rel=1e-3, abs=3e-3)


# Two JAX processes that each compile the GAN's and the RBM's steps twice (54 s on 2 cores under a
# load of 3, 150 s under 9): over the default suite's budget, so opt-in, `pytest -m large`.
@pytest.mark.large
def test_one_gan_and_rbm_step_over_two_processes_matches_one_device(tmp_path):
    # tests/test_devices_jax.py's steps and tolerances, over one device in each of two processes.
    outputs = _as_a_cluster(tmp_path, ["-c", test_devices_jax.CUSTOM_STEPS])
    found = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    assert found[0] == found[1], "both processes must end with the same step"
    test_devices_jax.check_custom_steps(found[0])
