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
import threading

import keras
import numpy as np

CHECKPOINT = "checkpoint.npz"
# The epoch before: what a run resumes from when the newest checkpoint is corrupt.
PREVIOUS = "previous.checkpoint.npz"


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM."""

    # Set by `zoo.tracking.active_run`: the run the signal ended, and the status it ended with.
    run_id: str | None = None
    run_status: str | None = None

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self):
        return 128 + self.signum


def interruption_message(interruption):
    """The line `zoo` prints for an `Interrupted`: how its run ended, as the store records it.

    `zoo.tracking.active_run` sets `run_id` and `run_status` on it: KILLED for a signal during
    training; FAILED for a signal that arrived while a failing run ended (under `zoo launch` the
    others are stopped when one process fails); neither when no run was open.
    """
    run_id, status = interruption.run_id, interruption.run_status
    if status is None or run_id is None:
        return f"zoo: interrupted by {interruption}, outside its MLflow run"
    hint = f"; continue it with: zoo train --resume {run_id}"
    if status == "KILLED":
        return f"zoo: interrupted by {interruption}; the run is KILLED, its checkpoint kept{hint}"
    return (
        f"zoo: interrupted by {interruption} while the run was ending {status} (its `zoo.failure` tag says why){hint}"
    )


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
    """Save a resumable checkpoint, then log the epoch's metrics, as one step that no signal splits.

    The checkpoint is one `.npz` file, committed by a single rename: every variable of the model
    (the seed generators' states included, so a resumed run draws the same dropout masks) and of
    its optimizers, the epoch counter, the early-stopping state, and on PyTorch torch's global
    random state (which unseeded dropout draws from there). Keras' HDF5 `save_weights`,
    which walks the model layer by layer, cost the CNN recipe 57 ms an epoch and the MLP 111 ms.

    The training thread only copies the variables (the state the epoch ended with); a writer
    thread writes the file, commits it and then logs the epoch's metrics, while the next epoch
    trains: the write and the rename (which ext4 makes wait for the data when it replaces a file)
    were most of the checkpoint's cost on the training thread. At most one write is pending: the
    next epoch's checkpoint, `on_train_end` and `wait` wait for it, and whoever catches an
    exception out of `fit` calls `wait` (the run does), so the checkpoint on disk is always the
    last epoch that ended, and an epoch's metrics are logged only once its checkpoint is on disk.

    Args:
        folder: where the checkpoint lives (created if needed).
        log_epoch: function(epoch, logs) that records the epoch's metrics; called from the writer
            thread, so it must not rely on thread-local state (MLflow's active run is one).
        early_stopping: the run's `EarlyStopping` callback, whose state is saved too, or None.
    """

    def __init__(self, folder, log_epoch, early_stopping=None):
        super().__init__()
        self.folder = folder
        self.log_epoch = log_epoch
        self.early_stopping = early_stopping
        self._writer = None
        self._error = None

    def on_epoch_end(self, epoch, logs=None):
        with critical_section():
            self.wait()
            state = {"epoch": epoch + 1, "variables": []}
            arrays = {}
            variables = _checkpoint_variables(self.model)
            for index, (variable, value) in enumerate(zip(variables, _copy_values(variables))):
                state["variables"].append([variable.path, list(variable.shape)])
                arrays[f"variable_{index}"] = value
            stopper = self.early_stopping
            if stopper is not None:
                best = stopper.best
                state["early_stopping"] = {
                    "wait": int(stopper.wait),
                    "best": None if best is None or not math.isfinite(best) else float(best),
                    "best_epoch": int(stopper.best_epoch),
                }
                for index, weights in enumerate(stopper.best_weights or []):
                    arrays[f"best_{index}"] = np.asarray(weights)
            arrays.update(_global_random_state())
            # Not a daemon: a process that exits still finishes the checkpoint it started.
            self._writer = threading.Thread(
                target=self._write, args=(state, arrays, epoch, dict(logs or {})), name="zoo-checkpoint"
            )
            self._writer.start()

    def _write(self, state, arrays, epoch, logs):
        try:
            os.makedirs(self.folder, exist_ok=True)
            partial = os.path.join(self.folder, "partial." + CHECKPOINT)
            with open(partial, "wb") as handle:
                np.savez(handle, state=np.array(json.dumps(state)), **arrays)
            # One rename commits weights, optimizer state and counters together: a crash while
            # writing leaves the previous checkpoint whole. The one before is kept too, for a newest
            # file that a full disk or a failing device left corrupt all the same.
            newest = os.path.join(self.folder, CHECKPOINT)
            if os.path.exists(newest):
                os.replace(newest, os.path.join(self.folder, PREVIOUS))
            os.replace(partial, newest)
            self.log_epoch(epoch, logs)
        except Exception as error:  # noqa: BLE001 - raised on the training thread by wait()
            self._error = error

    def wait(self, raise_errors=True):
        """Wait for the checkpoint being written, if any.

        Args:
            raise_errors: raise the write's error (an unwritable folder), if it failed; False where
                the run is failing already for its own reason.
        """
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        error, self._error = self._error, None
        if error is not None and raise_errors:
            raise error

    def on_train_end(self, logs=None):
        self.wait()


def has_checkpoint(folder):
    """Whether `folder` holds a checkpoint (the newest or the one before; `good_checkpoint` reads them)."""
    return bool(folder) and any(os.path.exists(os.path.join(folder, name)) for name in (CHECKPOINT, PREVIOUS))


def good_checkpoint(folder):
    """The newest checkpoint in `folder` that reads whole, and what was wrong with newer ones.

    Every array is read, so that a truncated or corrupted file (a zip whose CRC fails) is found
    here, before a resumed run reopens its MLflow run, and not halfway through restoring it.

    Returns:
        (path, problems): `problems` lists the newer files skipped, as 'file: error'.

    Raises:
        ZooError: when no checkpoint in `folder` reads whole.
    """
    import zipfile

    from zoo.errors import ZooError

    problems = []
    for name in (CHECKPOINT, PREVIOUS):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            continue
        try:
            with np.load(path, allow_pickle=False) as arrays:
                state = json.loads(str(arrays["state"]))
                int(state["epoch"]), list(state["variables"])
                for key in arrays.files:
                    arrays[key]
            return path, problems
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as error:
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            problems.append(f"{name}: {type(error).__name__}: {first}")
    raise ZooError(f"No checkpoint in {folder} reads whole ({'; '.join(problems) or 'none is there'}).")


def restore(model, folder, early_stopping=None):
    """Load the newest checkpoint in `folder` that reads whole into `model`; return the epoch to continue from.

    Call it inside the distribution strategy's scope that built the model: the optimizer's
    variables are created here when it has not run yet.

    Raises:
        ZooError: when the folder holds no checkpoint that reads whole.
        ValueError: when the checkpoint's variables do not match the model's.
    """
    path, _ = good_checkpoint(folder)
    for optimizer in _optimizers(model):
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
    with np.load(path) as arrays:
        state = json.loads(str(arrays["state"]))
        variables = _checkpoint_variables(model)
        # Shapes, not paths: a layer's automatic name depends on the models built before it.
        saved_shapes = [shape for _, shape in state["variables"]]
        found = [list(v.shape) for v in variables]
        if found != saved_shapes:
            mismatch = next(
                (
                    f"{state['variables'][i][0]} is {want} in the checkpoint, {variables[i].path} is {got} in the model"
                    for i, (want, got) in enumerate(zip(saved_shapes, found))
                    if want != got
                ),
                f"{len(saved_shapes)} variables in the checkpoint, {len(found)} in the model",
            )
            raise ValueError(f"The checkpoint in {folder} does not fit this model ({mismatch}).")
        for index, variable in enumerate(variables):
            variable.assign(arrays[f"variable_{index}"])
        best_weights = [arrays[f"best_{i}"] for i in range(sum(k.startswith("best_") for k in arrays.files))]
    saved = state.get("early_stopping")
    if early_stopping is not None and saved:
        early_stopping.resume_state = saved
        early_stopping.resume_best_weights = best_weights or None
    return int(state["epoch"])


def _global_random_state():
    """The framework's global random state, where Keras draws from it: {name: uint8 array}.

    On PyTorch, a `Dropout` layer without a seed draws its masks from torch's global generator
    (`torch.nn.functional.dropout`, keras/src/backend/torch/random.py), not from the layer's
    `SeedGenerator` variable, so a resumed run needs that generator's state to draw the masks an
    uninterrupted run draws. TensorFlow and JAX draw from the seed generators' variables, which
    the checkpoint holds already.
    """
    if keras.backend.backend() != "torch":
        return {}
    import torch

    state = {"torch_rng": torch.get_rng_state().numpy()}
    if torch.cuda.is_available():
        state["torch_cuda_rng"] = torch.cuda.get_rng_state().numpy()
    return state


def resume_random_state(folder):
    """Callbacks that give a run resumed from `folder` the global random state it checkpointed.

    Returns:
        `[RestoreRandomState]` where the checkpoint holds such a state (PyTorch), else `[]`.
    """
    with np.load(good_checkpoint(folder)[0]) as arrays:
        state = {key: arrays[key] for key in ("torch_rng", "torch_cuda_rng") if key in arrays.files}
    if "torch_rng" not in state or keras.backend.backend() != "torch":
        return []
    return [RestoreRandomState(state)]


class RestoreRandomState(keras.callbacks.Callback):
    """Set torch's global random state just before the first step of a resumed run.

    Not in `restore`: between the start of `fit` and its first step, Keras' PyTorch trainer draws
    from the global generator (the data loader's seed) where an uninterrupted run, whose loader
    was made at its first epoch, does not; just before the first step both runs stand where the
    checkpoint left off.

    Args:
        state: {"torch_rng": array, "torch_cuda_rng": array (with a GPU)}, from the checkpoint.
    """

    def __init__(self, state):
        super().__init__()
        self.state = state

    def on_train_batch_begin(self, batch, logs=None):
        if self.state is None:
            return
        import torch

        torch.set_rng_state(torch.from_numpy(self.state["torch_rng"]))
        if "torch_cuda_rng" in self.state and torch.cuda.is_available():
            torch.cuda.set_rng_state(torch.from_numpy(self.state["torch_cuda_rng"]))
        self.state = None


def _optimizers(model):
    # `model.optimizer`, and those a custom model keeps as attributes (the GAN has one per network).
    found = [model.optimizer] if getattr(model, "optimizer", None) is not None else []
    for value in vars(model).values():
        if isinstance(value, keras.optimizers.Optimizer) and all(value is not o for o in found):
            found.append(value)
    return found


def _checkpoint_variables(model):
    variables, seen = [], set()
    for variable in [*model.variables, *(v for o in _optimizers(model) for v in o.variables)]:
        if id(variable) not in seen:
            seen.add(id(variable))
            variables.append(variable)
    return variables


def _copy_values(variables):
    """Copies of the variables' values as they are now: the next epoch's steps update the
    variables while the checkpoint's writer saves them (on JAX they even donate the arrays' buffers).

    On JAX `np.array` of the variable's array copies it directly: 0.4 ms an epoch for the CNN's
    41 variables, against 0.9 ms through Keras' `variable.numpy()`. TensorFlow and PyTorch take
    Keras' path: on TensorFlow one compiled function reading every variable takes 0.9 ms an
    epoch against 2.5 ms, but 60 ms to trace, which only a run of 40 epochs or more wins back.
    """
    if keras.backend.backend() == "jax":
        return [np.array(variable.value) for variable in variables]
    return [np.array(variable.numpy()) for variable in variables]


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
    """Raise `Diverged` for the first batch whose loss is NaN or infinite.

    Keras' `TerminateOnNaN` only sets `stop_training`, which ends training normally; then
    `BackupAndRestore` deletes its backup (keras issue 21771). Raising keeps the checkpoint and
    fails the run with the place it happened.

    Marked `async_safe`: on JAX and PyTorch Keras then runs the batch-end check on its thread pool,
    as it does for its own logs when no callback watches batches, so that reading the loss (which
    waits for the step to finish) no longer holds the training thread between two steps. The
    synchronous check cost the CNN on JAX about 10% of its CPU time per epoch
    (`benchmarks/overhead.py`'s `+guards`). The `Diverged` raised there reaches `fit` at a later
    batch's end, at the latest when the epoch ends and before any epoch-end callback runs (Keras
    waits for the batch checks first), so a diverged epoch is never checkpointed; it names the
    earliest batch found diverged (threads may finish out of order). TensorFlow's trainer runs it
    on the training thread, which raises at once.
    """

    async_safe = True

    def __init__(self):
        super().__init__()
        self.epoch = 0
        self._lock = threading.Lock()
        self._first = None  # (epoch, batch, name, value) of the earliest diverged batch found

    def on_train_begin(self, logs=None):
        self._first = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if "loss" in name:
                number = float(value)
                if not math.isfinite(number):
                    with self._lock:
                        if self._first is None or (self.epoch, batch) < self._first[:2]:
                            self._first = (self.epoch, batch, name, number)
                        epoch, batch, name, number = self._first
                    raise Diverged(
                        f"{name} became {number} at epoch {epoch}, batch {batch}; check the data for "
                        "infinite or huge values, or lower the learning rate (`zoo info MODEL` names its keys)"
                    )


def remove(folder):
    shutil.rmtree(folder, ignore_errors=True)
