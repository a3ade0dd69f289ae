"""Runs that died without a word: each training's run beats, and a run whose beats stopped is closed.

A process killed by SIGKILL (the out-of-memory killer, a pre-empted machine, a closed laptop)
cannot end its MLflow run, which would stay RUNNING for ever. So a training's run carries a
heartbeat: tags with the host, the process id (and its start time, which tells a reused pid), and
the time of the last beat, written by a background thread at each epoch's end (at most one write a
second) and at least every `ZOO_HEARTBEAT_SECONDS` (default 30 s) while an epoch runs.

`repair` finds the RUNNING runs whose heartbeat has stopped and whose process is gone (on this
host: no process with that pid and start time; on another host: no beat for `stale_after`
seconds, default 10 minutes) and ends them KILLED with `zoo.failure=lost heartbeat`, adding to the
description the `zoo train --resume` command where a checkpoint remains. `zoo.tracking.configure`
calls it for every command that opens the store (train, compare, tune, ui, ...); `zoo runs
--repair` calls it on demand.
"""

import datetime
import os
import socket
import sys
import threading
import time

from zoo.tracking.lazy import mlflow

HOST_TAG = "zoo.heartbeat.host"
PID_TAG = "zoo.heartbeat.pid"
# The process's start time: a pid the system gave to another process since is not the run's.
STARTED_TAG = "zoo.heartbeat.process_started"
BEAT_TAG = "zoo.heartbeat"
LOST = "lost heartbeat"
# A beat at least this often while an epoch runs (seconds).
INTERVAL = 30.0
# A run on another host is lost after this long without a beat (seconds).
STALE_AFTER = 600.0
# Fast epochs do not write a beat each: at most one write this often (seconds).
MIN_GAP = 1.0

_LIVE: set["Heartbeat"] = set()


def interval():
    """Seconds between beats while an epoch runs: ZOO_HEARTBEAT_SECONDS, else `INTERVAL`."""
    try:
        return max(0.1, float(os.environ.get("ZOO_HEARTBEAT_SECONDS", INTERVAL)))
    except ValueError:
        return INTERVAL


def _process_started(pid):
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


class Heartbeat:
    """The beating thread of one run (`start`, `poke` at each epoch's end, `stop`)."""

    def __init__(self, run_id, tracking_uri=None):
        self.run_id = run_id
        self.client = mlflow.MlflowClient(tracking_uri)
        self._poked = threading.Event()
        self._stopping = False
        self._last = 0.0
        self._thread = None

    def start(self):
        from mlflow.entities import RunTag

        pid = os.getpid()
        started = _process_started(pid)
        tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), BEAT_TAG: f"{time.time():.3f}"}
        if started is not None:
            tags[STARTED_TAG] = f"{started:.3f}"
        try:
            self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        except Exception:  # noqa: BLE001 - a heartbeat never fails a training
            return self
        self._last = time.monotonic()
        # A daemon: a process that ends (or is killed) takes its heartbeat with it.
        self._thread = threading.Thread(target=self._loop, name="zoo-heartbeat", daemon=True)
        self._thread.start()
        _LIVE.add(self)
        return self

    def poke(self):
        """Ask for a beat now (an epoch ended); returns at once."""
        self._poked.set()

    def stop(self):
        _LIVE.discard(self)
        self._stopping = True
        self._poked.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self):
        every = interval()
        while True:
            self._poked.wait(timeout=every)
            self._poked.clear()
            if self._stopping:
                return
            gap = time.monotonic() - self._last
            if gap < MIN_GAP:
                # Several epochs a second: beat once the gap has passed, unless a later poke comes first.
                self._poked.wait(timeout=MIN_GAP - gap)
                if self._stopping:
                    return
            try:
                self.client.set_tag(self.run_id, BEAT_TAG, f"{time.time():.3f}")
                self._last = time.monotonic()
            except Exception:  # noqa: BLE001, S112 - a store that does not answer now may answer at the next beat
                continue


def poke_all():
    """A beat for every run this process trains (called at each epoch's end)."""
    for heartbeat in list(_LIVE):
        heartbeat.poke()


def epoch_callback():
    """A Keras callback that beats at each epoch's end."""
    import keras

    class EpochBeat(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            poke_all()

    return EpochBeat()


def state(run, now=None, stale_after=None, host=None):
    """Why `run` (a RUNNING run) is lost, or None while it may still be training.

    Returns:
        None, or a sentence such as 'its process 1234 on host-a is gone (last beat 3 min ago)'.
        A run without a heartbeat (not started by `zoo train`) is never lost.
    """
    tags = run.data.tags
    if BEAT_TAG not in tags or PID_TAG not in tags:
        return None
    now = time.time() if now is None else now
    try:
        beat, pid = float(tags[BEAT_TAG]), int(tags[PID_TAG])
    except ValueError:
        return None
    age = ago(now - beat)
    where = tags.get(HOST_TAG, "")
    if where == (host or socket.gethostname()):
        import psutil

        if psutil.pid_exists(pid):
            started = _process_started(pid)
            recorded = tags.get(STARTED_TAG)
            if started is None or recorded is None or abs(started - float(recorded)) < 1.0:
                return None
            return f"its process {pid} on {where} is gone, the pid now another's (last beat {age})"
        return f"its process {pid} on {where} is gone (last beat {age})"
    limit = STALE_AFTER if stale_after is None else stale_after
    if now - beat > limit:
        return f"no beat from its process {pid} on {where} for {duration(now - beat)}, more than {duration(limit)}"
    return None


def duration(seconds):
    """'42 s', '5 min' or '1.5 h'."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def ago(seconds):
    return f"{duration(seconds)} ago"


def running_runs(client):
    """Every RUNNING run of the store, in every experiment."""
    from mlflow.entities import ViewType

    ids, token = [], None
    while True:
        page = client.search_experiments(view_type=ViewType.ALL, max_results=1000, page_token=token)
        ids += [experiment.experiment_id for experiment in page]
        token = page.token
        if not token:
            break
    runs = []
    for start in range(0, len(ids), 100):
        token = None
        while True:
            page = client.search_runs(
                ids[start : start + 100],
                "attributes.status = 'RUNNING'",
                run_view_type=ViewType.ALL,
                max_results=1000,
                page_token=token,
            )
            runs += list(page)
            token = page.token
            if not token:
                break
    return runs


def repair(tracking_uri=None, stale_after=None, quiet=False):
    """End every lost run KILLED (`zoo.failure=lost heartbeat`); return [(run_id, line)].

    Args:
        tracking_uri: the store (default: MLflow's current one).
        stale_after: seconds without a beat after which a run on another host is lost.
        quiet: do not print a line per repaired run on stderr.
    """
    from zoo.tracking.run import DESCRIPTION_TAG, FAILURE_TAG

    client = mlflow.MlflowClient(tracking_uri)
    repaired = []
    for run in running_runs(client):
        why = state(run, stale_after=stale_after)
        if why is None:
            continue
        run_id = run.info.run_id
        # Read again: a run that ended since the search is not lost.
        current = client.get_run(run_id)
        if current.info.status != "RUNNING":
            continue
        tags = current.data.tags
        beat = float(tags[BEAT_TAG])
        when = datetime.datetime.fromtimestamp(beat, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        resumable = _has_checkpoint(tags.get("zoo.checkpoint")) and "zoo.resume" in tags
        resume = f"zoo train --resume {run_id}"
        note = (
            f"Lost at {when}: {why}, without ending the run (SIGKILL, the out-of-memory killer, a lost "
            "machine); `zoo` marked it KILLED."
            + (f" Its checkpoint remains: continue it with `{resume}`." if resumable else " No checkpoint remains.")
        )
        description = tags.get(DESCRIPTION_TAG, "")
        client.set_tag(run_id, FAILURE_TAG, LOST)
        client.set_tag(run_id, DESCRIPTION_TAG, f"{description}\n\n{note}" if description else note)
        client.set_terminated(run_id, "KILLED", end_time=int(beat * 1000))
        line = f"zoo: run {run_id} ({current.info.run_name}) lost: {why}; marked KILLED" + (
            f"; continue it with: {resume}" if resumable else ""
        )
        if not quiet:
            print(line, file=sys.stderr)
        repaired.append((run_id, line))
    return repaired


def _has_checkpoint(folder):
    """`zoo.faults.has_checkpoint`, without importing Keras (which `zoo.faults` does) into `zoo runs`."""
    names = ("checkpoint.npz", "previous.checkpoint.npz")  # zoo.faults.CHECKPOINT and PREVIOUS
    return bool(folder) and any(os.path.exists(os.path.join(folder, name)) for name in names)


def repair_in_passing(tracking_uri=None):
    """`repair`, never failing the command that opened the store (a store it cannot search is left as it is)."""
    try:
        return repair(tracking_uri)
    except Exception:  # noqa: BLE001 - repairing others' runs is a courtesy of this command, not its job
        return []
