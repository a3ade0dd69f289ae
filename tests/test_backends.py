"""Every model on every Keras backend: TensorFlow, JAX and PyTorch.

Subprocesses per backend (a backend is chosen before Keras is imported, once per process) run
tests/backend_worker.py: one training step of the GAN and of the RBM from the same weights, batch
and noise, written here as .npz, and every registered model built, fit for one epoch on tiny data,
evaluated, saved and loaded. They run side by side and report JSON; JAX, whose XLA compiles make it
the slowest by far, splits its work over two processes.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from tests import backend_worker
from zoo import registry

BACKENDS = ("tensorflow", "jax", "torch")
# Worker processes per backend: the fixture's wall time is the slowest backend's.
SHARDS = {"tensorflow": 1, "jax": 2, "torch": 1}
WORKER = pathlib.Path(backend_worker.__file__)


def _inputs(path):
    """The weights, batch and noise every backend's step starts from (built on TensorFlow here)."""
    rng = np.random.default_rng(0)
    arrays = {
        "images": rng.random((6, 8, 8, 1)).astype("float32"),
        "labels": rng.integers(0, 10, (6,)).astype("int32"),
        "latent": rng.standard_normal((6, backend_worker.GAN["latent_dim"])).astype("float32"),
        "rows": (rng.random((16, 12)) < 0.4).astype("float32"),
    }
    gan = backend_worker.build_gan()
    for index, weight in enumerate(gan.get_weights()):
        arrays[f"gan_{index}"] = weight
    for name in backend_worker.RBMS:
        model = backend_worker.build_rbm(name)
        for index, weight in enumerate(model.get_weights()):
            # Larger than the initial 0.01 scale, so that the hidden units are far from 0.5 and a
            # wrong sign or scale in an update shows.
            if weight.dtype == np.float32 and index < 3:
                weight = rng.normal(0, 0.5, weight.shape).astype("float32")
            arrays[f"{name}_{index}"] = weight
    np.savez(path, **arrays)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """{backend: (the worker's JSON, its output folder)}, the three backends run concurrently."""
    folder = tmp_path_factory.mktemp("backends")
    inputs = folder / "inputs.npz"
    _inputs(inputs)
    processes = []
    for backend in BACKENDS:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        for shard in range(SHARDS[backend]):
            command = [
                sys.executable,
                str(WORKER),
                str(inputs),
                str(folder / backend),
                str(shard),
                str(SHARDS[backend]),
            ]
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=folder
            )
            processes.append((backend, process))
    results = {backend: ({"models": {}}, folder / backend) for backend in BACKENDS}
    for backend, process in processes:
        out, err = process.communicate(timeout=900)
        assert process.returncode == 0, f"{backend} worker failed:\n{err[-4000:]}"
        found = results[backend][0]
        for key, value in json.loads(out.strip().splitlines()[-1]).items():
            if key == "models":
                found["models"].update(value)
            else:
                found[key] = value
    return results


def _weights(path):
    with np.load(path) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


@pytest.mark.parametrize("model", ["gan", "rbm_persistent", "rbm_cd"])
def test_one_training_step_makes_the_same_update_on_every_backend(matrix, model, tmp_path):
    for backend in BACKENDS:
        found, _ = matrix[backend]
        assert found["backend"] == backend
        assert found["step_error"] is None, f"{backend}: {found['step_error']}"
    with np.load(matrix["tensorflow"][1].parent / "inputs.npz") as inputs:
        prefix = f"{model}_"
        before = [inputs[f"{prefix}{i}"] for i in range(sum(k.startswith(prefix) for k in inputs.files))]
    after = {backend: _weights(folder / f"{model}.npz") for backend, (_, folder) in matrix.items()}
    reference = after["tensorflow"]
    assert len(reference) == len(before)
    # The step moved the weights, so that equal results are not equal starting points.
    assert max(float(np.abs(a - b).max()) for a, b in zip(reference, before)) > 1e-2
    for backend in ("jax", "torch"):
        for index, (want, got) in enumerate(zip(reference, after[backend])):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=f"{model} weight {index} on {backend}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_model_fits_evaluates_saves_and_loads(matrix, backend):
    found, _ = matrix[backend]
    assert found["backend"] == backend
    assert set(found["models"]) == set(registry.names())
    failures = {
        name: result["error"]
        for name, result in found["models"].items()
        if "error" in result and backend in registry.info(name).backends
    }
    assert not failures, f"on {backend}: {failures}"
    listed = {name for name in registry.names() if backend in registry.info(name).backends}
    for name, result in found["models"].items():
        if name not in listed:
            continue
        assert result["moved"] > 0, f"{name} on {backend}: fit changed no weight"
        losses = [v for values in result["history"].values() for v in values] + list(result["evaluate"].values())
        assert losses and all(np.isfinite(losses)), f"{name} on {backend}: {result}"
        # Identical up to float rounding: TensorFlow's rnn was seen one float32 ulp apart after training.
        assert result["prediction_difference"] <= 1e-6, f"{name} on {backend}: reloaded model predicts otherwise"


@pytest.mark.parametrize("backend", BACKENDS)
def test_precision_and_jit_train_one_step_or_stop_before_the_run(matrix, backend):
    found, _ = matrix[backend]
    compute = found["compute"]
    assert "error" not in compute, compute.get("error")
    assert set(compute) == {f"{p} {j}" for p in backend_worker.PRECISIONS for j in ("jit", "no-jit")}
    for key, models in compute.items():
        precision, jit = key.split()
        if backend == "torch" and jit == "jit":
            status, err, runs = models["refused"]
            lines = err.strip().splitlines()
            assert status == 2 and len(lines) == 1 and runs == 0, (key, err)
            # The combination and the ways out, as command-line flags.
            assert lines[0].startswith(f"zoo: error: --jit with --precision {precision} on the torch backend")
            assert "use --no-jit, or train on KERAS_BACKEND=jax or tensorflow" in lines[0]
            continue
        expected = set(backend_worker.COMPUTE_MODELS) | ({"gan"} if key == backend_worker.GAN_COMBINATION else set())
        assert set(models) == expected, (backend, key, models)
        for name, result in models.items():
            assert result["policy"] == precision, (backend, key, name, result)
            if backend != "jax" or jit == "no-jit":  # on JAX the `jit` step is the one trained without it
                assert result["moved"] > 0 and all(np.isfinite(result["losses"])), (backend, key, name, result)
            # XLA when asked for, and always on JAX; PyTorch runs eagerly. Without `--jit`, TensorFlow
            # leaves it to Keras (off on a CPU, on with a GPU).
            if jit == "jit" or backend == "jax":
                assert result["jit_compile"] is True, (backend, key, name, result)
            elif backend == "torch":
                assert result["jit_compile"] is False, (backend, key, name, result)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_an_interrupted_run_resumes_to_the_uninterrupted_result(matrix, backend):
    found, _ = matrix[backend]
    resume = found["resume"]
    assert "error" not in resume, resume.get("error")
    assert resume["killed_status"] == "KILLED" and resume["resumed_status"] == "FINISHED"
    assert resume["loss_steps"] == list(range(len(resume["loss_steps"]))), "gaps or duplicates in the history"
    assert resume["epochs"][0] == resume["epochs"][1] == len(resume["loss_steps"]) > 2
    # Tolerances of the TensorFlow resume test (tests/test_faults.py).
    np.testing.assert_allclose(resume["test_loss"][0], resume["test_loss"][1], rtol=1e-4, atol=1e-5)
    assert resume["weight_difference"] <= 1e-4, resume


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_frozen_layers_stay_fixed_for_the_freeze_epochs_then_train(matrix, backend):
    tuned = matrix[backend][0]["finetune"]
    assert "error" not in tuned, tuned.get("error")
    *body, head = tuned["layers"]
    assert body and tuned["frozen"].split(",") == body
    frozen_epoch, unfrozen_epoch = tuned["moved"]
    # Epoch 1: only the new head trains; epoch 2: every layer, at a tenth of the learning rate.
    assert frozen_epoch == {**dict.fromkeys(body, False), head: True}, frozen_epoch
    assert all(unfrozen_epoch.values()), unfrozen_epoch
    assert tuned["learning_rate"] == pytest.approx(tuned["compiled_learning_rate"] * 0.1)
    assert all(np.isfinite(tuned["loss"])), tuned["loss"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_nan_loss_stops_the_fit_at_its_batch_and_keeps_the_last_good_checkpoint(matrix, backend):
    found, _ = matrix[backend]
    diverged = found["divergence"]
    assert "error" not in diverged, diverged.get("error")
    # Off TensorFlow the check runs on Keras' thread pool, so that reading the loss does not hold
    # the training thread between two steps; a thread that finishes out of order could only name
    # a later batch of the same epoch (every later running mean is NaN too).
    assert diverged["on_training_thread"] == [backend == "tensorflow"], diverged
    batches = "2" if backend == "tensorflow" else "[23]"
    assert re.fullmatch(rf"loss became nan at epoch 1, batch {batches}; .*", diverged["message"] or ""), diverged
    # Raised before the epoch's end: epoch 1 was neither checkpointed nor logged.
    assert diverged["logged"] == [0] and diverged["restored_epoch"] == 1 and diverged["restored_finite"], diverged


def test_every_card_lists_known_backends():
    for name in registry.names():
        card = registry.info(name)
        assert card.backends and set(card.backends) <= set(BACKENDS), name
        assert "Keras backends" in card.format()


def test_import_zoo_lets_pytorch_s_waiting_threads_sleep_unless_told_otherwise():
    # libgomp's spinning waiters made PyTorch steps many times slower on a busy CPU (README, Backends).
    code = "import os, sys, zoo; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    for preset, expected in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        if preset:
            env["OMP_WAIT_POLICY"] = preset
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        # Set before torch is imported, which is when OpenMP reads it.
        assert done.stdout.split() == [expected, "False"], done.stderr


# === Choosing the backend ===

MISSING = """
import os, sys
# Python's own way to make a module unimportable: importlib finds no spec for a None entry.
sys.modules["jax"] = None
sys.modules["torch"] = None
from zoo.cli import main
first = main(["train", "mlp", "--backend", "jax", "--epochs", "1"])
os.environ["KERAS_BACKEND"] = "torch"
second = main(["train", "mlp", "--epochs", "1"])
print(first, second, "keras" in sys.modules)
"""


def test_a_backend_that_is_not_installed_names_the_extra_to_install(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    env.pop("KERAS_BACKEND", None)
    result = subprocess.run(
        [sys.executable, "-c", MISSING], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert result.stdout.split() == ["2", "2", "False"], result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    for backend, line in zip(("jax", "torch"), lines):
        assert line.startswith(f"zoo: error: The {backend} backend is not installed"), line
        assert f'pip install "keras-technique-zoo[{backend}]"' in line
    # Refused before any run started.
    assert not (tmp_path / "mlflow.db").exists()


def test_an_unknown_backend_is_a_one_line_error(run_cli):
    status, _, err = run_cli("train", "mlp", "--backend", "numpy")
    assert status == 2 and err.count("\n") == 1 and "invalid choice: 'numpy'" in err


def test_a_loaded_keras_cannot_switch_backend(run_cli):
    import keras

    import zoo

    assert keras.backend.backend() == "tensorflow"
    with pytest.raises(zoo.ZooError, match="already loaded on the tensorflow backend .* KERAS_BACKEND=jax"):
        zoo.train("mlp", backend="jax", epochs=1)
    status, _, err = run_cli("train", "mlp", "--backend", "torch", "--epochs", "1")
    assert status == 2 and err.startswith("zoo: error: Keras is already loaded on the tensorflow backend")


def test_backend_option_trains_on_jax_and_the_run_records_it(tmp_path):
    import mlflow

    store = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KERAS_BACKEND", None)
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "train", "mlp", "--backend", "jax", "--epochs", "2", "--seed", "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(store)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.data.params["backend"] == "jax"
    assert run.data.tags["zoo.backend"] == "jax"
    # It learned: breast-cancer's majority class is 0.63 of the test rows.
    assert run.data.metrics["test_accuracy"] > 0.8
