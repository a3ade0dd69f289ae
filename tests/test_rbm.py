"""The RBM: scikit-learn's formulas and updates on the same weights and noise, training state that
survives a save, the same update on two replicas as on one, the recipe, and bad input."""

import keras
import numpy as np
import pytest

import zoo
from tests.conftest import running_runs
from tests.logical_devices import run_with_logical_cpus
from zoo.models import rbm as rbm_module


def _random_binary(rows, columns, seed=0, p=0.4):
    return (np.random.default_rng(seed).random((rows, columns)) < p).astype("float32")


def _set_weights(model, seed=1):
    rng = np.random.default_rng(seed)
    model.W.assign(rng.normal(0, 0.5, model.W.shape).astype("float32"))
    model.visible_bias.assign(rng.normal(0, 0.5, model.visible_bias.shape).astype("float32"))
    model.hidden_bias.assign(rng.normal(0, 0.5, model.hidden_bias.shape).astype("float32"))


def _sklearn_twin(model, chains=None):
    """A fitted `BernoulliRBM` holding the model's weights (and chains), in float64."""
    from sklearn.neural_network import BernoulliRBM

    twin = BernoulliRBM(
        n_components=model.hidden_units, learning_rate=model.learning_rate, batch_size=model.chains, random_state=0
    )
    twin.components_ = np.asarray(model.W, dtype="float64").T.copy()
    twin.intercept_hidden_ = np.asarray(model.hidden_bias, dtype="float64").copy()
    twin.intercept_visible_ = np.asarray(model.visible_bias, dtype="float64").copy()
    twin.h_samples_ = np.asarray(model.chain_hiddens if chains is None else chains, dtype="float64").copy()
    twin.n_features_in_ = model.visible_units
    twin._n_features_out = model.hidden_units
    return twin


class _Uniforms:
    """Stands in for scikit-learn's RandomState: hands out given uniform draws in order."""

    def __init__(self, draws):
        self.draws = list(draws)

    def uniform(self, size):
        draw = np.asarray(self.draws.pop(0), dtype="float64")
        assert draw.shape == tuple(size)
        return draw


def _step_noise(model, step=0):
    """The uniforms the model's `step`-th training step draws (counter-based, so reproducible)."""
    key = keras.ops.convert_to_tensor(np.array([model.seed, step], dtype="uint32"))
    noise = model._draw_noise(key, rbm_module._layout(10, model.updates_per_batch), model.updates_per_batch)
    return {name: np.asarray(value) for name, value in noise.items()}


# === Formulas against scikit-learn ===


def test_free_energy_and_pseudo_likelihood_match_sklearn_on_the_same_weights():
    model = zoo.get("rbm", input_shape=(12,), hidden_units=7)
    _set_weights(model)
    twin = _sklearn_twin(model)
    x = _random_binary(40, 12)

    np.testing.assert_allclose(model.free_energy(x), twin._free_energy(x.astype("float64")), rtol=1e-5, atol=1e-4)
    # score_samples flips one unit per row, drawn by RandomState(random_state): hand the same ones over.
    flips = np.random.RandomState(0).randint(0, 12, 40)
    np.testing.assert_allclose(
        model.pseudo_likelihood(x, flip=flips), twin.score_samples(x.astype("float64")), rtol=1e-5, atol=1e-4
    )
    np.testing.assert_allclose(model.transform(x), twin.transform(x.astype("float64")), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), model.transform(x))


def test_reconstruction_and_samples_have_the_input_shape_and_are_probabilities():
    model = zoo.get("rbm", input_shape=(4, 3, 1), hidden_units=5)
    _set_weights(model)
    x = _random_binary(6, 12).reshape(6, 4, 3, 1)
    v = x.reshape(6, 12)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    W, b, c = (np.asarray(t) for t in (model.W, model.visible_bias, model.hidden_bias))
    expected = sigmoid(sigmoid(v @ W + c) @ W.T + b).reshape(x.shape)
    np.testing.assert_allclose(model.reconstruct(x), expected, rtol=1e-5, atol=1e-6)
    samples = model.sample(3, steps=5, seed=4)
    assert samples.shape == (3, 4, 3, 1) and 0.0 <= samples.min() and samples.max() <= 1.0
    np.testing.assert_array_equal(samples, model.sample(3, steps=5, seed=4))
    assert not np.array_equal(samples, model.sample(3, steps=5, seed=5))
    gibbs = model.gibbs(x)
    assert gibbs.shape == x.shape and set(np.unique(gibbs)) <= {0.0, 1.0}


# === Updates against scikit-learn's and the textbook's ===


@pytest.mark.parametrize("updates", [1, 2])
def test_persistent_cd_steps_equal_sklearn_fit_given_the_same_uniforms(updates):
    model = zoo.get(
        "rbm",
        input_shape=(12,),
        hidden_units=7,
        chains=10 // updates,
        learning_rate=0.1,
        updates_per_batch=updates,
        seed=3,
    )
    _set_weights(model)
    twin = _sklearn_twin(model)
    noise = _step_noise(model)
    x = _random_binary(10, 12, seed=5)

    model.train_on_batch(x)
    for j, rows in enumerate(np.split(x, updates)):
        # sklearn's `_fit` draws the negative visibles, then the new chain states.
        twin._fit(rows.astype("float64"), _Uniforms([noise["visible"][j, 0], noise["chain"][j]]))
    np.testing.assert_allclose(np.asarray(model.W).T, twin.components_, atol=1e-5)
    np.testing.assert_allclose(np.asarray(model.hidden_bias), twin.intercept_hidden_, atol=1e-5)
    np.testing.assert_allclose(np.asarray(model.visible_bias), twin.intercept_visible_, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(model.chain_hiddens), twin.h_samples_)


def test_cd_k_with_momentum_and_weight_decay_follows_the_textbook_update():
    k, lr, momentum, decay = 3, 0.05, 0.5, 0.01
    model = zoo.get(
        "rbm",
        input_shape=(12,),
        hidden_units=7,
        k=k,
        persistent=False,
        learning_rate=lr,
        momentum=momentum,
        weight_decay=decay,
        seed=3,
    )
    _set_weights(model)
    W, b, c = (np.asarray(t, dtype="float64") for t in (model.W, model.visible_bias, model.hidden_bias))
    velocities = [np.zeros_like(W), np.zeros_like(b), np.zeros_like(c)]
    x = _random_binary(10, 12, seed=6).astype("float64")
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731

    for step in range(2):
        noise = _step_noise(model, step)
        h_data = sigmoid(x @ W + c)
        h = (noise["start"][0] < h_data).astype("float64")
        for s in range(k):
            v = (noise["visible"][0, s] < sigmoid(h @ W.T + b)).astype("float64")
            if s < k - 1:
                h = (noise["hidden"][0, s] < sigmoid(v @ W + c)).astype("float64")
        h_model = sigmoid(v @ W + c)
        gradients = [(x.T @ h_data - v.T @ h_model) / 10 - decay * W, (x - v).mean(0), (h_data - h_model).mean(0)]
        velocities = [momentum * vel + lr * g for vel, g in zip(velocities, gradients)]
        W, b, c = W + velocities[0], b + velocities[1], c + velocities[2]
        model.train_on_batch(x.astype("float32"))

    np.testing.assert_allclose(np.asarray(model.W), W, atol=1e-5)
    np.testing.assert_allclose(np.asarray(model.visible_bias), b, atol=1e-5)
    np.testing.assert_allclose(np.asarray(model.hidden_bias), c, atol=1e-5)
    np.testing.assert_allclose(np.asarray(model.velocities[0]), velocities[0], atol=1e-5)


def test_training_raises_the_pseudo_likelihood_of_digits():
    from zoo.datasets import images

    x = (images.digits().x_train > 0.5).astype("float32")
    model = zoo.get("rbm", input_shape=(8, 8, 1), updates_per_batch=50, seed=0)
    before = model.pseudo_likelihood(x, seed=0).mean()
    history = model.fit(x, batch_size=500, epochs=3, verbose=0)
    after = model.pseudo_likelihood(x, seed=0).mean()
    assert after > before + 10, (before, after)
    assert history.history["reconstruction_error"][-1] < history.history["reconstruction_error"][0]


def test_save_load_keeps_the_training_state_and_training_continues_identically(tmp_path):
    import keras

    model = zoo.get("rbm", input_shape=(12,), hidden_units=5, momentum=0.5, updates_per_batch=2, seed=2)
    x = _random_binary(20, 12)
    model.fit(x, batch_size=10, epochs=1, verbose=0)
    path = tmp_path / "rbm.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(np.asarray(loaded.chain_hiddens), np.asarray(model.chain_hiddens))
    for one in (model, loaded):
        one.fit(x, batch_size=10, epochs=1, verbose=0, shuffle=False)
    for name in ("W", "visible_bias", "hidden_bias", "chain_hiddens", "noise_state"):
        np.testing.assert_array_equal(np.asarray(getattr(loaded, name)), np.asarray(getattr(model, name)))


def test_two_replicas_make_the_same_updates_as_one_device():
    result = run_with_logical_cpus("""
import json, numpy as np, tensorflow as tf
import zoo
x = (np.random.default_rng(0).random((30, 12)) < 0.4).astype("float32")
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
out = {}
for persistent, updates in ((True, 2), (False, 1)):
    weights = []
    for strategy in (tf.distribute.get_strategy(), mirrored):
        data = x[:24]
        if updates == 2 and strategy is not mirrored:
            # Two replicas split each batch of 8 in halves, and each half in two minibatches: update j
            # averages minibatch j of both halves. Order one device's batch the same way.
            data = data.reshape(-1, 2, 2, 2, 12).transpose(0, 2, 1, 3, 4).reshape(-1, 12)
        if updates == 1:
            data = x  # 30 rows: a last batch of 6, split 3 + 3
        with strategy.scope():
            model = zoo.get("rbm", input_shape=(12,), hidden_units=5, persistent=persistent, chains=3, k=2,
                            momentum=0.5, weight_decay=0.01, learning_rate=0.1, updates_per_batch=updates)
        history = model.fit(data, batch_size=8, epochs=1, shuffle=False, verbose=0)
        weights.append([np.asarray(v) for v in (model.W, model.visible_bias, model.hidden_bias,
                                                 model.chain_hiddens)] + [history.history["loss"]])
    out[f"{persistent}-{updates}"] = {
        "differences": [float(np.max(np.abs(a - b))) for a, b in zip(weights[0][:4], weights[1][:4])],
        "moved": float(np.abs(weights[0][0]).mean()),
        "losses": [weights[0][4], weights[1][4]],
    }
print(json.dumps(out))
""")
    for case, found in result.items():
        assert found["moved"] > 0.02, case  # the weights start at about 0.008
        assert max(found["differences"]) < 1e-6, (case, found)
        np.testing.assert_allclose(found["losses"][0], found["losses"][1], rtol=1e-5, atol=1e-6)


# === The recipe ===


def test_recipe_logs_per_epoch_metrics_figures_and_the_downstream_accuracies(run_cli, tracking_uri):
    import mlflow

    status, out, err = run_cli(
        "train",
        "rbm",
        "--epochs",
        "2",
        "--batch-size",
        "1000",
        "--no-jit",
        "--samples",
        "4",
        "--gibbs-steps",
        "10",
        "--set",
        "hidden_units=16",
    )
    assert status == 0, err
    run = mlflow.search_runs(experiment_names=["zoo"], output_format="list")[0]
    client = mlflow.MlflowClient()
    for name in (
        "loss",
        "pseudo_likelihood",
        "reconstruction_error",
        "val_pseudo_likelihood",
        "val_reconstruction_error",
    ):
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [0, 1], name
    metrics = run.data.metrics
    # Floor: the untrained RBM of the same size and seed, scored by the recipe's own evaluation on
    # the same test rows, is about -44 nats; 2 epochs reach about -25. Require a 10-nat gain.
    from zoo import training

    recipe = training.get_recipe("rbm")
    config, _ = training.make_config(recipe, {"batch_size": 1000, "classifier": False})
    data = recipe.load_data(config)
    untrained = zoo.get("rbm", **recipe.model_overrides(config, data), hidden_units=16)
    baseline = recipe.evaluate(untrained, data, config).metrics["test_pseudo_likelihood"]
    print(f"rbm test pseudo-likelihood {metrics['test_pseudo_likelihood']:.2f}, untrained {baseline:.2f}")
    assert metrics["test_pseudo_likelihood"] >= baseline + 10, (metrics["test_pseudo_likelihood"], baseline)
    # The run scored the same untrained twin itself (`zoo.learned`, zoo.training.baselines).
    assert abs(metrics["test_baseline_pseudo_likelihood"] - baseline) < 1.0, metrics["test_baseline_pseudo_likelihood"]
    assert run.data.tags["zoo.learned"] == "true"
    assert metrics["test_pseudo_likelihood"] < 0
    assert 0.5 < metrics["test_accuracy"] <= 1 and 0.5 < metrics["test_raw_accuracy"] <= 1
    assert run.data.params["model.updates_per_batch"] == "100"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"filters.png", "samples.png", "reconstructions.png", "downstream_classifier.json"} <= artifacts


def test_recipe_trains_on_a_binary_csv_such_as_a_user_item_matrix(run_cli, tracking_uri, tmp_path):
    import mlflow

    rng = np.random.default_rng(0)
    taste = rng.integers(0, 2, 80)
    items = np.where(taste[:, None] == 1, rng.random((80, 6)) < 0.8, rng.random((80, 6)) < 0.1).astype(int)
    lines = ["user," + ",".join(f"item{i}" for i in range(6))]
    lines += [f"u{row}," + ",".join(map(str, items[row])) for row in range(80)]
    path = tmp_path / "likes.csv"
    path.write_text("\n".join(lines) + "\n")

    status, out, err = run_cli(
        "train",
        "rbm",
        "--data",
        path,
        "--drop",
        "user",
        "--epochs",
        "1",
        "--batch-size",
        "20",
        "--minibatch-size",
        "5",
        "--samples",
        "4",
        "--gibbs-steps",
        "5",
        "--set",
        "hidden_units=2",
    )
    assert status == 0, err
    run = mlflow.search_runs(experiment_names=["zoo"], output_format="list")[0]
    assert run.data.params["data.visible_units"] == "6"
    # The recipe's own default, XLA (`jit=True`), which the other recipe-level runs here turn off.
    assert run.data.params["jit"] == "True"
    assert "test_accuracy" not in run.data.metrics and "test_pseudo_likelihood" in run.data.metrics


def test_mnist_comes_through_the_image_loader(tmp_path):
    import tensorflow_datasets as tfds

    from zoo import training

    recipe = training.get_recipe("rbm")
    config, _ = training.make_config(recipe, {"dataset": "mnist", "data_dir": str(tmp_path)})
    with tfds.testing.mock_data(num_examples=16):
        data = recipe.load_data(config)
    assert recipe.model_overrides(config, data)["input_shape"] == (28, 28, 1)
    pixels = next(iter(data.train)).numpy()
    assert pixels.shape == (28, 28, 1) and set(np.unique(pixels)) <= {0.0, 1.0}


# === Bad input: one line, exit 2, no run left RUNNING ===


def _csv(tmp_path, text):
    path = tmp_path / "table.csv"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "table, extra, pattern",
    [
        ("a,b\n0,1\n2,0\n1,1\n", (), r"row 3, column 'a' holds 2, outside \[0, 1\]"),
        ("a,b\n0,1\n-0.5,0\n", (), r"holds -0.5, outside \[0, 1\]"),
        ("a,name\n0,x\n1,y\n", (), r"Column 'name' .* is not numeric .*--drop name"),
        ("a,b\n0,1\n,0\n", (), r"missing value at row 3, column 'a'"),
        ("a,b\n0,1\n1,0\n", ("--drop", "c"), r"Column 'c' is not in"),
    ],
)
def test_bad_tables_fail_with_one_line(run_cli, tracking_uri, tmp_path, table, extra, pattern):
    import re

    status, out, err = run_cli("train", "rbm", "--data", _csv(tmp_path, table), *extra)
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and re.search(pattern, err), err
    assert running_runs(tracking_uri) == []


@pytest.mark.parametrize(
    "setting, pattern",
    [
        ("k=0", r"'k' \(Gibbs steps per update\) must be at least 1. Received: k=0"),
        ("hidden_units=0", r"'hidden_units' must be at least 1.*Received: hidden_units=0"),
        ("momentum=1.5", r"'momentum' must be in \[0.0, 1.0\)"),
    ],
)
def test_bad_hyperparameters_fail_with_one_line(run_cli, tracking_uri, setting, pattern):
    import re

    status, out, err = run_cli("train", "rbm", "--epochs", "1", "--set", setting)
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and re.search(pattern, err), err
    assert running_runs(tracking_uri) == []
