"""Input pipelines that serve every backend: NumPy batches off TensorFlow, cheap augmentation.

The JAX test runs in a child process where `import tensorflow` fails, as on a JAX-only machine.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from baselines import assert_beats, count, majority_count
from test_streaming import _photos

from zoo import training
from zoo.datasets import sequences, streaming

BLOCKER = """
import sys


class _NoTensorFlow:
    # A JAX-only machine: TensorFlow is not installed.
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoTensorFlow())

import importlib.util

_find_spec = importlib.util.find_spec


def _no_tensorflow_spec(name, package=None):
    # What find_spec answers where TensorFlow is not installed (torch._dynamo asks it on import).
    if name == "tensorflow" or name.startswith("tensorflow."):
        return None
    return _find_spec(name, package)


importlib.util.find_spec = _no_tensorflow_spec
"""

RUNNER = """
import json, sys

import mlflow
import numpy as np

from zoo import cli

uri = "sqlite:///mlflow.db"
results = {}
for recipe in ("mlp", "cnn"):
    status = cli.main(["train", recipe, "--epochs", "1", "--tracking-uri", uri])
    assert status == 0, (recipe, status)
mlflow.set_tracking_uri(uri)
for run in mlflow.search_runs(experiment_names=["zoo"], output_format="list"):
    recipe = run.data.tags["zoo.recipe"]
    served = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    results[recipe] = {"accuracy": run.data.metrics["test_accuracy"], "served": served is not None}
# The cnn's logged model predicts on raw pixels without TensorFlow.
pixels = np.full((2, 8, 8, 1), 255.0, "float32")
runs = mlflow.search_runs(experiment_names=["zoo"], filter_string="tags.`zoo.recipe` = 'cnn'", output_format="list")
cnn_model = mlflow.pyfunc.load_model(f"runs:/{runs[0].info.run_id}/model")
predicted = np.asarray(cnn_model.predict(pixels, params={"output": "array"}))
results["cnn_prediction_shape"] = list(predicted.shape)

# A CSV streamed from disk (ZOO_STREAM_BYTES=0 streams any file; chunks of 64 rows span many).
import contextlib, io, os

import pandas as pd

from zoo.datasets import streaming

streaming.CHUNK_ROWS, streaming.SHUFFLE_ROWS = 64, 256
os.environ[streaming.THRESHOLD_ENV] = "0"
table = ["--data", "table.csv", "--target", "label", "--tracking-uri", uri, "--experiment", "streamed"]
status = cli.main(["train", "mlp", *table, "--epochs", "2", "--batch-size", "32"])
assert status == 0, status
run = mlflow.search_runs(experiment_names=["streamed"], output_format="list")[0]
# Text categories reach the model as codes; the logged model still takes raw rows, text included.
rows = pd.DataFrame({"row_id": [0, 1], "x": [9.0, 1.0], "level": [2, 1], "colour": ["red", "blue"]})
served = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(rows, params={"output": "array"})
results["streamed"] = {
    "accuracy": run.data.metrics["test_accuracy"],
    "chunk_rows": run.data.params["data.streamed.chunk_rows"],
    "served": np.asarray(served).reshape(-1).tolist(),
}
# A bad row deep in the file is refused before any run starts, with the line it is on.
errors = io.StringIO()
with contextlib.redirect_stderr(errors):
    status = cli.main(["train", "mlp", "--data", "bad.csv", *table[2:], "--epochs", "1"])
runs = mlflow.search_runs(experiment_names=["streamed"], output_format="list")
running = [run.info.run_id for run in runs if run.info.status == "RUNNING"]
results["bad"] = {"status": status, "stderr": errors.getvalue(), "runs": len(runs), "running": running}

# An image folder streamed off TensorFlow (the quickstart MLP: the cheapest compile): Pillow
# decodes each batch; images that turn unreadable once the run started stop it, one line naming one.
import glob

import keras

from zoo import training
from zoo.errors import ZooError

folder = ["--data", "photos", "--batch-size", "13", "--tracking-uri", uri, "--model", "mlp_image"]
assert cli.main(["train", "cnn", *folder, "--epochs", "4", "--worst-images", "2", "--experiment", "folder"]) == 0
run = mlflow.search_runs(experiment_names=["folder"], output_format="list")[0]
results["folder"] = {"accuracy": run.data.metrics["test_accuracy"], "streamed": run.data.params["data.streamed"]}
os.environ[streaming.THRESHOLD_ENV] = str(10**12)  # a folder that fits: Pillow reads it into arrays
from zoo.datasets import images

held = images.load(folder="photos").x_train
results["folder"]["in_memory"] = [type(held).__name__, list(held.shape), round(float(held.max()), 2)]
os.environ[streaming.THRESHOLD_ENV] = "0"


class Corrupt(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        for path in glob.glob("photos/*/*.png"):
            with open(path, "wb") as handle:
                handle.write(b"not an image")


options = {"data": "photos", "epochs": 2, "batch_size": 13, "model": "mlp_image", "tracking_uri": uri}
options["experiment"] = "broken"
try:
    training.train("cnn", options, callbacks=[Corrupt()])
except ZooError as error:
    results["folder"]["error"] = str(error)
runs = mlflow.search_runs(experiment_names=["broken"], output_format="list")
results["folder"]["statuses"] = [run.info.status for run in runs]

# The RBM and the GAN (custom training steps) on the digits, at their cheapest: one epoch of tiny networks.
cheap_rbm = ["--batch-size", "100", "--samples", "4", "--gibbs-steps", "10", "--set", "hidden_units=16"]
cheap_gan = ["--batch-size", "512", "--no-conditional", "--samples", "10", "--judge-epochs", "1"]
cheap_gan += ["--set", "latent_dim=8", "--set", "generator_filters=8", "--set", "discriminator_filters=8"]
for recipe, cheap in (("rbm", [*cheap_rbm, "--no-classifier"]), ("gan", cheap_gan)):
    status = cli.main(["train", recipe, "--epochs", "1", *cheap, "--tracking-uri", uri, "--experiment", recipe])
    assert status == 0, (recipe, status)
    run = mlflow.search_runs(experiment_names=[recipe], output_format="list")[0]
    results[recipe] = {"metrics": run.data.metrics}
    served = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    if recipe == "gan":
        # The logged sampler: rows of seeds in, images (0-255) out.
        images = np.asarray(served.predict(pd.DataFrame({"seed": [0, 1]}), params={"output": "array"}))
        results["gan"]["images"] = [list(images.shape), float(images.min()), float(images.max())]
    else:
        results["rbm"]["reconstructed"] = list(np.asarray(served.predict(np.zeros((3, 8, 8, 1), "float32"))).shape)

# The recurrent recipes' in-memory splits (digit rows) are NumPy batches too. Only loaded here:
# an LSTM's JAX compile would cost the suite seconds that tests/test_backends.py already spends.
from zoo import training

lstm = training.get_recipe("lstm")
data = lstm.load_data(training.make_config(lstm, {})[0])
first = training.batch(data.train, 32)[0]
results["lstm"] = {
    "splits": [type(split).__name__ for split in (data.train, data.validation, data.test)],
    "batch": [list(first[0].shape), list(first[1].shape)],
}

# Texts (a CSV of reviews): token ids in NumPy, a tiny RNN, served on raw texts.
tiny = ["--set", "units=4", "--set", "embedding_dim=4", "--set", "bidirectional=false", "--set", "learning_rate=0.05"]
text = ["--data", "reviews.csv", "--sequence-length", "6", "--batch-size", "16", *tiny]
status = cli.main(["train", "rnn", *text, "--epochs", "3", "--tracking-uri", uri, "--experiment", "text"])
assert status == 0, status
run = mlflow.search_runs(experiment_names=["text"], output_format="list")[0]
asked = pd.DataFrame({"text": ["The film was a GREAT plot!", "The plot was a dull film."]})
served = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(asked, params={"output": "array"})
results["text"] = {"accuracy": run.data.metrics["test_accuracy"], "served": np.asarray(served).reshape(-1).tolist()}

# OCR lines from image files: read with Pillow, resized in NumPy, NumPy batches (loaded only:
# a CRNN's JAX compile costs more than the suite can spare; tests/test_ocr.py's large test trains one).
ocr = training.get_recipe("ocr")
data = ocr.load_data(training.make_config(ocr, {"data": "lines", "image_height": 12})[0])
first = training.batch(data.train, 4)[0]
results["ocr"] = {
    "splits": [type(split).__name__ for split in (data.train, data.validation, data.test)],
    "batch": [list(first[0].shape), list(first[1].shape)],
    "max": float(first[0].max()),
}
results["tensorflow_imported"] = "tensorflow" in sys.modules
print("RESULTS " + json.dumps(results))
"""


def _write_table(folder, rows=1200):
    """A learnable table (the label follows x, an integer and a text category), and a copy with a bad row 1001."""
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, rows)
    level = rng.integers(1, 5, rows)
    colour = rng.choice(["red", "green", "blue"], rows)
    label = np.where(x + 2.0 * (level == 2) + 2.0 * (colour == "red") + rng.normal(0, 0.5, rows) > 6.5, "yes", "no")
    frame = pd.DataFrame({"row_id": np.arange(rows), "x": x, "level": level, "colour": colour, "label": label})
    frame.to_csv(folder / "table.csv", index=False)
    lines = (folder / "table.csv").read_text().splitlines()
    lines[1000] = "999,five,2,red,yes"  # line 1001 of the file: 15 chunks of 64 rows in
    (folder / "bad.csv").write_text("\n".join(lines) + "\n")
    test = streaming.scan(str(folder / "table.csv"), "label", seed=42).test
    return test["label"]


def run_without_tensorflow(folder, script, *args):
    """Run `script` on JAX in a child process where `import tensorflow` fails, as on a JAX-only machine.

    The script runs in `folder` and prints `RESULTS ` and a JSON dict, whose `tensorflow_imported`
    must be False; the dict is returned.
    """
    (folder / "blocker").mkdir()
    (folder / "blocker" / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(folder / "blocker")}
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'tensorflow'" in probe.stderr
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.split("RESULTS ", 1)[1])
    assert results["tensorflow_imported"] is False
    return results


def _write_reviews(path, rows=400):
    """Short reviews whose label one word gives away (great/superb/moving or awful/dull/boring)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    good, bad, filler = ["great", "superb", "moving"], ["awful", "dull", "boring"], ["film", "plot", "the", "was", "a"]
    texts = []
    for row in range(rows):
        words = [*rng.choice(filler, 4), rng.choice(good if row % 2 else bad)]
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + "!")
    pd.DataFrame({"text": texts, "label": [["neg", "pos"][row % 2] for row in range(rows)]}).to_csv(path, index=False)


def _write_lines(folder, count=20):
    """A folder of OCR line images (digit scans, dark on light PNGs) with its labels.csv."""
    from PIL import Image

    from zoo.datasets import text_lines

    folder.mkdir()
    lines = text_lines.digit_lines(0, lines=(count, 1, 1), lengths=(3, 5))
    for index, line in enumerate(lines.x_train):
        Image.fromarray((255 - line[..., 0] * 255).round().astype("uint8")).save(folder / f"line{index}.png")
    names = "\n".join(f"line{index}.png,{text}" for index, text in enumerate(lines.texts_train))
    (folder / "labels.csv").write_text("filename,words\n" + names + "\n")


def test_jax_trains_in_memory_recipes_and_streams_a_csv_without_tensorflow(tmp_path):
    # mlp, cnn, rbm, gan and an rnn on texts in memory, the mlp on a CSV and an image folder streamed
    # from disk; the lstm's data and OCR lines read from files.
    test_labels = _write_table(tmp_path)
    _photos(tmp_path / "photos", count=90)
    _write_reviews(tmp_path / "reviews.csv")
    review_labels = sequences.text_csv(str(tmp_path / "reviews.csv")).y_test
    _write_lines(tmp_path / "lines")
    results = run_without_tensorflow(tmp_path, RUNNER)
    # One epoch beats the majority class: 0.63 of breast-cancer test rows, 0.11 of digits.
    assert results["mlp"]["accuracy"] >= 0.85, results
    assert results["cnn"]["accuracy"] >= 0.25, results
    assert results["cnn_prediction_shape"] == [2, 10]
    # Streamed off TensorFlow: two epochs beat the majority class by a margin, as on tf.data.
    assert results["streamed"]["chunk_rows"] == "64"
    yes, no = results["streamed"]["served"]  # probabilities of "yes" for a clear yes and a clear no
    assert yes > 0.5 > no, results["streamed"]
    rows = len(test_labels)
    assert_beats(count(results["streamed"]["accuracy"], rows), majority_count(test_labels), 20, rows, "streamed mlp")
    # One epoch of the RBM gains over an untrained one, which gives every pixel 1/2: 64 ln(1/2) = -44.4.
    assert results["rbm"]["metrics"]["test_pseudo_likelihood"] >= 64 * np.log(0.5) + 10, results["rbm"]
    assert results["rbm"]["reconstructed"][0] == 3
    # The GAN trains and serves off TensorFlow (how much one epoch learns: tests/test_gan.py on
    # TensorFlow, and tests/test_backends.py holds every backend's step to the same update).
    assert results["gan"]["metrics"]["epochs_trained"] == 1 and "test_frechet_distance" in results["gan"]["metrics"]
    shape, low, high = results["gan"]["images"]
    assert shape[0] == 2 and shape[1:3] == [8, 8] and 0 <= low <= high <= 255, results["gan"]
    assert results["lstm"] == {"splits": ["Arrays"] * 3, "batch": [[32, 8, 8], [32]]}, results["lstm"]
    # Three epochs on 280 reviews (one word gives the label away) leave the majority class far behind.
    rows = len(review_labels)
    assert_beats(count(results["text"]["accuracy"], rows), majority_count(review_labels), 20, rows, "rnn on texts")
    positive, negative = results["text"]["served"]
    assert positive > 0.5 > negative, results["text"]
    # Lines 10 pixels high resized to 12, padded to a width that is a multiple of 4; raw pixels 0-255.
    ocr = results["ocr"]
    assert ocr["splits"] == ["Arrays"] * 3 and ocr["batch"][0][:2] == [4, 12] and ocr["batch"][0][3] == 1, ocr
    assert ocr["batch"][0][2] % 4 == 0 and 200 < ocr["max"] <= 255, ocr
    bad = results["bad"]
    assert bad["status"] == 2 and bad["stderr"].count("\n") == 1, bad
    assert "Column 'x' is numeric but row 1001 holds 'five'" in bad["stderr"], bad
    assert bad["runs"] == 1 and not bad["running"], bad
    # 18 test images of 3 balanced classes: the majority class gets 6 right (0.33).
    folder = results["folder"]
    assert folder["streamed"] == "True" and folder["in_memory"] == ["ndarray", [65, 12, 10, 1], 0.94], folder
    assert_beats(count(folder["accuracy"], 18), 6, 3, 18, "folder streamed off TensorFlow")
    assert folder["error"].startswith(f"Cannot read image {tmp_path / 'photos'}{os.sep}"), folder
    assert "changed after the folder was checked" in folder["error"], folder
    assert "\n" not in folder["error"] and folder["statuses"] == ["FAILED"], folder


def _epochs(batches, count):
    orders = []
    for _ in range(count):
        orders.append(np.concatenate([batches[i][1] for i in range(len(batches))]))
        batches.on_epoch_end()
    return orders


def test_array_batches_order_depends_on_seed_and_epoch_and_resumes_exactly():
    rows = 23
    arrays = training.Arrays(({"a": np.arange(rows)[:, None]}, np.arange(rows)))
    batches, steps = training.training_batches(arrays, rows, 5, seed=3)
    assert steps == 5
    first = _epochs(batches, 3)
    for order in first:
        assert sorted(order) == list(range(rows))  # every row once per epoch
    assert not np.array_equal(first[0], first[1])  # reshuffled each epoch
    resumed, _ = training.training_batches(arrays, rows, 5, seed=3, initial_epoch=2)
    assert np.array_equal(_epochs(resumed, 1)[0], first[2])  # a resume sees the uninterrupted batches
    inputs, _ = resumed[0]
    assert set(inputs) == {"a"} and inputs["a"].shape == (5, 1)
    evaluation = training.batch(arrays, 10)
    assert [len(evaluation[i][1]) for i in range(len(evaluation))] == [10, 10, 3]
    assert np.array_equal(np.concatenate([evaluation[i][1] for i in range(len(evaluation))]), np.arange(rows))


def test_random_shift_moves_images_while_training_and_is_identity_at_inference():
    from zoo.models.cnn import RandomShift

    layer = RandomShift(0.25, seed=0)
    images = np.zeros((16, 8, 8, 1), "float32")
    images[:, 3:5, 3:5, 0] = 1.0
    assert np.array_equal(np.asarray(layer(images)), images)
    shifted = np.asarray(layer(images, training=True))
    # Shifts up to 2 pixels keep the centred square inside the image: nothing is lost, it only moves.
    np.testing.assert_allclose(shifted.sum(axis=(1, 2, 3)), 4.0, rtol=1e-5)
    assert sum(not np.allclose(s, images[0]) for s in shifted) >= 12
    rows = np.arange(8)[None, :, None, None]
    centre = (shifted * rows).sum(axis=(1, 2, 3)) / 4.0
    assert np.all(np.abs(centre - 3.5) <= 2.0 + 1e-5)


def test_text_categories_as_codes_give_string_lookup_predictions_and_serve_raw_rows(tmp_path):
    # Off TensorFlow the pipeline hands the mlp codes (index + 1, 0 unseen) that it one-hots in
    # keras.ops; on TensorFlow it takes strings into StringLookup. Same weights, same predictions.
    import pandas as pd

    from zoo import registry, serving
    from zoo.datasets import tabular

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "city": rng.choice(["Oslo", "Lima", "Pune"], 60)})
    frame["label"] = np.where(frame["city"] == "Oslo", "yes", "no")
    frame.to_csv(tmp_path / "t.csv", index=False)
    table = tabular.read_csv(str(tmp_path / "t.csv"), "label")
    strings, codes = (tabular.prepare(table, text_codes=coded) for coded in (False, True))
    assert codes.features["city"] == {**strings.features["city"], "codes": True}
    assert tabular.category_codes(["Pune", "Lima", "Paris", "Oslo"], ["Lima", "Oslo", "Pune"]).tolist() == [3, 1, 0, 2]
    assert codes.features["city"]["vocabulary"] == ["Lima", "Oslo", "Pune"]
    looked_up = registry.get("mlp", features=strings.features, hidden_units=(4,))
    coded = registry.get("mlp", features=codes.features, hidden_units=(4,))
    coded.set_weights(looked_up.get_weights())
    rows = pd.DataFrame({"x": [0.5, -1.0, 2.0], "city": ["Oslo", "Paris", "Pune"]})  # Paris: never seen
    numbers = rows[["x"]].to_numpy("float32")
    from_strings = looked_up({"x": numbers, "city": rows[["city"]].to_numpy(object)}, training=False)
    city_codes = tabular.category_codes(rows["city"], ["Lima", "Oslo", "Pune"])[:, None]
    from_codes = coded({"x": numbers, "city": city_codes}, training=False)
    np.testing.assert_allclose(np.asarray(from_codes), np.asarray(from_strings), rtol=1e-6)
    # The pipeline's arrays and the serving adapter apply the same mapping to raw cells.
    inputs, _ = codes.arrays(codes.test)
    np.testing.assert_array_equal(
        inputs["city"][:, 0], tabular.category_codes(codes.test["city"], ["Lima", "Oslo", "Pune"])
    )
    served = serving.Table(features=codes.features).inputs(None, rows.iloc[[0, 2]])
    assert served["city"].dtype == np.int64 and served["city"][:, 0].tolist() == [2, 3]
