"""Several processes training one model: Keras 3's `keras.distribution` on JAX, configured the way
clusters configure it.

N identical `zoo train ...` commands, each with Keras' own variables (what Kubernetes JobSet,
Kubeflow Trainer's JAX runtime or a Slurm script set, and what `zoo launch` sets on one machine):

- KERAS_DISTRIBUTION_JOB_ADDRESSES: the coordinator's `host:port` (process 0 listens there), or a
  comma-separated list of every process' address, the first being the coordinator;
- KERAS_DISTRIBUTION_NUM_PROCESSES: how many processes train together;
- KERAS_DISTRIBUTION_PROCESS_ID: this process' index, 0 to N-1.

`initialize_from_env` must run before anything touches JAX's devices: the run loop calls it first
thing. Process 0 (`is_chief`) owns the MLflow run and the checkpoints; the others train, write
nothing the user sees, and learn the run's id from process 0 (`share_run_id`). Anything about
several processes belongs here; anything about the devices of one process in `zoo.training.devices`.
"""

import dataclasses
import os
import typing

from zoo.errors import ZooError

ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
COUNT = "KERAS_DISTRIBUTION_NUM_PROCESSES"
INDEX = "KERAS_DISTRIBUTION_PROCESS_ID"


def count() -> int:
    """How many processes train together (1 without the variables)."""
    return _read()[1]


def index() -> int:
    """This process' index (0 without the variables)."""
    return _read()[2]


def is_chief() -> bool:
    """True in process 0, the one that owns the MLflow run and writes checkpoints."""
    return index() == 0


def _read() -> tuple[str, int, int]:
    addresses = os.environ.get(ADDRESSES, "").strip()
    raw_count = os.environ.get(COUNT, "").strip()
    raw_index = os.environ.get(INDEX, "").strip()
    if not (addresses or raw_count or raw_index):
        return "", 1, 0
    if not (addresses and raw_count and raw_index):
        raise ZooError(f"Several processes need all of {ADDRESSES}, {COUNT} and {INDEX}; set the missing ones.")
    if not raw_count.isdigit() or int(raw_count) < 1:
        raise ZooError(f"{COUNT} must be a positive integer. Received: {raw_count!r}")
    if not raw_index.isdigit() or int(raw_index) >= int(raw_count):
        raise ZooError(f"{INDEX} must be an integer from 0 to {int(raw_count) - 1}. Received: {raw_index!r}")
    return addresses, int(raw_count), int(raw_index)


def initialize_from_env() -> None:
    """Join the other processes named by Keras' variables, once per process; nothing without them.

    Raises:
        ZooError: when the variables are incomplete, or the backend is not JAX (Keras' multi-process
            distribution exists on JAX only; `MultiWorkerMirroredStrategy` with `fit` fails in Keras 3,
            keras-team/keras #20585).
    """
    addresses, processes, process_id = _read()
    if processes == 1:
        return
    import keras

    if keras.backend.backend() != "jax":
        raise ZooError(
            f"{COUNT}={processes}: training over several processes runs on JAX only; "
            "set KERAS_BACKEND=jax (pip install jax)."
        )
    import jax

    if jax.distributed.is_initialized():
        return
    # XLA's CPU client has no cross-process collectives unless told to use gloo (harmless where
    # the devices are GPUs: it concerns the CPU client only).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(job_addresses=addresses, num_processes=processes, process_id=process_id)


# MLflow run ids are 32 hexadecimal characters; the broadcast buffer leaves room for other stores'.
_RUN_ID_BYTES = 128


def share_run_id(run_id: str) -> str:
    """Process 0's MLflow run id, in every process; `run_id` itself in a process that trains alone.

    Process 0 opens the one run of the training; the others log to a private store
    (`private_outputs`) and learn the real id here, so that each reports the same run (`zoo train`
    prints it, `zoo.train` returns it). A broadcast from process 0 over JAX's collectives: every
    process calls it at the same point of the run, and a dead peer fails it as it fails a step.

    Args:
        run_id: this process' run id (only process 0's is kept).
    """
    if count() == 1:
        return run_id
    import numpy as np
    from jax.experimental import multihost_utils

    encoded = run_id.encode("utf-8")
    if len(encoded) > _RUN_ID_BYTES:
        raise ZooError(f"MLflow run id {run_id!r} is longer than {_RUN_ID_BYTES} bytes; use MLflow's own ids.")
    buffer = np.frombuffer(encoded.ljust(_RUN_ID_BYTES, b" "), dtype=np.uint8)
    shared = multihost_utils.broadcast_one_to_all(buffer, is_source=is_chief())
    return bytes(np.asarray(shared, dtype=np.uint8)).decode("utf-8").rstrip(" ")


def private_outputs(config: typing.Any) -> typing.Any:
    """The config a process other than 0 runs with: it writes nothing the user sees.

    Every process must run the same steps, since `fit`, `evaluate` and `predict` are collective
    across processes; only process 0 logs to the user's MLflow store, writes checkpoints, saves
    `--output` and registers. The others log to a store in a temporary folder, removed when the
    process exits, and write their checkpoints and `--output` there.
    """
    if is_chief():
        return config
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix=f"zoo-process-{index()}-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return dataclasses.replace(
        config,
        tracking_uri=f"sqlite:///{folder}/mlflow.db",
        checkpoint_dir=os.path.join(folder, "checkpoints"),
        # Saved all the same: the same steps in every process (saving reads every weight, which
        # process 0 alone would wait for in vain).
        output=os.path.join(folder, "output") if config.output else None,
        register=None,
        system_metrics=False,
    )
