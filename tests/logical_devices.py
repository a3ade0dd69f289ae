"""Run Python code in a fresh process whose CPU is split into logical devices.

The split must happen before TensorFlow initializes, hence a separate process.
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap

PREAMBLE = """
import os, json
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import tensorflow as tf
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration() for _ in range({count})])
"""


def run_with_logical_cpus(code, count=2, timeout=600, env=None):
    """Run `code` after splitting the CPU into `count` devices; return the JSON it prints last.

    The code must print one JSON document as its last line of stdout.
    """
    script = PREAMBLE.format(count=count) + textwrap.dedent(code)
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    # In a folder of its own: a run's artifacts (MLflow's ./mlruns beside a SQLite store) and
    # checkpoints land in the working directory, which must not be the checkout.
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, env=environment, cwd=folder
        )
    if result.returncode != 0:
        raise AssertionError(f"subprocess failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
