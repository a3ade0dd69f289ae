"""Keep TensorFlow's native start-up chatter off the user's terminal.

TensorFlow's C++ runtime writes lines such as "Could not find cuda drivers" straight to file
descriptor 2 while it loads, before any Python logging setting applies, so a one-line error would
arrive buried under them. Loading it once with descriptor 2 pointed at /dev/null avoids that;
Python exceptions are unaffected because they are printed after the descriptor is restored.
"""

import contextlib
import os
import sys


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

    Nothing on another Keras backend: JAX and PyTorch train in-memory data without TensorFlow.
    """
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return None
    if os.environ.get("ZOO_DEBUG"):
        import tensorflow as tf

        return tf
    with native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf
