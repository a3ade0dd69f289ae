"""Device placement: choosing a `tf.distribute` strategy for the hardware that is there, and what the
rest of the training code needs to know of it (its scope, its replica count, its devices in words).

The only module of the package that knows `tf.distribute` (the GAN's and the RBM's own training
steps aside): anything about devices, strategies or replicas belongs here. TensorFlow-specific on
purpose: the models stay backend-neutral, the training runs on the TensorFlow backend, where
`tf.distribute` is the way to use several devices.
"""

import contextlib
import functools
import json
import os
import typing

from zoo.errors import ZooError
from zoo.training import pipelines

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

    auto: `MultiWorkerMirroredStrategy` when TF_CONFIG names several workers, `MirroredStrategy`
    over all GPUs when there are several, else the default strategy (one GPU or the CPU).
    cpu / gpu / gpu:N: one device. gpu:0,1 or cpu:0,1: `MirroredStrategy` over those devices.
    all: `MirroredStrategy` over every GPU, or every logical CPU when there is no GPU.

    Raises:
        ZooError: for a malformed value or a device that does not exist.
    """
    devices = (devices or "auto").strip().lower()
    if not pipelines.tensorflow_input():
        return _single_process(devices)
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if devices == "auto":
        if _multi_worker():
            return tf.distribute.MultiWorkerMirroredStrategy()
        if len(gpus) > 1:
            return _mirrored(gpus)
        return tf.distribute.get_strategy()
    if devices == "all":
        chosen = gpus or cpus
        return _mirrored(chosen) if len(chosen) > 1 else tf.distribute.OneDeviceStrategy(chosen[0])
    kind, _, indices = devices.partition(":")
    if kind not in ("cpu", "gpu"):
        raise ZooError(f"Bad `devices` value {devices!r}: use {DEVICES_HELP}.")
    available = gpus if kind == "gpu" else cpus
    if not available:
        raise ZooError(f"`devices={devices}`: no {kind.upper()} is visible to TensorFlow. Use `devices=cpu`.")
    if not indices:
        return tf.distribute.OneDeviceStrategy(available[0])
    try:
        wanted = [int(i) for i in indices.split(",")]
    except ValueError:
        raise ZooError(f"Bad `devices` value {devices!r}: use {DEVICES_HELP}.") from None
    missing = [i for i in wanted if i >= len(available) or i < 0]
    if missing:
        raise ZooError(
            f"`devices={devices}`: {kind.upper()} {missing[0]} does not exist; "
            f"{len(available)} {kind.upper()}(s) visible: {', '.join(available)}."
        )
    names = [available[i] for i in wanted]
    return _mirrored(names) if len(names) > 1 else tf.distribute.OneDeviceStrategy(names[0])


class SingleProcess:
    """Where JAX and PyTorch train without `tf.distribute`: the backend's default device, one replica."""

    num_replicas_in_sync = 1

    def scope(self) -> typing.ContextManager[None]:
        return contextlib.nullcontext()


def _single_process(devices: str) -> SingleProcess:
    # Several devices on JAX (keras.distribution) are not here yet: refuse rather than use one silently.
    if devices not in ("auto", "cpu", "gpu", "gpu:0", "cpu:0"):
        raise ZooError(
            f"`devices={devices}` needs the TensorFlow backend for now; use `devices=auto` on JAX or PyTorch."
        )
    return SingleProcess()


def _multi_worker() -> bool:
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "") or "{}")
    except json.JSONDecodeError:
        raise ZooError("TF_CONFIG is not valid JSON; fix it or unset it to train on this machine only.") from None
    return len(config.get("cluster", {}).get("worker", [])) > 1


def _mirrored(names: list[str]) -> typing.Any:
    return _mirrored_over(tuple(names))


@functools.cache
def _mirrored_over(names: tuple[str, ...]) -> typing.Any:
    # One MirroredStrategy per device set and process: a second instance over the same devices
    # aborts its collective all-reduce ("Collective ops is aborted ... restart your program").
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(list(names))


def describe(strategy: typing.Any) -> tuple[str, int]:
    """Return (strategy class name, replica count) for logging."""
    return type(strategy).__name__, int(strategy.num_replicas_in_sync)


def device_label(strategy: typing.Any) -> str:
    """The devices a strategy trains on, in words: `CPU:0`, `GPU:0`, or `2 devices (GPU:0, GPU:1)`."""
    if isinstance(strategy, SingleProcess):
        import keras

        return str(keras.distribution.list_devices()[0]) if keras.backend.backend() == "jax" else "default device"
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
    return typing.cast(typing.ContextManager[typing.Any], strategy.scope())


def replicas(model: typing.Any) -> int:
    """The replica count of the strategy a built Keras model lives under (1 off the TensorFlow backend).

    Batches for the model's `evaluate` and `predict` start with one that splits evenly over it
    (`zoo.training.pipelines.batch`).
    """
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
