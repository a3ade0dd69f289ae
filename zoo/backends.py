"""Which Keras backend the zoo runs on: TensorFlow (the default), JAX or PyTorch.

Keras reads its backend once, from `KERAS_BACKEND`, when it is first imported; a process cannot
switch afterwards. So the choice is made here, before anything imports Keras: `zoo train ...
--backend jax` and `zoo.train(..., backend="jax")` set `KERAS_BACKEND`, a backend that is not
installed stops with the extra to install, and a request for another backend than the one Keras
already runs on is refused with a `ZooError` (start a new process instead).
"""

import importlib.util
import os
import sys

from zoo.errors import ZooError

# Backend -> the module that must be importable for it (TensorFlow is a dependency of the package).
MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
DEFAULT = "tensorflow"
PROJECT = "keras-technique-zoo"


def current():
    """The backend Keras runs on in this process (imports Keras)."""
    import keras

    return keras.backend.backend()


def _loaded():
    """The backend Keras was imported with, or None when Keras is not imported yet."""
    if "keras" not in sys.modules:
        return None
    return current()


def choose(backend=None):
    """Make `backend` (else `KERAS_BACKEND`, else TensorFlow) this process's Keras backend.

    Args:
        backend: "tensorflow", "jax" or "torch"; None keeps `KERAS_BACKEND` or the default.

    Returns:
        The backend chosen.

    Raises:
        ZooError: for an unknown name, a backend that is not installed (naming the extra that
            installs it), or a backend other than the one Keras was already imported with.
    """
    requested = backend or os.environ.get("KERAS_BACKEND") or DEFAULT
    if requested not in MODULES:
        source = "--backend" if backend else "KERAS_BACKEND"
        raise ZooError(f"Unknown backend {requested!r} ({source}): choose one of {', '.join(MODULES)}.")
    loaded = _loaded()
    if loaded is not None:
        if loaded != requested:
            raise ZooError(
                f"Keras is already loaded on the {loaded} backend in this process and cannot switch to "
                f"{requested}: choose the backend before anything imports Keras (a new process with "
                f"KERAS_BACKEND={requested}, or `zoo train ... --backend {requested}`)."
            )
        return loaded
    check_installed(requested)
    os.environ["KERAS_BACKEND"] = requested
    return requested


def check_installed(backend):
    """Raise a one-line `ZooError` naming the extra to install when `backend` is missing."""
    module = MODULES[backend]
    if importlib.util.find_spec(module) is None:
        raise ZooError(
            f"The {backend} backend is not installed (no module named '{module}'): "
            f'pip install "{PROJECT}[{backend}]", or choose another with --backend or KERAS_BACKEND.'
        )


def named():
    """The backend this process runs Keras on, or will when it imports Keras, without importing it.

    `zoo/__init__.py` and `choose` set `KERAS_BACKEND` before anything imports Keras, so it names it.
    """
    return os.environ.get("KERAS_BACKEND") or DEFAULT


def check_compute(backend, precision, jit):
    """Refuse a `--precision` and `--jit` combination that `backend` cannot train with, in one line.

    What each backend does with them (README, "Backends: TensorFlow, JAX, PyTorch"):

    - precision: float32, mixed_float16 and mixed_bfloat16 train on all three (Keras' mixed
      policies; float16 scales its loss with a `LossScaleOptimizer`, also inside the GAN's step).
    - jit on TensorFlow: the step compiles with XLA (`jit_compile=True`); off: a `tf.function` graph.
    - jit on JAX: JAX always compiles the step with XLA, so `--jit` changes nothing there.
    - jit on PyTorch: refused. Keras would call `torch.compile`, which on a CPU compiled the RBM's
      update loop for minutes without finishing and needs a C++ toolchain; PyTorch has no XLA.

    Args:
        backend: "tensorflow", "jax" or "torch".
        precision: the run's `precision`.
        jit: the run's `jit`.

    Raises:
        ZooError: for `jit` on PyTorch.
    """
    if jit and backend == "torch":
        raise ZooError(
            f"`jit=True` with `precision={precision}` on the torch backend: the zoo does not compile "
            "PyTorch steps (torch.compile is not XLA, and on a CPU it compiles for minutes); use "
            "`jit=False`, or train on KERAS_BACKEND=jax or tensorflow for XLA."
        )
