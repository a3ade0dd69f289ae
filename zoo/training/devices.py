"""Device placement: choosing how a run uses the hardware that is there, per Keras backend, and what
the rest of the training code needs to know of it (its scope, its replica count, its devices in words).

The only module of the package that knows `tf.distribute` and `keras.distribution` (the GAN's and
the RBM's own training steps aside): anything about devices, strategies or replicas belongs here.

- TensorFlow: a `tf.distribute` strategy (`MirroredStrategy` over several devices).
- JAX: `keras.distribution.DataParallel` over the chosen devices (`--devices all`: every local
  device; under several processes, `zoo.training.processes`, every device of every process), wrapped
  in a `JaxPlacement` that answers the same questions as a strategy.
- PyTorch: one device (Keras' PyTorch backend places everything on its one device, the first GPU
  or the CPU); asking for more is a one-line error.
"""

import contextlib
import functools
import json
import os
import typing

from zoo.errors import ZooError

DEVICES_HELP = "auto, cpu, gpu, gpu:0, gpu:0,1, cpu:0,1 (logical CPUs) or all"


def split_cpu_from_env() -> None:
    """Split the CPU into ZOO_LOGICAL_CPUS logical devices, if that variable is set.

    This lets a machine without GPUs exercise the several-device code paths
    (`ZOO_LOGICAL_CPUS=2 zoo train mlp --devices all`). It must run before TensorFlow creates
    any tensor, so `zoo.training.train` calls it first thing.
    """
    count = os.environ.get("ZOO_LOGICAL_CPUS")
    if not count:
        return
    if not count.isdigit() or int(count) < 1:
        raise ZooError(f"ZOO_LOGICAL_CPUS must be a positive integer. Received: {count!r}")
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(int(count))]
        )
    except RuntimeError:
        # Already initialized in this process (a second run in the same interpreter): keep what
        # is there.
        pass


def select_strategy(devices: str = "auto") -> typing.Any:
    """Return the strategy for a `--devices` value.

    On TensorFlow, a `tf.distribute` strategy; on JAX a `JaxPlacement`; on PyTorch a `TorchPlacement`.
    auto: `MirroredStrategy` (TensorFlow) or `DataParallel` (JAX) over all GPUs when there are
    several, else one device (one GPU or the CPU); under several processes on JAX every device of
    every process.
    cpu / gpu / gpu:N: one device. gpu:0,1 or cpu:0,1: `MirroredStrategy` over those devices.
    all: `MirroredStrategy` over every GPU, or every logical CPU when there is no GPU.

    Raises:
        ZooError: for a malformed value or a device that does not exist.
    """
    import keras

    devices = (devices or "auto").strip().lower()
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_placement(devices)
    if backend == "torch":
        return _torch_placement(devices)
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    _refuse_multi_worker()
    if devices == "auto":
        if len(gpus) > 1:
            return _mirrored(gpus)
        return tf.distribute.get_strategy()
    if devices == "all":
        chosen = gpus or cpus
        return _mirrored(chosen) if len(chosen) > 1 else tf.distribute.OneDeviceStrategy(chosen[0])
    names = _listed_devices(devices, cpus, gpus, "TensorFlow")
    return _mirrored(names) if len(names) > 1 else tf.distribute.OneDeviceStrategy(names[0])


def _listed_devices(devices: str, cpus: list[str], gpus: list[str], framework: str) -> list[str]:
    """The device names a `cpu`, `gpu`, `cpu:0,1` or `gpu:N` value picks (its first device without indices).

    Raises:
        ZooError: for a malformed value, or a kind or index `framework` does not see.
    """
    kind, _, indices = devices.partition(":")
    if kind not in ("cpu", "gpu"):
        raise ZooError(f"Bad `devices` value {devices!r}: use {DEVICES_HELP}.")
    available = gpus if kind == "gpu" else cpus
    if not available:
        raise ZooError(f"`devices={devices}`: no {kind.upper()} is visible to {framework}. Use `devices=cpu`.")
    try:
        wanted = [int(i) for i in indices.split(",")] if indices else [0]
    except ValueError:
        raise ZooError(f"Bad `devices` value {devices!r}: use {DEVICES_HELP}.") from None
    missing = [i for i in wanted if i >= len(available) or i < 0]
    if missing:
        raise ZooError(
            f"`devices={devices}`: {kind.upper()} {missing[0]} does not exist; "
            f"{len(available)} {kind.upper()}(s) visible: {', '.join(available)}."
        )
    return [available[i] for i in wanted]


def _refuse_multi_worker() -> None:
    # Keras 3's `fit` under MultiWorkerMirroredStrategy fails upstream ("Attempt to convert a value
    # (PerReplica: ...)", keras-team/keras #20585), and the strategy must exist before any
    # TensorFlow op ran: the JAX path is the one that works.
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "") or "{}")
    except json.JSONDecodeError:
        raise ZooError("TF_CONFIG is not valid JSON; fix it or unset it to train on this machine only.") from None
    if len(config.get("cluster", {}).get("worker", [])) > 1:
        raise ZooError(
            "TF_CONFIG names several workers, which Keras 3 cannot train with on TensorFlow; train over "
            "several processes on JAX instead: unset TF_CONFIG and see `zoo launch --help`."
        )


class JaxPlacement:
    """Where a run's model lives on JAX: a `keras.distribution.DataParallel`, or None for one device.

    Attributes:
        distribution: the `DataParallel`, or None (Keras' default placement: the first device).
        devices: the device names, e.g. ["cpu:0", "cpu:1"].
    """

    def __init__(self, distribution: typing.Any, devices: list[str]) -> None:
        self.distribution = distribution
        self.devices = devices

    @property
    def num_replicas_in_sync(self) -> int:
        return len(self.devices)


class TorchPlacement:
    """PyTorch's one device: Keras places every tensor on it (the first GPU, else the CPU)."""

    num_replicas_in_sync = 1

    def __init__(self, device: str) -> None:
        self.device = device


def _jax_placement(devices: str) -> JaxPlacement:
    import keras

    from zoo.training import processes

    if processes.count() > 1:
        if devices not in ("auto", "all"):
            raise ZooError(
                f"`devices={devices}` under {processes.count()} processes: several processes train on "
                "every device of every process; use `devices=all` or `devices=auto`."
            )
        everywhere = keras.distribution.list_devices()
        # Each process takes its rows of every global batch itself (`even_batches`): Keras' own
        # sharding rebatches, which gives the processes unequal rows on a partial batch.
        distribution = keras.distribution.DataParallel(devices=everywhere, auto_shard_dataset=False)
        return JaxPlacement(distribution, everywhere)
    gpus = keras.distribution.list_devices("gpu") if _jax_has("gpu") else []
    cpus = keras.distribution.list_devices("cpu")
    if devices == "auto":
        chosen = gpus if len(gpus) > 1 else (gpus or cpus)[:1]
    elif devices == "all":
        chosen = gpus or cpus
    else:
        chosen = _listed_devices(devices, cpus, gpus, "JAX")
    if len(chosen) == 1 and chosen[0] == (gpus or cpus)[0]:
        return JaxPlacement(None, chosen)
    return JaxPlacement(keras.distribution.DataParallel(devices=chosen), chosen)


def _jax_has(kind: str) -> bool:
    import jax

    try:
        return bool(jax.devices(kind))
    except RuntimeError:
        return False


def _torch_placement(devices: str) -> TorchPlacement:
    import torch

    gpu = torch.cuda.is_available()
    if devices in ("auto", "gpu", "gpu:0") and gpu:
        return TorchPlacement("cuda:0")
    if devices in ("auto", "cpu", "cpu:0"):
        if gpu:
            raise ZooError(
                "`devices=cpu` on PyTorch: Keras places everything on the GPU when one is visible; "
                "set CUDA_VISIBLE_DEVICES= to train on the CPU."
            )
        return TorchPlacement("cpu")
    if devices == "all" or "," in devices or devices.startswith(("gpu:", "cpu:")):
        raise ZooError(
            f"`devices={devices}` on PyTorch: the zoo trains on one device there; "
            "use KERAS_BACKEND=jax or tensorflow for several devices."
        )
    if devices == "gpu" and not gpu:
        raise ZooError(f"`devices={devices}`: no GPU is visible to PyTorch. Use `devices=cpu`.")
    raise ZooError(f"Bad `devices` value {devices!r}: use {DEVICES_HELP}.")


def _mirrored(names: list[str]) -> typing.Any:
    return _mirrored_over(tuple(names))


@functools.cache
def _mirrored_over(names: tuple[str, ...]) -> typing.Any:
    # One MirroredStrategy per device set and process: a second instance over the same devices
    # aborts its collective all-reduce ("Collective ops is aborted ... restart your program").
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(list(names))


def describe(strategy: typing.Any) -> tuple[str, int]:
    """Return (strategy class name, replica count) for logging.

    On JAX: `DataParallel` or `OneDevice`; on PyTorch: `OneDevice`.
    """
    if isinstance(strategy, JaxPlacement):
        name = type(strategy.distribution).__name__ if strategy.distribution is not None else "OneDevice"
        return name, strategy.num_replicas_in_sync
    if isinstance(strategy, TorchPlacement):
        return "OneDevice", 1
    return type(strategy).__name__, int(strategy.num_replicas_in_sync)


def device_label(strategy: typing.Any) -> str:
    """The devices a strategy trains on, in words: `CPU:0`, `GPU:0`, or `2 devices (GPU:0, GPU:1)`."""
    if isinstance(strategy, JaxPlacement | TorchPlacement):
        names = strategy.devices if isinstance(strategy, JaxPlacement) else [strategy.device.replace("cuda", "gpu")]
        short = [name.upper() for name in names]
        return short[0] if len(short) == 1 else f"{len(short)} devices ({', '.join(short)})"
    import tensorflow as tf

    try:
        names = list(strategy.extended.worker_devices)
    except (RuntimeError, AttributeError):
        # The default strategy places ops where TensorFlow does: the first GPU, else the CPU.
        gpus = tf.config.list_logical_devices("GPU")
        names = [gpus[0].name if gpus else "CPU:0"]
    short = [name.split("device:")[-1] for name in names]
    return short[0] if len(short) == 1 else f"{len(short)} devices ({', '.join(short)})"


def scope(strategy: typing.Any) -> typing.ContextManager[typing.Any]:
    """The strategy's scope: variables created inside it (a model, its optimizer) live on its devices."""
    if isinstance(strategy, TorchPlacement) or (isinstance(strategy, JaxPlacement) and strategy.distribution is None):
        return contextlib.nullcontext()
    if isinstance(strategy, JaxPlacement):
        return typing.cast(typing.ContextManager[typing.Any], strategy.distribution.scope())
    return typing.cast(typing.ContextManager[typing.Any], strategy.scope())


def run_scope(strategy: typing.Any) -> typing.ContextManager[typing.Any]:
    """What must stay active around a whole run, `fit` and `evaluate` included.

    On JAX, Keras' trainer shards each batch over the distribution that is active when it runs, so
    the `DataParallel` spans the run; a `tf.distribute` strategy is bound to the model instead.
    """
    if isinstance(strategy, JaxPlacement) and strategy.distribution is not None:
        return scope(strategy)
    return contextlib.nullcontext()


def even_batches(batches: typing.Any, rows: int, batch_size: int) -> typing.Any:
    """Batches that JAX can shard over the active `DataParallel`: unchanged anywhere else.

    JAX splits a batch over its devices only when their count divides it. A batch that does not
    split (an epoch's last, partial batch) is padded to the next multiple of the devices with copies
    of its first rows, and every batch of (inputs, targets) gains sample weights: the real rows
    weigh padded / real rows and the copies 0, so the weights average 1 over the batch, Keras'
    "sum_over_batch_size" loss of a padded batch is the mean over its real rows, and its gradient
    is the unpadded batch's. Every row of a split is then seen once per epoch whatever the remainder.
    Keras' epoch means (its loss tracker, weighted metrics) count a padded batch as its padded size
    at the mean of its real rows: at most devices - 1 rows of extra weight, on the last batch only.
    A batch of inputs alone (no targets, so no place for weights) is padded with the copies alone.

    Under several processes, each one keeps its equal share of every (padded) global batch,
    process i of N the i-th N-th, so that every process runs the same steps (uneven shards would
    leave one waiting in a collective for ever).

    Args:
        batches: a batched `tf.data.Dataset` whose elements are the global batches.
        rows: the rows of the unbatched split (negative: unknown); kept for the callers' sake, as
            the padding is decided batch by batch.
        batch_size: the global batch size `batches` was made with.
    """
    del rows, batch_size
    devices, count, index = batch_split()
    if devices == 1:
        return batches
    import tensorflow as tf

    def share(*batch: typing.Any) -> typing.Any:
        size = tf.shape(tf.nest.flatten(batch)[0])[0]
        padded = (size + devices - 1) // devices * devices
        positions = tf.range(padded)
        start, stop = index * padded // count, (index + 1) * padded // count
        picks = (positions % size)[start:stop]
        part = tf.nest.map_structure(lambda tensor: tf.gather(tensor, picks), batch)
        if len(batch) == 2:
            real = tf.cast(padded, tf.float32) / tf.cast(size, tf.float32)
            weights = tf.where(positions < size, real, 0.0)[start:stop]
            return (*part, tf.reshape(weights, [-1] + [1] * (_rank(part[1]) - 1)))
        return part if len(batch) > 1 else part[0]

    return batches.map(share)


def weighted(batch: typing.Any, weights: typing.Any) -> typing.Any:
    """`batch` with the sample weights `even_rows` gave, where it is (inputs, targets) and has them.

    The weights are shaped (rows, 1, ...) to the targets' rank: Keras merges a sample weight with
    the mask of a model's per-step outputs (a recurrent sequence labeller's, a forecaster's) only
    when their ranks agree or the weight ends in 1, and (rows,) against a (rows, steps) mask fails
    to broadcast. Row-wise targets keep (rows,) weights; either shape weighs the same.
    """
    if weights is None or not (isinstance(batch, tuple) and len(batch) == 2):
        return batch
    return (*batch, weights.reshape((-1,) + (1,) * (_rank(batch[1]) - 1)))


def _rank(targets: typing.Any) -> int:
    """The targets' rank (a NumPy array's or a tensor's; 1 for a structure of several arrays)."""
    return max(int(getattr(targets, "ndim", None) or 1), 1)


def batch_split() -> tuple[int, int, int]:
    """(devices, processes, this process' index) a batch is split over: the active `DataParallel`'s
    on JAX (inside `run_scope`), else (1, 1, 0), where batches stay whole."""
    import keras

    if keras.backend.backend() != "jax" or keras.distribution.distribution() is None:
        return 1, 1, 0
    from zoo.training import processes

    return int(keras.distribution.distribution().device_mesh.devices.size), processes.count(), processes.index()


def even_rows(size: int) -> tuple[typing.Any, typing.Any]:
    """The rows of a batch of `size` rows that this process feeds, by `even_batches`' rule (NumPy
    batches, `zoo.training.pipelines.Arrays`), and their sample weights.

    Returns:
        (positions in the batch, padding copies included; their weights, or None where batches
        stay whole).
    """
    import numpy as np

    devices, count, index = batch_split()
    if devices == 1:
        return np.arange(size), None
    padded = -(-size // devices) * devices
    positions = np.arange(padded)
    weights = np.where(positions < size, padded / size, 0.0).astype("float32")
    part = slice(index * padded // count, (index + 1) * padded // count)
    return (positions % size)[part], weights[part]


@contextlib.contextmanager
def locally(*models: typing.Any) -> typing.Iterator[None]:
    """Inside the block, under a `DataParallel` over several devices on JAX (of one process or of
    several), `models` compute on this process alone, without the `DataParallel`.

    Keras' JAX trainer shards every batch over the devices of every process, so `predict` returns
    arrays that no process can read whole, and a direct call mixes this process' inputs with weights
    that span the others. What runs once after (or beside) the training, each process on the same
    inputs (test metrics, predictions, the GAN's judge and samples, the logged model), runs instead
    without the `DataParallel` on this process' copy of the weights, which `DataParallel` keeps
    whole on every device. Nothing in the block is collective, so no process waits on another,
    and batches made inside it are not padded (`even_batches`): the test metrics are those of
    the whole split, computed once per process. One process over several devices does the same,
    for another reason: a model's own batching (`predict` on arrays, the RBM's
    `pseudo_likelihood`, the greedy caption decoder) ends on a batch that the devices do not
    divide, which JAX refuses under the `DataParallel` ("the dimension size is 103"). Nothing
    changes on one device or another backend.

    Args:
        *models: the Keras models the block computes with (models made inside it need nothing).

    Raises:
        ZooError: for a weight that is split across the processes rather than copied whole.
    """
    import keras

    distribution = keras.distribution.distribution() if keras.backend.backend() == "jax" else None
    if distribution is None or distribution.device_mesh.devices.size == 1:
        yield
        return
    import jax
    import numpy as np

    swapped, functions = [], []
    for model in models:
        functions.append((model, model.train_function, model.test_function, model.predict_function))
        # Compiled for the sharded state: made again for the local one, and restored after.
        model.train_function = model.test_function = model.predict_function = None
        for variable in _every_variable(model):
            value = variable.value
            if value is None or value.is_fully_addressable:
                continue
            if not value.is_fully_replicated:
                raise ZooError(f"Weight {variable.path} is split across processes; only DataParallel is supported.")
            swapped.append((variable, value, variable._layout))
            # Read from this process' copy (a replicated array is readable whole), put on its first
            # device; without its layout, an assignment in the block (a metric's reset) stays local.
            variable._layout = None
            variable._value = jax.device_put(np.asarray(value), jax.local_devices()[0])
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(distribution)
        # What the block assigned is dropped, alike in every process: it computes, it does not train.
        for variable, value, layout in swapped:
            variable._layout, variable._value = layout, value
        for model, train, test, predict in functions:
            model.train_function, model.test_function, model.predict_function = train, test, predict


def _every_variable(model: typing.Any) -> list[typing.Any]:
    """A model's weights, metric state and optimizer state, each once."""
    optimizer = getattr(model, "optimizer", None)
    found = {id(v): v for v in [*model.variables, *model.metrics_variables, *getattr(optimizer, "variables", [])]}
    return list(found.values())


def replicas(model: typing.Any) -> int:
    """The replica count a built Keras model trains over: its `tf.distribute` strategy's on TensorFlow,
    the active `DataParallel`'s devices on JAX (inside `run_scope`), else 1.

    Batches for the model's `evaluate` and `predict` start with one that splits evenly over it
    (`zoo.training.pipelines.batch`).
    """
    import keras

    if keras.backend.backend() == "jax":
        distribution = keras.distribution.distribution()
        return int(distribution.device_mesh.devices.size) if distribution is not None else 1
    strategy = getattr(model, "distribute_strategy", None)
    return int(strategy.num_replicas_in_sync) if strategy is not None else 1


@contextlib.contextmanager
def without_graph_passes(*passes: str) -> typing.Iterator[None]:
    """Turn TensorFlow grappler passes off inside the block; restore the settings after it.

    For a pass that logs an error line on a graph it cannot optimize and then skips it anyway.
    Input pipelines are optimized when `fit` creates their iterators and the training step on its
    first call, so the block spans the whole run. Nothing happens without passes, or on another
    backend.

    Args:
        *passes: grappler option names, e.g. "remapping", "arithmetic_optimization".
    """
    import keras

    if not passes or keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf

    saved = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({name: False for name in passes})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({name: saved.get(name, True) for name in passes})


def steps_per_epoch(rows: int, batch_size: int) -> int:
    """Batches in an epoch of `rows` rows (`even_batches` pads the last one, never drops it)."""
    import math

    return max(1, math.ceil(rows / batch_size))
