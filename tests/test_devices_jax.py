"""Devices per backend: JAX's `keras.distribution.DataParallel` on two host devices gives the one-device
step; PyTorch trains on one device and says so for more.

JAX splits the CPU into host devices only before it initializes
(`XLA_FLAGS=--xla_force_host_platform_device_count=2`), hence fresh processes.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.test_devices import CASES, FAST

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
    # One batch of 63 rows, which 2 devices do not divide: the pipeline pads it to 64 with a
    # weight-0 copy and weighs the real rows 64/63, so the step must be the unpadded one's.
    rows = training.Arrays(data.train.select(slice(0, 63)))  # `Arrays` on JAX (`training.from_arrays`)
    updates = []
    for distribution in (None, two):
        keras.distribution.set_distribution(distribution)
        keras.utils.set_random_seed(0)
        model = registry.get(recipe.model_name(config), **hyperparameters)
        # Plain SGD: the update is the gradient itself, so a gradient scaled by the device count shows.
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=model.loss)
        before = [w.copy() for w in model.get_weights()]
        batches, steps = training.training_batches(rows, 63, 64, seed=0)
        model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
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
    # Per-step targets (a label per video frame, masked steps): the padding's sample weights must
    # broadcast against Keras' per-step mask (they are shaped (rows, 1) for it).
    cases["gru"] = ({**FAST, "mode": "many_to_many", "videos": 64}, {"dropout": "0", "units": "16"})
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
import tensorflow as tf
from zoo import training

rows = 21
arrays = training.Arrays((np.arange(rows)[:, None], np.arange(rows)))
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=keras.distribution.list_devices("cpu")))
found = {}
batches, steps = training.training_batches(arrays, rows, 10, seed=3)
found["steps"] = [steps, len(batches)]
epochs, weights = [], []
for _ in range(3):
    epochs.append([batches[i][1].tolist() for i in range(len(batches))])
    weights.append([batches[i][2].tolist() for i in range(len(batches))])
    batches.on_epoch_end()
found["epochs"], found["weights"] = epochs, weights
resumed, _ = training.training_batches(arrays, rows, 10, seed=3, initial_epoch=2)
found["resumed"] = [resumed[i][1].tolist() for i in range(len(resumed))]
evaluation = training.batch(training.Arrays((np.zeros((23, 1)), np.arange(23))), 10, 2)
found["evaluation"] = [evaluation[i][1].tolist() for i in range(len(evaluation))]
# The same rule on tf.data (tfds, streamed files): 23 rows in batches of 10, no weights lost.
tf_batches = training.batch(tf.data.Dataset.from_tensor_slices((np.zeros((23, 1)), np.arange(23))), 10, 2)
found["tf_evaluation"] = [(y.tolist(), w.tolist()) for _, y, w in tf_batches.as_numpy_iterator()]
# A table streamed off TensorFlow (`Stream`, slices of 4 rows in file order) follows the same rule.
def stream_pass(epoch):
    return ((np.arange(s, min(s + 4, rows))[:, None], np.arange(s, min(s + 4, rows))) for s in range(0, rows, 4))
streamed, _ = training.training_batches(training.Stream(stream_pass, rows), rows, 10, seed=3)
found["stream"] = [(streamed[i][1].tolist(), streamed[i][2].tolist()) for i in range(len(streamed))]
# Process 1 of 2 feeds the second half of each (padded) global batch.
os.environ.update(KERAS_DISTRIBUTION_JOB_ADDRESSES="127.0.0.1:1", KERAS_DISTRIBUTION_NUM_PROCESSES="2",
                  KERAS_DISTRIBUTION_PROCESS_ID="1")
share, _ = training.training_batches(arrays, rows, 10, seed=3)
found["share"] = [share[i][1].tolist() for i in range(len(share))]
tf_share = training.batch(tf.data.Dataset.from_tensor_slices((np.zeros((23, 1)), np.arange(23))), 10, 2)
found["tf_share"] = [y.tolist() for _, y, _ in tf_share.as_numpy_iterator()]
print(json.dumps(found))
"""


def test_numpy_and_tf_data_batches_pad_to_the_jax_devices_and_resume_exactly(tmp_path):
    found = _python(NUMPY_BATCHES, env=JAX_ENV, folder=tmp_path)
    # 21 rows in batches of 10 over 2 devices: the last batch (1 row) is padded with a copy of
    # weight 0, the real row weighing 2, so every row is seen once per epoch.
    assert found["steps"] == [3, 3]
    for epoch, weights in zip(found["epochs"], found["weights"]):
        assert [len(part) for part in epoch] == [10, 10, 2] and epoch[2][0] == epoch[2][1]
        assert sorted(sum(epoch, [])[:21]) == list(range(21))
        assert weights == [[1.0] * 10, [1.0] * 10, [2.0, 0.0]]
    assert found["epochs"][0] != found["epochs"][1]
    assert found["resumed"] == found["epochs"][2]
    # 23 evaluation rows: the last batch of 3 is padded to 4 (weights 4/3, 4/3, 4/3, 0).
    assert found["evaluation"] == [list(range(10)), list(range(10, 20)), [20, 21, 22, 20]]
    assert [y for y, _ in found["tf_evaluation"]] == found["evaluation"]
    assert found["tf_evaluation"][2][1] == pytest.approx([4 / 3, 4 / 3, 4 / 3, 0.0])
    assert found["stream"] == [[list(range(10)), [1.0] * 10], [list(range(10, 20)), [1.0] * 10], [[20, 20], [2.0, 0.0]]]
    assert found["share"] == [part[len(part) // 2 :] for part in found["epochs"][0]]
    assert found["tf_share"] == [part[len(part) // 2 :] for part in found["evaluation"]]


# Also run as two processes of one device each (tests/test_launch.py), where `fed` gives each
# process its share of every batch, as the zoo's pipelines do; the one-device step is then each
# process' own, without a distribution.
CUSTOM_STEPS = """
import json
import numpy as np
import keras
import zoo
from zoo.datasets import images
from zoo.training import processes

processes.initialize_from_env()
# Each process feeds its own share (`fed`): Keras shards only a tf.data.Dataset itself.
two = keras.distribution.DataParallel(devices=keras.distribution.list_devices("cpu"), auto_shard_dataset=False)
data = images.load("digits")
x, y = data.x_train[:6], data.y_train[:6]
binary = (np.random.default_rng(0).random((24, 12)) < 0.4).astype("float32")


# (arrays, batch size) this process feeds `fit`: all of them, or its share of each batch.
def fed(distribution, arrays, batch):
    if distribution is None or processes.count() == 1:
        return arrays, batch
    share = batch // processes.count()
    start = share * processes.index()
    parts = [a.reshape(-1, batch, *a.shape[1:])[:, start : start + share] for a in arrays]
    return [p.reshape(-1, *p.shape[2:]) for p in parts], share


def gan(distribution, weights):
    keras.distribution.set_distribution(distribution)
    model = zoo.get("gan", num_classes=10, dropout=0.0, generator_filters=8, discriminator_filters=8, latent_dim=8)
    # SGD with momentum: its first update is proportional to the gradient, so a wrongly scaled loss shows.
    model.compile(generator_optimizer=keras.optimizers.SGD(0.5, momentum=0.5),
                  discriminator_optimizer=keras.optimizers.SGD(0.5, momentum=0.5), label_smoothing=0.1)
    if weights is not None:
        model.set_weights(weights)
    before = model.get_weights()
    (xs, ys), batch = fed(distribution, (x, y), 6)
    history = model.fit(xs, ys, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    shards = {device for w in model.trainable_weights for device in w.value.sharding.device_set}
    return before, [a - b for a, b in zip(model.get_weights(), before)], history.history, len(shards)


def rbm(distribution, persistent, updates):
    keras.distribution.set_distribution(distribution)
    model = zoo.get("rbm", input_shape=(12,), hidden_units=5, persistent=persistent, chains=3, k=2,
                    momentum=0.5, weight_decay=0.01, learning_rate=0.1, updates_per_batch=updates, seed=0)
    (rows,), batch = fed(distribution, (binary,), 8)
    history = model.fit(rows, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    values = [np.asarray(v) for v in (model.W, model.visible_bias, model.hidden_bias, model.chain_hiddens)]
    return values, history.history["loss"]


def relative(one, other):
    return max(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-12)) for a, b in zip(one, other)
               if np.abs(a).max() > 0)


found = {}
start, single, single_logs, _ = gan(None, None)
_, double, double_logs, devices = gan(two, start)
found["gan"] = {"devices": devices, "worst_relative": relative(single, double),
                "moved": float(max(np.abs(u).max() for u in single)),
                "losses": [{k: v[0] for k, v in logs.items()} for logs in (single_logs, double_logs)]}
for persistent, updates in ((True, 2), (False, 1)):
    (one, one_loss), (both, both_loss) = rbm(None, persistent, updates), rbm(two, persistent, updates)
    found[f"rbm-{persistent}-{updates}"] = {"difference": float(max(np.abs(a - b).max() for a, b in zip(one, both))),
                                           "moved": float(np.abs(one[0]).mean()), "losses": [one_loss, both_loss]}
print(json.dumps(found))
"""


def test_one_gan_and_rbm_step_over_two_jax_devices_matches_one_device(tmp_path):
    check_custom_steps(_python(CUSTOM_STEPS, env=JAX_ENV, folder=tmp_path))


def check_custom_steps(found):
    """Assert that CUSTOM_STEPS found the GAN's and the RBM's one-device steps over 2 devices."""
    gan = found.pop("gan")
    assert gan["devices"] == 2 and gan["moved"] > 0
    # Every weight (the networks', their averages', batch-norm statistics) within float rounding:
    # a loss averaged over one device's rows, or noise drawn per device, would show far above this.
    assert gan["worst_relative"] < 1e-3, gan
    single, double = gan["losses"]
    assert set(single) == {"generator_loss", "discriminator_loss"}
    for key, value in single.items():
        assert double[key] == pytest.approx(value, rel=1e-4), gan
    for case, rbm in found.items():
        assert rbm["moved"] > 0.02, case  # the weights start at about 0.008
        assert rbm["difference"] < 1e-6, (case, rbm)
        np.testing.assert_allclose(rbm["losses"][0], rbm["losses"][1], rtol=1e-5, atol=1e-6)
