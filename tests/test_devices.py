"""Every recipe under MirroredStrategy on two logical CPUs gives the one-device result.

The CPU is split in fresh processes (the split must precede TensorFlow's initialization). Sources of
randomness that differ per replica by design (dropout masks, augmentation) are switched off, so the
only difference left is the order of floating-point sums.
"""

import json
import math
import os
import subprocess
import sys

import pytest

from tests.conftest import one_recipe_per_module
from tests.logical_devices import run_with_logical_cpus
from zoo import training
from zoo.errors import ZooError

# recipe -> (options, settings, metric compared, relative tolerance). The whole runs below check the
# run loop's multi-device path (strategy, replicas, a finished run with the one-device figure to about
# 1-5 %); exactness is checked one step at a time: every Functional recipe's model in
# test_one_step_on_two_replicas_matches_one_device_for_every_functional_recipe, the GAN and the RBM
# in their own tests. Whole runs differ more than one step does: an epoch ends with a partial batch
# that splits unevenly over the replicas (e.g. 21 + 20 rows), whose loss Keras averages per replica,
# and Adam and adversarial training amplify those float differences over the epoch.
FAST = {"epochs": 1, "batch_size": 64}
CASES = {
    "mlp": (FAST, {"dropout": "0"}, "test_loss", 1e-2),
    "cnn": (FAST, {"dropout": "0", "translation": "0", "filters": "8,16", "dense_units": "32"}, "test_loss", 1e-2),
    "rnn": (FAST, {"dropout": "0", "units": "16"}, "test_loss", 3e-2),
    "lstm": (FAST, {"dropout": "0", "units": "16"}, "test_loss", 3e-2),
    "gru": (FAST, {"dropout": "0", "units": "16"}, "test_loss", 3e-2),
    # Adversarial training amplifies float differences more than plain descent.
    "gan": (
        {**FAST, "samples": 100, "judge_epochs": 2},
        {"generator_filters": "8", "discriminator_filters": "8", "latent_dim": "8"},
        "test_frechet_distance",
        5e-2,
    ),
    "rbm": (
        {**FAST, "jit": False, "samples": 4, "gibbs_steps": 5},
        {"hidden_units": "16"},
        "test_pseudo_likelihood",
        3e-2,
    ),
    "ocr": (
        {**FAST, "lines": (256, 64, 64), "worst_lines": 0},
        {"filters": "8,16", "rnn_units": "16", "dense_units": "16", "dropout": "0"},
        "test_loss",
        3e-2,
    ),
}


def device_cases():
    """A case for every registered recipe: CASES trims a listed recipe's sizes and randomness; any
    other (a new recipe) runs one fast epoch with its defaults, compared on the metric that ranks
    its runs (else test_loss) at the loosest tolerance above, so adding a recipe edits no test."""
    cases = {}
    for name in training.recipe_names():
        metric = training.get_recipe(name).ranking_metric() or "test_loss"
        cases[name] = CASES.get(name, (FAST, {}, metric, 5e-2))
    return cases


SCRIPT = """
import json, sys
from zoo import training
import mlflow
cases = json.loads(sys.argv[1])
results = {}
for name, (options, settings) in cases.items():
    result = training.train(name, {**options, "devices": sys.argv[2], "tracking_uri": sys.argv[3],
                                 "experiment": "devices-" + sys.argv[2]}, settings)
    params = mlflow.MlflowClient().get_run(result.run_id).data.params
    results[name] = {"metrics": result.metrics, "replicas": params["replicas"], "strategy": params["strategy"]}
print(json.dumps(results))
"""


def _start(cases, devices, store, logical_cpus, cache, folder):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "ZOO_LOGICAL_CPUS": str(logical_cpus), "ZOO_CACHE_DIR": cache}
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, json.dumps(cases), devices, store],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # MLflow writes a SQLite store's artifacts to ./mlruns: in the test's folder, not the checkout.
        cwd=folder,
    )


def _results(process):
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-4000:]
    return json.loads(out.strip().splitlines()[-1])


# The recipes whose whole run is also compared with one device (the others' exactness is checked one
# step at a time, below and in their own tests): a Functional model and a custom training step.
COMPARED = ("mlp", "rbm")


def _check_two_devices(found, cases):
    for name, (_, _, metric, _) in cases.items():
        assert found[name]["strategy"] == "MirroredStrategy" and found[name]["replicas"] == "2", name
        assert math.isfinite(found[name]["metrics"][metric]), name


def test_two_logical_devices_match_one_device(tmp_path):
    # A Functional recipe and a custom training step, whole, against one device; every recipe's
    # step is compared exactly below, and the other recipes' whole runs are the large test after.
    every = {name: case for name, case in device_cases().items() if name in COMPARED}
    cases = {name: case[:2] for name, case in every.items()}
    # Side by side: each process keeps about one core busy.
    cache = str(tmp_path / "cache")
    mirrored = _start(cases, "all", f"sqlite:///{tmp_path}/two-devices.db", 2, cache, tmp_path)
    single = _start(cases, "auto", f"sqlite:///{tmp_path}/one-device.db", 1, cache, tmp_path)
    mirrored, single = _results(mirrored), _results(single)
    _check_two_devices(mirrored, every)
    for name, (_, _, metric, rtol) in every.items():
        assert single[name]["replicas"] == "1", name
        two, one = mirrored[name]["metrics"][metric], single[name]["metrics"][metric]
        assert two == pytest.approx(one, rel=rtol), f"{name}: {metric} {two} on 2 devices, {one} on 1"


@pytest.mark.large
def test_every_recipe_runs_whole_on_two_logical_devices(tmp_path):
    # One recipe per module (`one_recipe_per_module`): each one's step is compared exactly below.
    known = device_cases()
    every = {name: known[name] for name in one_recipe_per_module() if name not in COMPARED}
    cases = {name: case[:2] for name, case in every.items()}
    found = _results(_start(cases, "all", f"sqlite:///{tmp_path}/mlflow.db", 2, str(tmp_path / "cache"), tmp_path))
    _check_two_devices(found, every)


ONE_STEP = """
import numpy as np
import tensorflow as tf
import keras
from zoo import training, registry

# One strategy for every case: a second MirroredStrategy in the process reuses collective keys.
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
found = {}
for name, (options, settings) in json.loads(CASES).items():
    recipe = training.get_recipe(name)
    config, overrides = training.make_config(recipe, options, settings)
    data = recipe.load_data(config)
    hyperparameters = {**recipe.model_overrides(config, data), **overrides}
    # One batch of 64 rows, 32 per replica: no partial batch, so the sums differ only in order.
    batch = tf.data.Dataset.from_tensors(next(iter(data.train.batch(64))))
    updates = []
    for strategy in (tf.distribute.get_strategy(), mirrored):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = registry.get(recipe.model_name(config), **hyperparameters)
            # Plain SGD: the update is the gradient itself. Adam's first step is about lr * sign(g),
            # which would hide a gradient scaled by the replica count.
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss=model.loss)
        before = [w.copy() for w in model.get_weights()]
        model.fit(batch, epochs=1, verbose=0)
        updates.append([after - start for after, start in zip(model.get_weights(), before)])
    one, two = (np.concatenate([u.ravel() for u in side]) for side in updates)
    found[name] = {"difference": float(np.abs(two - one).max()), "scale": float(np.abs(one).max())}
print(json.dumps(found))
"""


def test_one_step_on_two_replicas_matches_one_device_for_every_functional_recipe():
    # The GAN and the RBM have their own one-step tests (tests/test_gan.py, tests/test_rbm.py).
    cases = {name: CASES[name][:2] for name in ("mlp", "cnn", "rnn", "lstm", "gru") if name in training.recipe_names()}
    found = run_with_logical_cpus(f"CASES = {json.dumps(json.dumps(cases))}\n" + ONE_STEP)
    for name, result in found.items():
        assert result["scale"] > 0, name
        assert result["difference"] <= 1e-5 * result["scale"], (name, result)


def test_bad_devices_value_is_a_one_line_error():
    from zoo.training import devices

    for value, message in (
        ("tpu", "Bad `devices` value 'tpu'"),
        ("gpu:0", "no GPU is visible"),
        ("cpu:7", "CPU 7 does not exist"),
    ):
        with pytest.raises(ZooError, match=message):
            devices.select_strategy(value)


def test_batch_size_must_split_evenly_over_replicas(tmp_path):
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "ZOO_LOGICAL_CPUS": "2",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
    }
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "train", "mlp", "--devices", "all", "--batch-size", "5"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "zoo: error: --batch-size 5 does not split evenly over 2 replicas; use a multiple of 2."
    )
