"""Devices per backend: JAX's `keras.distribution.DataParallel` on two host devices gives the one-device
step; PyTorch trains on one device and says so for more.

JAX splits the CPU into host devices only before it initializes
(`XLA_FLAGS=--xla_force_host_platform_device_count=2`), hence fresh processes.
"""

import json
import os
import subprocess
import sys

from tests.test_devices import CASES

JAX_ENV = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}

ONE_STEP = """
import json, sys
import numpy as np
import keras
from zoo import training, registry

cases = json.loads(sys.argv[1])
two = keras.distribution.DataParallel(devices=keras.distribution.list_devices("cpu"))
found = {}
for name, (options, settings) in cases.items():
    recipe = training.get_recipe(name)
    config, overrides = training.make_config(recipe, options, settings)
    data = recipe.load_data(config)
    hyperparameters = {**recipe.model_overrides(config, data), **overrides}
    # One batch of 64 rows, 32 per device: no partial batch, so the sums differ only in order.
    x, y = data.train.select(slice(0, 64))  # `Arrays` on JAX (`training.from_arrays`)
    updates = []
    for distribution in (None, two):
        keras.distribution.set_distribution(distribution)
        keras.utils.set_random_seed(0)
        model = registry.get(recipe.model_name(config), **hyperparameters)
        # Plain SGD: the update is the gradient itself, so a gradient scaled by the device count shows.
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=model.loss)
        before = [w.copy() for w in model.get_weights()]
        model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
        updates.append([after - start for after, start in zip(model.get_weights(), before)])
        if distribution is not None:
            shards = {str(s.device) for w in model.trainable_weights for s in w.value.addressable_shards}
            found.setdefault("devices", sorted(shards))
    one, both = (np.concatenate([u.ravel() for u in side]) for side in updates)
    found[name] = {"difference": float(np.abs(both - one).max()), "scale": float(np.abs(one).max())}
print(json.dumps(found))
"""

WHOLE_RUN = """
import json, sys
import mlflow
from zoo import training
result = training.train("mlp", {"epochs": 2, "batch_size": 64, "devices": "all", "tracking_uri": sys.argv[1]},
                        {"dropout": "0"})
params = mlflow.MlflowClient().get_run(result.run_id).data.params
print(json.dumps({"metrics": result.metrics, "strategy": params["strategy"], "replicas": params["replicas"]}))
"""


def _python(code, *args, env=None, folder):
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_one_step_over_two_jax_devices_matches_one_device(tmp_path):
    cases = {name: CASES[name][:2] for name in ("mlp", "cnn")}
    found = _python(ONE_STEP, json.dumps(cases), env=JAX_ENV, folder=tmp_path)
    # The weights really lived on both devices.
    assert len(found.pop("devices")) == 2
    for name, result in found.items():
        assert result["scale"] > 0, name
        assert result["difference"] <= 1e-5 * result["scale"], (name, result)


def test_devices_all_on_jax_trains_over_data_parallel(tmp_path):
    found = _python(WHOLE_RUN, f"sqlite:///{tmp_path}/mlflow.db", env=JAX_ENV, folder=tmp_path)
    assert found["strategy"] == "DataParallel" and found["replicas"] == "2"
    # Majority class of the digits' test split is about 10 %; a model that learned is far above.
    assert found["metrics"]["test_accuracy"] > 0.5


TORCH_DEVICES = """
import json
from zoo.errors import ZooError
from zoo.training import devices
found = {}
for value in ("all", "gpu:0,1", "cpu:0,1", "auto"):
    try:
        found[value] = devices.describe(devices.select_strategy(value))
    except ZooError as error:
        found[value] = str(error)
print(json.dumps(found))
"""


def test_several_devices_on_torch_is_a_one_line_error(tmp_path):
    found = _python(TORCH_DEVICES, env={"KERAS_BACKEND": "torch"}, folder=tmp_path)
    assert found.pop("auto") == ["OneDevice", 1]
    for value, message in found.items():
        assert "\n" not in message and f"`devices={value}` on PyTorch" in message and "one device" in message


def test_multi_worker_tf_config_points_to_the_jax_path(tmp_path):
    config = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "train", "mlp", "--epochs", "1", "--tracking-uri", f"sqlite:///{tmp_path}/m.db"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CONFIG": json.dumps(config)},
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "TF_CONFIG" in lines[0] and "zoo launch" in lines[0], lines


NUMPY_BATCHES = """
import json, os
import numpy as np
import keras
from zoo import training

rows = 21
arrays = training.Arrays((np.arange(rows)[:, None], np.arange(rows)))
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=keras.distribution.list_devices("cpu")))
found = {}
batches, steps = training.training_batches(arrays, rows, 10, seed=3)
found["steps"] = [steps, len(batches)]
epochs = []
for _ in range(3):
    epochs.append([batches[i][1].tolist() for i in range(len(batches))])
    batches.on_epoch_end()
found["epochs"] = epochs
resumed, _ = training.training_batches(arrays, rows, 10, seed=3, initial_epoch=2)
found["resumed"] = [resumed[i][1].tolist() for i in range(len(resumed))]
evaluation = training.batch(training.Arrays((np.zeros((23, 1)), np.zeros(23))), 10, 2)
found["evaluation"] = [len(evaluation[i][1]) for i in range(len(evaluation))]
# Process 1 of 2 feeds the second half of each global batch.
os.environ.update(KERAS_DISTRIBUTION_JOB_ADDRESSES="127.0.0.1:1", KERAS_DISTRIBUTION_NUM_PROCESSES="2",
                  KERAS_DISTRIBUTION_PROCESS_ID="1")
share, _ = training.training_batches(arrays, rows, 10, seed=3)
found["share"] = [share[i][1].tolist() for i in range(len(share))]
print(json.dumps(found))
"""


def test_numpy_batches_split_evenly_over_jax_devices_and_resume_exactly(tmp_path):
    found = _python(NUMPY_BATCHES, env=JAX_ENV, folder=tmp_path)
    # 21 rows in batches of 10 over 2 devices: the last batch (1 row) cannot split, so it goes.
    assert found["steps"] == [2, 2]
    for epoch in found["epochs"]:
        assert [len(part) for part in epoch] == [10, 10] and len(set(sum(epoch, []))) == 20
    assert found["epochs"][0] != found["epochs"][1]
    assert found["resumed"] == found["epochs"][2]
    # 23 evaluation rows: the last batch of 3 keeps 2.
    assert found["evaluation"] == [10, 10, 2]
    assert found["share"] == [part[5:] for part in found["epochs"][0]]
