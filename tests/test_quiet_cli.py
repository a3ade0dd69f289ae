"""A quiet, fast command line: no warning or error line in a default run, no heavy import for --help."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, one_recipe_per_module

HEAVY = ("tensorflow", "keras", "mlflow")
SMALLER = {
    "gan": ["--judge-epochs", "1", "--samples", "100"],
    "rbm": ["--gibbs-steps", "20", "--classifier-rows", "500"],
    # A quarter of the default lines: the OCR epoch was the longest of the processes started together.
    "ocr": ["--lines", "1000,100,250"],
}
# What a command may print: the zoo's own lines and Keras' epoch progress (verbose=2), nothing else.
OWN = re.compile(
    r"^(zoo( tune)?: |Epoch \d+/\d+$|\d+/\d+ - \d+m?s - |run [0-9a-f]{32} finished: |wrote |"
    r"study |best trial |  trial run |best configuration[ :]|continue: |"
    r"a request built from|an example request of|the answer: |  curl -s http://127\.0\.0\.1:\d+/invocations )"
)
HELPS = [["--help"], ["train", "--help"], ["train", "mlp", "--help"], ["train", "cnn", "--help"], ["ui", "--help"]]


def _user_env(tmp_path):
    """The environment a user's shell gives `zoo`: none of the test suite's log-level settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_LOGGING_LEVEL")}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db",
        ZOO_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
        ZOO_CACHE_DIR=str(tmp_path / "cache"),
        PYTHONPATH=str(REPO),
        # The status lines a terminal gets (the output here is a pipe).
        ZOO_STATUS="1",
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
        f"loaded['list, info'] = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
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
        noisy += [f"{name}: not the zoo's: {line}" for line in foreign(out + err)]
        # One status line per step, the first before TensorFlow loads, and nothing left behind.
        steps = [line for line in out.splitlines() if line.startswith("zoo: ")]
        assert steps[0].startswith(f"zoo: train {name}: loading Keras"), (name, steps)
        assert {"zoo: loading data", "zoo: evaluating on the test split"} <= set(steps), (name, steps)
        assert leftovers(tmp_path / name) == [], name
    assert noisy == [], "\n".join(noisy)


def foreign(text):
    """The lines of `text` that are neither the zoo's own nor Keras' epoch progress."""
    return [line for line in text.splitlines() if line.strip() and not OWN.match(line)]


def leftovers(folder):
    """What a command left in its working directory besides the stores it writes to."""
    kept = {"mlflow.db", "mlflow.db-wal", "mlflow.db-shm", "mlruns", "optuna.db", "checkpoints", "cache"}
    return sorted(name for name in os.listdir(folder) if name not in kept)


def _own_env(folder):
    # No ZOO_CHECKPOINT_DIR: checkpoints go to ./zoo-checkpoints as a user's do, and must not stay.
    return {k: v for k, v in _user_env(folder).items() if k != "ZOO_CHECKPOINT_DIR"}


def _zoo(folder, *argv, timeout=600):
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "zoo", *argv],
        cwd=folder,
        env=_own_env(folder),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (argv, result.stdout[-2000:], result.stderr[-3000:])
    return result.stdout, result.stderr, time.perf_counter() - started


@pytest.mark.large  # 140-343 s on 2 cores shared with other jobs (load average 10-14)
def test_tune_compare_export_serve_and_list_print_only_their_own_lines(tmp_path):
    # The commands around a training, as a user runs them one after the other in one folder:
    # each one's output is recorded whole and every line must be the zoo's (or Keras' epochs).
    from zoo.commands import serve

    out, err, _ = _zoo(tmp_path, "tune", "mlp", "--trials", "2", "--epochs", "1")
    assert foreign(out + err) == [], out + err
    assert "zoo: retraining the best trial's configuration (trial " in out
    final = re.search(r"trained again and tested: run ([0-9a-f]{32})", out).group(1)
    study = re.search(r"^study (\S+) ", out, re.M).group(1)

    out, err, _ = _zoo(tmp_path, "compare")
    lines = out.splitlines()
    assert err == "" and max(map(len, lines)) <= 100, out
    assert lines[-1] == "* best on test_accuracy; best search trial on its validation metric", out
    trials = [line for line in lines if "-t0 " in line or "-t1 " in line]
    assert len(trials) == 2 and sum(line.startswith("*") for line in trials) == 1, out

    out, err, _ = _zoo(tmp_path, "export", final, "--format", "tf_saved_model", "--out", "exported")
    assert foreign(out + err) == [], out + err
    assert "checked: tensorflow reloads it and predicts as Keras does" in out.splitlines()[-1]

    for argv in (["list"], ["info", "mlp"]):
        out, err, _ = _zoo(tmp_path, *argv)
        assert err == "" and max(map(len, out.splitlines())) <= 100, out

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", "serve", final, "--port", str(port)],
        cwd=tmp_path,
        env=_own_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        printed = []
        while not printed or not printed[-1].startswith("zoo: ready: "):
            line = process.stdout.readline()
            assert line, "zoo serve ended before it was ready:\n" + "".join(printed)
            printed.append(line)
        # The request it printed, sent as printed: the model's own input example.
        body = re.search(r"-d '(.*)'$", next(line for line in printed if "curl -s" in line).rstrip()).group(1)
        answer = _post(f"http://127.0.0.1:{port}/invocations", body)
        assert len(answer["predictions"]) == 1
    finally:
        serve.stop(process)
    rest = process.stdout.read()
    assert foreign("".join(printed) + rest) == [], "".join(printed) + rest
    # What the user asked for: the export, and the best configuration `zoo tune` writes for `--config`.
    assert leftovers(tmp_path) == sorted(["exported", f"{study}-best.yaml"])


def _free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(url, body):
    import urllib.request

    request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


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
