"""Runs that died without a word: heartbeats, lost-run repair, corrupt checkpoints.

A real `zoo train` process killed by SIGKILL; runs whose heartbeat names a process that is gone
(a process that really ran and ended), another host, or a pid the system gave to another process.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import keras
import mlflow
import pytest

from tests.test_faults import _zoo_process
from zoo import faults, training
from zoo.errors import ZooError
from zoo.tracking import heartbeat


def _wait_for_two_checkpoints(client, experiment_name, folder, process, timeout=300):
    """The run id, once the run has written its second checkpoint (so the one before is kept too)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        if list(folder.glob(f"*/{faults.PREVIOUS}")):
            experiment = client.get_experiment_by_name(experiment_name)
            return client.search_runs([experiment.experiment_id])[0].info.run_id
        time.sleep(0.05)
    raise AssertionError(f"no second checkpoint in {folder} within {timeout} s")


def test_a_run_killed_by_sigkill_is_found_lost_and_marked_killed_with_its_resume_command(
    run_cli, tracking_uri, tmp_path
):
    store = tracking_uri
    client = mlflow.MlflowClient(store)
    options = ["--dataset", "iris", "--epochs", "1000", "--patience", "1000"]
    process = _zoo_process(
        ["train", "mlp", *options, "--experiment", "sigkill"], tmp_path, store, checkpoints=tmp_path / "checkpoints"
    )
    try:
        run_id = _wait_for_two_checkpoints(client, "sigkill", tmp_path / "checkpoints", process)
        tags = client.get_run(run_id).data.tags
        assert tags[heartbeat.HOST_TAG] == socket.gethostname() and tags[heartbeat.PID_TAG] == str(process.pid)
        assert time.time() - float(tags[heartbeat.BEAT_TAG]) < 120
        status, out, _ = run_cli("runs", "--tracking-uri", store)
        assert status == 0 and f"{run_id}" in out and "alive: process" in out, out
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    assert client.get_run(run_id).info.status == "RUNNING", "nothing could end it: SIGKILL"

    status, out, _ = run_cli("runs", "--tracking-uri", store)
    assert status == 0 and f"lost: its process {process.pid} on {socket.gethostname()} is gone" in out, out
    assert client.get_run(run_id).info.status == "RUNNING", "`zoo runs` without --repair only looks"
    status, out, _ = run_cli("runs", "--repair", "--tracking-uri", store)
    assert status == 0 and f"continue it with: zoo train --resume {run_id}" in out, out
    run = client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["zoo.failure"] == heartbeat.LOST
    assert f"`zoo train --resume {run_id}`" in run.data.tags["mlflow.note.content"]
    assert run.info.end_time == int(float(run.data.tags[heartbeat.BEAT_TAG]) * 1000)
    assert faults.has_checkpoint(run.data.tags["zoo.checkpoint"])


def _lost_run(client, experiment_id, **heartbeat_tags):
    run = client.create_run(experiment_id, tags={"mlflow.note.content": "`zoo train mlp`"})
    client.log_batch(run.info.run_id, tags=[mlflow.entities.RunTag(k, v) for k, v in heartbeat_tags.items()])
    return run.info.run_id


def test_every_command_that_opens_the_store_repairs_lost_runs_and_only_those(tracking_uri, capsys):
    from zoo import tracking

    store = tracking_uri
    client = mlflow.MlflowClient(store)
    experiment = client.create_experiment("lost")
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here, now = socket.gethostname(), time.time()
    beat = {heartbeat.HOST_TAG: here, heartbeat.BEAT_TAG: f"{now - 5:.3f}"}
    gone = _lost_run(client, experiment, **beat, **{heartbeat.PID_TAG: ended.stdout.strip()})
    alive = _lost_run(client, experiment, **beat, **{heartbeat.PID_TAG: str(os.getpid())})
    # This process's pid with another start time: the run's process ended and the pid was reused.
    reused = _lost_run(
        client,
        experiment,
        **beat,
        **{
            heartbeat.PID_TAG: str(os.getpid()),
            heartbeat.STARTED_TAG: f"{heartbeat._process_started(os.getpid()) - 60}",
        },
    )
    elsewhere = {heartbeat.HOST_TAG: "another-host", heartbeat.PID_TAG: "1"}
    stale = _lost_run(client, experiment, **elsewhere, **{heartbeat.BEAT_TAG: f"{now - 3600:.3f}"})
    recent = _lost_run(client, experiment, **elsewhere, **{heartbeat.BEAT_TAG: f"{now - 60:.3f}"})
    unbeating = client.create_run(experiment).info.run_id  # not started by zoo train: never touched

    capsys.readouterr()
    tracking.configure(store)  # what train, compare, tune, ui, serve, predict call first
    err = capsys.readouterr().err
    status = {run_id: client.get_run(run_id).info.status for run_id in (gone, alive, reused, stale, recent, unbeating)}
    assert status == {
        gone: "KILLED",
        alive: "RUNNING",
        reused: "KILLED",
        stale: "KILLED",
        recent: "RUNNING",
        unbeating: "RUNNING",
    }
    assert (
        err.count("marked KILLED") == 3
        and "no beat from its process 1 on another-host for 60 min, more than 10 min" in err
    ), err
    note = client.get_run(gone).data.tags["mlflow.note.content"]
    assert note.startswith("`zoo train mlp`\n\nLost at ") and "No checkpoint remains." in note
    repaired = heartbeat.repair(store, stale_after=30, quiet=True)
    assert [run_id for run_id, _ in repaired] == [recent], "a shorter --stale-after finds it lost"
    assert client.get_run(recent).info.status == "KILLED"
    # The session's store: other tests check that no run stays RUNNING there.
    for run_id in (alive, unbeating):
        client.set_terminated(run_id, "FINISHED")


def test_beats_per_epoch_and_a_corrupt_checkpoint_is_skipped_for_the_one_before(tracking_uri):
    beats = []

    class StopAtEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            # This callback runs before the beat of this epoch's end is asked for: it waits for the
            # one the epoch before asked for (the first epoch reads the run's first beat).
            client, run_id = mlflow.MlflowClient(), mlflow.active_run().info.run_id
            deadline = time.time() + 60
            while True:
                beat = float(client.get_run(run_id).data.tags[heartbeat.BEAT_TAG])
                if not beats or beat > beats[-1] or time.time() > deadline:
                    break
                time.sleep(0.1)
            beats.append(beat)
            if epoch == 2:  # after two checkpoints (epochs 0 and 1), as a signal would
                raise faults.Interrupted(signal.SIGTERM)

    options = {"dataset": "iris", "epochs": 4, "patience": 0, "experiment": "corrupt"}
    with pytest.raises(faults.Interrupted) as caught:
        training.train("mlp", options, callbacks=[StopAtEpoch()])
    run_id = caught.value.run_id
    assert beats[0] < beats[1] < beats[2], f"a beat at each epoch's end: {beats}"
    assert not heartbeat._LIVE, "the run's heartbeat stopped with it"
    client = mlflow.MlflowClient(tracking_uri)
    folder = client.get_run(run_id).data.tags["zoo.checkpoint"]
    newest, previous = (os.path.join(folder, name) for name in (faults.CHECKPOINT, faults.PREVIOUS))

    with open(newest, "r+b") as handle:
        handle.truncate(os.path.getsize(newest) // 2)
    with open(previous, "rb") as handle:
        good = handle.read()
    with open(previous, "wb") as handle:
        handle.write(good[: len(good) // 3])
    with pytest.raises(ZooError, match=r"cannot be resumed: No checkpoint in .* reads whole \(checkpoint.npz: "):
        training.resume(run_id, tracking_uri)
    assert client.get_run(run_id).info.status == "KILLED", "a refused resume leaves the run resumable"

    with open(previous, "wb") as handle:
        handle.write(good)
    result = training.resume(run_id, tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    # From the checkpoint before (1 epoch done), not the corrupt newest one (2 epochs done).
    assert result.metrics["epochs_trained"] == 4 and len(result.history["loss"]) == 3
