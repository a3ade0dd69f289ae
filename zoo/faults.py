"""Surviving interruption and divergence: per-epoch checkpoints, signals, NaN losses.

A run checkpoints after every epoch (weights with optimizer state, the epoch counter and the
early-stopping state), so `zoo train --resume RUN_ID` continues where it stopped. SIGINT and SIGTERM
become a `Interrupted` exception at a safe point (never between saving a checkpoint and logging
that epoch's metrics), so the MLflow run can be closed as KILLED. A NaN or infinite loss stops the
run at once with the epoch and batch, and the last good checkpoint stays on disk.
"""

import contextlib
import json
import math
import os
import shutil
import signal

import keras
import numpy as np

WEIGHTS = "latest.weights.h5"
BEST_WEIGHTS = "best_weights.npz"
STATE = "state.json"
RNG = "rng.npz"


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self):
        return 128 + self.signum


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class _SignalGuard:
    """Turns SIGINT/SIGTERM into `Interrupted`, deferring it while a critical section runs."""

    def __init__(self):
        self.depth = 0
        self.pending = None

    def handle(self, signum, frame):
        if self.depth:
            self.pending = signum
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def critical(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if not self.depth and self.pending is not None:
            signum, self.pending = self.pending, None
            raise Interrupted(signum)


_GUARD = _SignalGuard()


@contextlib.contextmanager
def signals_as_exceptions():
    """Within this block SIGINT and SIGTERM raise `Interrupted` (in the main thread only)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _GUARD.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def critical_section():
    """Signals that arrive inside this block are raised when it ends."""
    return _GUARD.critical()


class EpochCheckpoint(keras.callbacks.Callback):
    """Save a resumable checkpoint, then log the epoch's metrics, as one uninterruptible step.

    Args:
        folder: where the checkpoint lives (created if needed).
        log_epoch: function(epoch, logs) that records the epoch's metrics.
        early_stopping: the run's `EarlyStopping` callback, whose state is saved too, or None.
    """

    def __init__(self, folder, log_epoch, early_stopping=None):
        super().__init__()
        self.folder = folder
        self.log_epoch = log_epoch
        self.early_stopping = early_stopping

    def on_epoch_end(self, epoch, logs=None):
        with critical_section():
            os.makedirs(self.folder, exist_ok=True)
            partial = os.path.join(self.folder, "partial." + WEIGHTS)
            self.model.save_weights(partial, overwrite=True)
            state = {"epoch": epoch + 1}
            stopper = self.early_stopping
            if stopper is not None:
                best = stopper.best
                state["early_stopping"] = {
                    "wait": int(stopper.wait),
                    "best": None if best is None or not math.isfinite(best) else float(best),
                    "best_epoch": int(stopper.best_epoch),
                }
                if stopper.best_weights is not None and stopper.best_epoch == epoch:
                    np.savez(os.path.join(self.folder, "partial." + BEST_WEIGHTS), *stopper.best_weights)
                    os.replace(os.path.join(self.folder, "partial." + BEST_WEIGHTS),
                               os.path.join(self.folder, BEST_WEIGHTS))
            np.savez(os.path.join(self.folder, "partial." + RNG), *[np.asarray(v) for v in _rng_states(self.model)])
            os.replace(os.path.join(self.folder, "partial." + RNG), os.path.join(self.folder, RNG))
            # Rename last: a crash while writing leaves the previous checkpoint whole.
            os.replace(partial, os.path.join(self.folder, WEIGHTS))
            with open(os.path.join(self.folder, "partial." + STATE), "w") as handle:
                json.dump(state, handle)
            os.replace(os.path.join(self.folder, "partial." + STATE), os.path.join(self.folder, STATE))
            self.log_epoch(epoch, logs or {})


def restore(model, folder, early_stopping=None):
    """Load the checkpoint in `folder` into `model`; return the epoch to continue from.

    Raises:
        FileNotFoundError: when the folder holds no checkpoint.
    """
    with open(os.path.join(folder, STATE)) as handle:
        state = json.load(handle)
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(folder, WEIGHTS))
    rng_path = os.path.join(folder, RNG)
    if os.path.exists(rng_path):
        with np.load(rng_path) as arrays:
            for index, variable in enumerate(_rng_states(model)):
                variable.assign(arrays[f"arr_{index}"])
    saved = state.get("early_stopping")
    if early_stopping is not None and saved:
        early_stopping.resume_state = saved
        best_path = os.path.join(folder, BEST_WEIGHTS)
        if os.path.exists(best_path):
            with np.load(best_path) as arrays:
                early_stopping.resume_best_weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    return int(state["epoch"])


def _rng_states(model):
    # Dropout and noise layers draw from seed generators whose state `save_weights` leaves out;
    # without it a resumed run would draw other masks than the uninterrupted one.
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """`EarlyStopping` that can continue from a checkpoint's saved wait/best state."""

    resume_state = None
    resume_best_weights = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.resume_state:
            self.wait = self.resume_state["wait"]
            if self.resume_state["best"] is not None:
                self.best = self.resume_state["best"]
            self.best_epoch = self.resume_state["best_epoch"]
            self.best_weights = self.resume_best_weights


class StopOnNaN(keras.callbacks.Callback):
    """Raise `Diverged` the first batch whose loss is NaN or infinite.

    Keras' `TerminateOnNaN` only sets `stop_training`, which ends training normally; then
    `BackupAndRestore` deletes its backup (keras issue 21771). Raising keeps the checkpoint and
    fails the run with the place it happened.
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if "loss" in name:
                number = float(value)
                if not math.isfinite(number):
                    raise Diverged(
                        f"{name} became {number} at epoch {self.epoch}, batch {batch}; check the data for "
                        "infinite or huge values, or lower the learning rate (`zoo info MODEL` names its keys)"
                    )


def remove(folder):
    shutil.rmtree(folder, ignore_errors=True)
