"""Keep TensorFlow's native start-up chatter off the user's terminal.

TensorFlow's C++ runtime writes lines such as "Could not find cuda drivers" straight to file
descriptor 2 while it loads, before any Python logging setting applies, so a one-line error would
arrive buried under them. Loading it once with descriptor 2 pointed at /dev/null avoids that;
Python exceptions are unaffected because they are printed after the descriptor is restored.

On JAX and PyTorch the CLI does not load TensorFlow, but a recipe may still import it (a tfds
dataset, a `tf.data` pipeline): `load_tensorflow` then arms a one-shot import hook, so that
whenever TensorFlow is first imported it loads just as quietly.
"""

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
import typing


@contextlib.contextmanager
def native_stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_tensorflow():
    """Import TensorFlow and probe its devices once, quietly (unless ZOO_DEBUG is set).

    Nothing is imported on another Keras backend (JAX and PyTorch train in-memory data without
    TensorFlow); there, if something imports TensorFlow later, it loads quietly all the same.
    """
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        quiet_tensorflow_import()
        return None
    if os.environ.get("ZOO_DEBUG"):
        import tensorflow as tf

        return tf
    with native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf


def quiet_tensorflow_import() -> None:
    """Whenever TensorFlow is first imported (by Keras, tfds, the caller), load it quietly.

    `import zoo` calls this, so that Python and Jupyter sessions see no native start-up lines
    either (`cudart_stub.cc`, `cuInit`), as the `zoo` command does; ZOO_DEBUG keeps them.
    """
    if not os.environ.get("ZOO_DEBUG") and "tensorflow" not in sys.modules:
        if not any(isinstance(finder, _QuietTensorFlow) for finder in sys.meta_path):
            sys.meta_path.insert(0, _QuietTensorFlow())


@contextlib.contextmanager
def mlflow_info_hidden() -> typing.Iterator[None]:
    """MLflow's INFO lines ("Creating initial MLflow database tables...") off while the zoo logs.

    Only where the caller chose no level (MLFLOW_LOGGING_LEVEL); their level is restored after.
    """
    import logging

    if os.environ.get("MLFLOW_LOGGING_LEVEL"):
        yield
        return
    logger = logging.getLogger("mlflow")
    saved = logger.level
    logger.setLevel(max(saved, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(saved)


def progress_verbosity() -> int:
    """Keras `fit` verbosity for a Python caller: a progress bar per epoch where one redraws in place
    (Jupyter, a terminal), else one line per epoch (a script writing to a log or a pipe)."""
    if "ipykernel" in sys.modules:
        return 1
    isatty = getattr(sys.stdout, "isatty", None)
    return 1 if isatty is not None and isatty() else 2


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` the usual way and loads it, once, with descriptor 2 silenced."""

    def find_spec(
        self, name: str, path: typing.Any = None, target: typing.Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        # Asked without importing too (`importlib.util.find_spec` checks what is installed): the
        # finder stays armed until TensorFlow is actually loaded.
        index = sys.meta_path.index(self)
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(index, self)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: typing.Any, finder: _QuietTensorFlow) -> None:
        self.loader = loader
        self.finder = finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return typing.cast(types.ModuleType | None, self.loader.create_module(spec))

    def exec_module(self, module: types.ModuleType) -> None:
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        with native_stderr_silenced():
            self.loader.exec_module(module)
            # The device probe logs too ("failed call to cuInit"): run it here, as on TensorFlow runs.
            module.config.list_physical_devices()

    def load_module(self, fullname: str) -> types.ModuleType:
        # The legacy protocol, which MLflow's autolog import hooks call on the loader they wrap.
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        with native_stderr_silenced():
            module = typing.cast(types.ModuleType, self.loader.load_module(fullname))
            module.config.list_physical_devices()
        return module


def quiet_third_party():
    """Silence what libraries print that a user of the command line cannot act on.

    NumPy's and other libraries' `FutureWarning`/`DeprecationWarning` (e.g. from TensorFlow's
    export path) and absl's Python log lines; Optuna's INFO lines are silenced by `zoo tune`
    itself, where it imports Optuna. ZOO_DEBUG keeps everything.
    """
    import logging
    import warnings

    if os.environ.get("ZOO_DEBUG"):
        return
    for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    keras_dict_keys()
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def keras_dict_keys():
    """Keras warns, once per column and call site, that a table column ('mean radius') is not the
    name of its input tensor ('mean_radius', names cannot hold spaces); it matches them all the same."""
    import warnings

    warnings.filterwarnings("ignore", message="When providing `inputs` as a dict", category=UserWarning)
