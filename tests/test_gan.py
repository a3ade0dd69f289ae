"""GAN: the networks, the adversarial step (also on two devices), saving mid-training, the recipe,
`zoo generate`, and bad input."""

import os
import re

import keras
import numpy as np
import pytest

import zoo
from tests.conftest import running_runs
from tests.logical_devices import run_with_logical_cpus
from zoo.models.gan import GAN

# Tiny networks: the tests check behaviour, the benchmark checks quality.
SMALL = {"generator_filters": 8, "discriminator_filters": 8, "latent_dim": 8}
# The recipe at its smallest: a few epochs of tiny networks, a judge trained for 2 epochs. Learning
# rates of 1e-3 and batches of 32 let 3 epochs move the samples measurably away from an untrained
# generator's (Frechet distance about 10.7 against 17.8; the defaults, 2 epochs: 17.7).
SMALL_RUN = [
    "--epochs",
    "3",
    "--samples",
    "100",
    "--judge-epochs",
    "2",
    "--batch-size",
    "32",
    "--set",
    "generator_learning_rate=0.001",
    "--set",
    "discriminator_learning_rate=0.001",
    "--set",
    "generator_filters=8",
    "--set",
    "discriminator_filters=8",
    "--set",
    "latent_dim=8",
]


@pytest.fixture(scope="module")
def digits():
    from zoo.datasets import images

    data = images.load("digits")
    return data.x_train[:128], data.y_train[:128]


@pytest.fixture(autouse=True)
def judge_cache(tmp_path_factory, monkeypatch):
    """Judges are cached once for the session in a temporary folder, never in ~/.cache."""
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "zoo_cache"))


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """An unconditional and a conditional GAN saved as .keras files (untrained: for the CLI)."""
    folder = tmp_path_factory.mktemp("gans")
    paths = {}
    for name, classes in (("unconditional", 0), ("conditional", 10)):
        paths[name] = str(folder / f"{name}.keras")
        zoo.get("gan", num_classes=classes, **SMALL).save(paths[name])
    return paths


def _one_line_error(status, err):
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: error: "), err
    return lines[0]


# === The networks ===


def test_networks_take_latents_labels_and_images_of_the_configured_shape():
    latent = np.random.default_rng(0).standard_normal((4, 8)).astype("float32")
    labels = np.array([[0], [3], [7], [9]], dtype="int32")

    generator = zoo.get("generator", image_shape=(28, 28, 1), num_classes=10, latent_dim=8, filters=8)
    images = np.asarray(generator([latent, labels]))
    assert images.shape == (4, 28, 28, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0

    discriminator = zoo.get("discriminator", image_shape=(28, 28, 1), num_classes=10, filters=8)
    assert np.asarray(discriminator([images, labels])).shape == (4, 1)

    gan = zoo.get("gan", image_shape=(32, 32, 3), upsamplings=3, **SMALL)
    assert gan.predict(latent, verbose=0).shape == (4, 32, 32, 3)
    assert gan.get_build_config() == {"input_shape": (None, 8)}


def test_the_label_changes_what_a_conditional_generator_draws():
    gan = zoo.get("gan", num_classes=10, **SMALL)
    latent = np.random.default_rng(0).standard_normal((1, 8)).astype("float32")
    threes = np.asarray(gan([latent, np.array([[3]])]))
    sevens = np.asarray(gan([latent, np.array([[7]])]))
    assert np.abs(threes - sevens).max() > 1e-4
    drawn = gan.generate(6, labels=7, seed=0)
    assert drawn.shape == (6, 8, 8, 1)
    # Same seed and label: the same images; the label, not the noise, makes the difference.
    np.testing.assert_array_equal(drawn, gan.generate(6, labels=7, seed=0))
    by_label = gan.generate(2, labels=[3, 7], seed=0)
    assert np.abs(by_label[0] - by_label[1]).max() > 1e-4


def test_generate_refuses_bad_counts_and_labels():
    unconditional = zoo.get("gan", **SMALL)
    with pytest.raises(zoo.ZooError, match="unconditional"):
        unconditional.generate(4, labels=1)
    with pytest.raises(zoo.ZooError, match="at least 1"):
        unconditional.generate(0)
    conditional = zoo.get("gan", num_classes=10, **SMALL)
    with pytest.raises(zoo.ZooError, match="Label 10 is out of range.*0 to 9"):
        conditional.generate(4, labels=10)


@pytest.mark.parametrize(
    "override, pattern",
    [
        ({"image_shape": (28, 28, 1), "upsamplings": 3}, "not divisible by 2\\*\\*upsamplings=8"),
        ({"image_shape": (8, 8, 2)}, "1 or 3 channels"),
        ({"num_classes": 1}, "num_classes=1"),
        ({"label_smoothing": 0.7}, "'label_smoothing' must be in"),
    ],
)
def test_bad_hyperparameters_say_what_to_change(override, pattern):
    with pytest.raises(zoo.ZooError, match=pattern):
        zoo.get("gan", **override)


def test_the_composite_has_two_optimizers_and_no_unused_one():
    gan = zoo.get("gan")
    assert gan.optimizer is None  # no RMSprop from compile()'s default
    assert gan.generator_optimizer is not gan.discriminator_optimizer
    assert gan.generator_optimizer.built and gan.discriminator_optimizer.built
    hyperparameters = zoo.info("gan").hyperparameters
    assert not [name for name in hyperparameters if name == "optimizer" or name.startswith("optimizer")]
    assert {"generator_learning_rate", "discriminator_learning_rate", "beta_1"} <= set(hyperparameters)
    # The sub-networks inside the GAN are not compiled: no optimizer of theirs is saved or restored.
    assert not gan.generator.compiled and not gan.discriminator.compiled


# === Training, saving, resuming ===


def test_save_load_keeps_both_optimizers_and_training_continues_identically(digits, tmp_path):
    x, y = digits
    gan = zoo.get("gan", num_classes=10, dropout=0.0, **SMALL)
    history = gan.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert set(history.history) == {"generator_loss", "discriminator_loss"}
    path = tmp_path / "gan.keras"
    gan.save(path)
    loaded = keras.saving.load_model(path)

    assert isinstance(loaded, GAN) and loaded.num_classes == 10 and loaded.optimizer is None
    for name in ("generator_optimizer", "discriminator_optimizer"):
        saved, restored = getattr(gan, name), getattr(loaded, name)
        assert int(restored.iterations.numpy()) == 4  # 128 images / 32 per step
        assert len(restored.variables) == len(saved.variables) > 1
        for want, got in zip(saved.variables, restored.variables):
            np.testing.assert_array_equal(want.numpy(), got.numpy())
    assert loaded.label_smoothing == gan.label_smoothing

    before = [w.copy() for w in loaded.get_weights()]
    first = gan.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0).history
    second = loaded.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0).history
    # The reloaded model takes the very steps the original takes (same moments, same step count,
    # hence the same latent noise), and those steps do change it.
    for want, got in zip(gan.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert set(first) == set(second)
    for key in first:
        assert second[key] == pytest.approx(first[key], rel=1e-5)
    assert max(np.abs(a - b).max() for a, b in zip(before, loaded.get_weights())) > 1e-4


def test_fit_refuses_a_conditional_gan_without_labels(digits):
    gan = zoo.get("gan", num_classes=10, **SMALL)
    with pytest.raises(ValueError, match="conditional: fit it on \\(images, labels\\)"):
        gan.fit(digits[0], batch_size=32, epochs=1, verbose=0)


DISTRIBUTED_STEP = """
import json
import numpy as np
import keras
import tensorflow as tf
import zoo
from zoo.datasets import images

data = images.load("digits")
# Five images: the two replicas get 3 and 2, so an average over the wrong batch size shows.
x, y = data.x_train[:5], data.y_train[:5]

def one_step(strategy, weights):
    with strategy.scope():
        gan = zoo.get("gan", num_classes=10, dropout=0.0, generator_filters=8, discriminator_filters=8,
                      latent_dim=8)
        # SGD: its first update is proportional to the gradient, so a wrongly scaled loss shows
        # (Adam's first step is nearly sign(gradient) whatever the scale). With momentum it has
        # slot variables, which must be built inside the scope (NOTES.md) like Adam's.
        gan.compile(generator_optimizer=keras.optimizers.SGD(0.5, momentum=0.5),
                    discriminator_optimizer=keras.optimizers.SGD(0.5, momentum=0.5), label_smoothing=0.1)
    if weights is not None:
        gan.set_weights(weights)
    before = gan.get_weights()
    history = gan.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(5), epochs=1, verbose=0)
    updates = [after - start for after, start in zip(gan.get_weights(), before)]
    return before, updates, {key: float(values[0]) for key, values in history.history.items()}

one = tf.distribute.OneDeviceStrategy("/cpu:0")
two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
weights, single, single_losses = one_step(one, None)
_, double, double_losses = one_step(two, weights)
norm_single = float(np.sqrt(sum((u ** 2).sum() for u in single)))
norm_double = float(np.sqrt(sum((u ** 2).sum() for u in double)))
worst = max(float(np.abs(a - b).max() / (np.abs(a).max() + 1e-12)) for a, b in zip(single, double)
            if np.abs(a).max() > 0)
print(json.dumps({"replicas": two.num_replicas_in_sync, "norm_ratio": norm_double / norm_single,
                  "worst_relative": worst, "single_losses": single_losses, "double_losses": double_losses}))
"""


def test_one_step_on_two_replicas_matches_one_step_on_one():
    found = run_with_logical_cpus(DISTRIBUTED_STEP, count=2, timeout=300)
    assert found["replicas"] == 2
    # The same weight update, every weight (the networks', their averages', batch-norm statistics)
    # within float rounding: a loss averaged over the per-replica rows would double it ...
    assert found["norm_ratio"] == pytest.approx(1.0, abs=1e-3), found
    assert found["worst_relative"] < 1e-3, found
    # ... and the same reported losses (not divided by the number of replicas).
    assert set(found["single_losses"]) == {"generator_loss", "discriminator_loss"}
    for key, value in found["single_losses"].items():
        assert found["double_losses"][key] == pytest.approx(value, rel=1e-4), found


# === The recipe and `zoo generate` ===


def test_recipe_logs_losses_quality_and_a_sample_grid_per_epoch(run_cli, tracking_uri, tmp_path):
    import mlflow
    from PIL import Image

    output = tmp_path / "out"
    status, out, err = run_cli("train", "gan", *SMALL_RUN, "--output", output)
    assert status == 0, err
    run_id = re.search(r"run ([0-9a-f]{32}) finished", out).group(1)
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"

    for key in (
        "generator_loss",
        "discriminator_loss",
        "confident_share",
        "class_entropy",
        "within_class_diversity",
        "frechet_distance",
        "label_accuracy",
    ):
        history = client.get_metric_history(run_id, key)
        assert sorted(m.step for m in history) == [0, 1, 2], key
    entropy = run.data.metrics["class_entropy"]
    assert 0.0 <= entropy <= np.log(10) + 1e-6
    assert 0.0 <= run.data.metrics["test_confident_share"] <= 1.0
    assert run.data.metrics["test_frechet_distance"] >= 0.0
    assert run.data.metrics["epochs_trained"] == 3
    # Compared with an untrained GAN of the same size (zoo.training.baselines).
    assert run.data.metrics["test_baseline_frechet_distance"] > 0.0 and run.data.tags["zoo.learned"] in (
        "true",
        "false",
    )

    params = run.data.params
    assert params["model.num_classes"] == "10" and params["model.image_shape"] == "8,8,1"
    assert params["model.generator_learning_rate"] == "0.001"
    assert params["model.discriminator_learning_rate"] == "0.001"
    assert not [key for key in params if "optimizer" in key], params

    # One sample grid per epoch, logged as an MLflow image with the epoch as step.
    image_files = [f.path for f in client.list_artifacts(run_id, "images")]
    grids = [p for p in image_files if os.path.basename(p).startswith("samples") and p.endswith(".png")]
    assert len(grids) == 3, image_files
    # MLflow names them images/KEY+step+STEP+timestamp+...png (older releases: % for +).
    steps = sorted(int(re.search(r"[+%]step[+%](\d+)[+%]", p).group(1)) for p in grids)
    assert steps == [0, 1, 2]
    artifacts = [f.path for f in client.list_artifacts(run_id)]
    assert {"samples.png", "judge.json", "learning_curve.png"} <= set(artifacts)

    # `zoo generate` from the run id (MLflow) and from the --output folder.
    status, out, err = run_cli(
        "generate", run_id, "--n", "12", "--label", "7", "--columns", "6", "--out", tmp_path / "sevens.png"
    )
    assert status == 0, err
    assert "12 generated image(s) of class 7" in out
    with Image.open(tmp_path / "sevens.png") as grid:
        # 6 x 2 tiles of 8x8 digits enlarged 4 times, 1-pixel borders.
        assert grid.size == (6 * 33 + 1, 2 * 33 + 1)
    status, _, err = run_cli("generate", output, "--n", "4", "--out", tmp_path / "any.png")
    assert status == 0, err

    # The judge was trained once and cached: asking again loads it, without training.
    from zoo.datasets import images
    from zoo.recipes import gan as recipe

    cache = os.path.join(os.environ["ZOO_CACHE_DIR"], "gan_judges")
    judges = sorted(os.listdir(cache))
    expected = f"digits_8x8x1_10classes_{recipe._judge_model_name()}_e2_v1.keras"
    assert [name for name in judges if name.endswith(".keras")] == [expected]
    stamps = [os.path.getmtime(os.path.join(cache, name)) for name in judges]
    digits = images.load("digits")
    judge = recipe.load_judge(digits, recipe._dataset_key(digits, recipe.GANConfig()), epochs=2)
    assert judge.accuracy == pytest.approx(run.data.metrics["judge_test_accuracy"])
    assert sorted(os.listdir(cache)) == judges
    assert [os.path.getmtime(os.path.join(cache, name)) for name in judges] == stamps

    # Floor: a GAN whose generator never updated (the same networks at their initial weights),
    # scored by the recipe's own evaluation with the same judge and test images.
    from zoo import training

    gan_recipe = training.get_recipe("gan")
    config, _ = training.make_config(gan_recipe, {"samples": 100, "judge_epochs": 2})
    data = gan_recipe.load_data(config)
    keras.utils.set_random_seed(config.seed)
    untrained = zoo.get("gan", **gan_recipe.model_overrides(config, data), **SMALL)
    judging = recipe.Judging(judge, judge.reference(data.loaded.x))
    baseline = gan_recipe.evaluate(untrained, data, config, judging).metrics
    trained = run.data.metrics
    # 3 epochs: Frechet distance about 0.6 of the untrained generator's, more classes drawn.
    floors = {key: (trained[key], baseline[key]) for key in ("test_frechet_distance", "test_class_entropy")}
    print(f"gan trained vs untrained: {floors}")
    assert trained["test_frechet_distance"] <= 0.8 * baseline["test_frechet_distance"], floors
    assert trained["test_class_entropy"] >= baseline["test_class_entropy"] + 0.3, floors


def test_recipe_trains_on_a_tensorflow_datasets_name(run_cli, tracking_uri):
    import mlflow
    import tensorflow_datasets as tfds

    # tfds' mock data: random 28x28 "MNIST" images, offline, through the same loader as real data.
    with tfds.testing.mock_data(num_examples=80):
        status, out, err = run_cli(
            "train",
            "gan",
            "--dataset",
            "mnist",
            "--no-conditional",
            "--epochs",
            "1",
            "--samples",
            "20",
            "--judge-epochs",
            "1",
            "--batch-size",
            "40",
            "--set",
            "generator_filters=4",
            "--set",
            "discriminator_filters=4",
            "--set",
            "latent_dim=4",
        )
    assert status == 0, err
    run = mlflow.MlflowClient(tracking_uri).get_run(re.search(r"run ([0-9a-f]{32}) finished", out).group(1))
    assert run.data.params["model.image_shape"] == "28,28,1"
    assert run.data.params["model.upsamplings"] == "2"  # 7x7 -> 14x14 -> 28x28
    assert run.data.params["model.num_classes"] == "0"  # --no-conditional
    assert "frechet_distance" in run.data.metrics and "label_accuracy" not in run.data.metrics


# === Bad input: one line, exit 2, no run left RUNNING ===


def _write_png(path, size):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, size=size, dtype="uint8")).save(path)


def test_non_image_data_is_refused(run_cli, tracking_uri, tmp_path):
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n3,4\n")
    line = _one_line_error(*run_cli("train", "gan", "--data", table)[::2])
    assert "folder" in line
    for name in ("zero", "one"):
        (tmp_path / "tables" / name).mkdir(parents=True)
        (tmp_path / "tables" / name / "rows.csv").write_text("a,b\n1,2\n")
    line = _one_line_error(*run_cli("train", "gan", "--data", tmp_path / "tables")[::2])
    assert "no images" in line
    assert running_runs(tracking_uri) == []


def test_images_of_mixed_sizes_need_a_resize_option(run_cli, tracking_uri, tmp_path):
    for index in range(6):
        _write_png(tmp_path / "shapes" / "a" / f"{index}.png", (8, 8))
        _write_png(tmp_path / "shapes" / "b" / f"{index}.png", (12, 10) if index == 5 else (8, 8))
    line = _one_line_error(*run_cli("train", "gan", "--data", tmp_path / "shapes")[::2])
    assert "differ in size" in line and "--image-size" in line
    assert running_runs(tracking_uri) == []


def test_generate_bad_input_is_one_line(run_cli, saved_models, tmp_path):
    out = str(tmp_path / "grid.png")
    line = _one_line_error(*run_cli("generate", saved_models["unconditional"], "--label", "7", "--out", out)[::2])
    assert "unconditional" in line
    line = _one_line_error(*run_cli("generate", saved_models["conditional"], "--n", "0", "--out", out)[::2])
    assert "--n must be at least 1" in line
    line = _one_line_error(*run_cli("generate", saved_models["conditional"], "--label", "12", "--out", out)[::2])
    assert "0 to 9" in line
    line = _one_line_error(*run_cli("generate", tmp_path / "missing.keras", "--out", out)[::2])
    assert "neither a model file" in line
    assert not os.path.exists(out)
    status, _, err = run_cli("generate", saved_models["conditional"], "--n", "3", "--label", "2", "--out", out)
    assert status == 0, err
