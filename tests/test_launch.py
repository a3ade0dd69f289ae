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

# Seconds from a process' SIGKILL to the launcher's exit: gloo sees the dead peer's socket close at
# the next all-reduce (about a second here); the launcher's --grace (10 s) SIGKILLs what is left.
KILL_BOUND = 30
TRAIN = ["train", "mlp", "--epochs", "2", "--batch-size", "64", "--set", "dropout=0"]


def _env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "jax", **extra}


def _runs(store):
    mlflow.set_tracking_uri(store)
    return mlflow.search_runs(search_all_experiments=True, output_format="list")


def test_two_processes_make_one_run_equal_to_one_process(tmp_path):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    launched = subprocess.run(
        [sys.executable, "-m", "zoo", "launch", "--processes", "2", "--", *TRAIN]
        + ["--tracking-uri", store, "--output", str(tmp_path / "two"), "--experiment", "two"],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
        cwd=tmp_path,
    )
    assert launched.returncode == 0, launched.stderr[-4000:]
    # The same global batch over the same two devices, in one process.
    single = subprocess.run(
        [sys.executable, "-m", "zoo", *TRAIN, "--devices", "all"]
        + ["--tracking-uri", store, "--output", str(tmp_path / "one"), "--experiment", "one"],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=2"),
        cwd=tmp_path,
    )
    assert single.returncode == 0, single.stderr[-4000:]
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
