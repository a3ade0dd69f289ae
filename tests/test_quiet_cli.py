"""A quiet, fast command line: no warning or error line in a default run, no heavy import for --help."""

import json
import os
import re
import subprocess
import sys
import time

from tests.conftest import REPO, one_recipe_per_module

HEAVY = ("tensorflow", "keras", "mlflow")
SMALLER = {
    "gan": ["--judge-epochs", "1", "--samples", "100"],
    "rbm": ["--gibbs-steps", "20", "--classifier-rows", "500"],
    # A quarter of the default lines: the OCR epoch was the longest of the processes started together.
    "ocr": ["--lines", "1000,100,250"],
}
HELPS = [["--help"], ["train", "--help"], ["train", "mlp", "--help"], ["train", "cnn", "--help"], ["ui", "--help"]]


def _user_env(tmp_path):
    """The environment a user's shell gives `zoo`: none of the test suite's log-level settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_LOGGING_LEVEL")}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db",
        ZOO_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
        ZOO_CACHE_DIR=str(tmp_path / "cache"),
        PYTHONPATH=str(REPO),
    )
    return env


def test_help_imports_neither_tensorflow_keras_nor_mlflow(tmp_path):
    # Each command's help in a fresh interpreter; main() exits through argparse's SystemExit.
    script = (
        "import json, sys\n"
        "from zoo.cli import main\n"
        "loaded = {}\n"
        f"for argv in {HELPS!r}:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"    loaded[' '.join(argv)] = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "main(['list'])\n"
        "main(['info', 'cnn'])\n"
        "loaded['list, info'] = sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow')\n"
        "print(json.dumps(loaded), file=sys.stderr)\n"
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=_user_env(tmp_path), timeout=120
    )
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stderr.strip().splitlines()[-1])
    assert loaded and all(modules == [] for modules in loaded.values()), loaded
    assert "--missing" in result.stdout and "--no-download" in result.stdout
    # TensorFlow alone takes 3.5-4 s to import; five help texts without it take about one.
    assert seconds < 20, f"{seconds:.1f} s"


def test_a_default_run_of_every_recipe_prints_no_warning_and_no_error_line(tmp_path):
    # One `zoo train RECIPE --epochs 1` process per recipe, as a user runs it (a process that
    # trains several models in a row draws TensorFlow's retracing warnings, a user's does not),
    # all started at once; stderr is read whole, native TensorFlow lines included. Sizes that
    # only lengthen the work are cut: the GAN's judge and samples, the RBM's Gibbs chains and
    # downstream classifier, the OCR's number of lines.
    processes = {}
    for name in one_recipe_per_module():
        folder = tmp_path / name
        folder.mkdir()
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "zoo", "train", name, "--epochs", "1", *SMALLER.get(name, [])],
            cwd=folder,
            env=_user_env(folder),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert {"mlp", "cnn", "gan", "rbm"} <= set(processes) and processes.keys() & {"rnn", "lstm", "gru"}
    noisy = []
    for name, process in processes.items():
        out, err = process.communicate(timeout=900)
        assert process.returncode == 0, (name, err[-3000:])
        assert "finished" in out.strip().splitlines()[-1], (name, out)
        noisy += [
            f"{name}: {line}"
            for line in err.splitlines()
            # One epoch may not beat the trivial baseline: saying so is the run's job (`zoo.learned`).
            if ("warning" in line.lower() or "error" in line.lower() or re.match(r"[EWF]\d{4} ", line))
            and "did not beat the trivial baseline" not in line
        ]
    assert noisy == [], "\n".join(noisy)


def test_tensorflow_imported_during_a_jax_run_loads_quietly(tmp_path):
    # The CLI does not load TensorFlow on JAX, but a recipe still may (a tfds dataset, tf.data):
    # its native start-up lines ("oneDNN custom operations", "failed call to cuInit") stay off stderr.
    script = (
        "import sys\n"
        "from zoo.quiet import load_tensorflow\n"
        "assert load_tensorflow() is None and 'tensorflow' not in sys.modules\n"
        "import tensorflow as tf\n"
        "print(int(tf.constant(2) + 1))\n"
    )
    env = {**_user_env(tmp_path), "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert (result.returncode, result.stdout, result.stderr) == (0, "3\n", "")
