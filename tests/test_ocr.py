"""The `crnn` text-line reader, the digit-line builder, `zoo train ocr` and `zoo predict` on OCR runs."""

import os

import keras
import mlflow
import numpy as np
import pytest
from conftest import running_runs
from PIL import Image

import zoo
from zoo.datasets import text_lines
from zoo.errors import ZooError
from zoo.models import crnn
from zoo.recipes import ocr

# A small CRNN keeps the training tests to seconds; accuracy is benchmarks/ocr.py's business. Batch
# normalization and a larger step get it past the first CTC phase (only blanks out) within 3 short epochs.
SMALL = ["--set", "filters=16,32", "--set", "rnn_units=32", "--set", "dense_units=32", "--set", "dropout=0"]
FAST = ["--set", "batch_norm=true", "--set", "learning_rate=0.003"]
LINES = (2400, 100, 200)


# === Model ===


@pytest.mark.parametrize("downsample, steps", [(1, 40), (2, 20), (4, 10)])
def test_crnn_reads_columns_as_steps(downsample, steps):
    model = zoo.get(
        "crnn", input_shape=(8, 40, 1), alphabet="abc", filters=(4, 8), rnn_units=(8,), time_downsample=downsample
    )
    pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 40, 1)).astype("float32")
    out = model.predict(pixels, verbose=0)
    # One step per `downsample` columns; blank + 3 characters per step, summing to one.
    assert out.shape == (2, steps, 4)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, atol=1e-5)
    assert crnn.output_steps((8, 40, 1), downsample) == steps


def test_crnn_takes_a_taller_image_and_a_larger_alphabet():
    model = zoo.get("crnn", input_shape=(32, 64, 1), alphabet="abcdefghij -", filters=(4, 4, 4), rnn_units=(8,))
    assert model.output_shape == (None, 32, 13)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"alphabet": "aab"}, "without repeats"),
        ({"alphabet": ""}, "without repeats"),
        ({"time_downsample": 3}, "1, 2 or 4"),
        ({"time_downsample": 4, "filters": (8,)}, "needs 2 convolutional blocks"),
        ({"input_shape": (8, 40)}, "height, max_width, channels"),
        ({"rnn_units": ()}, "at least one entry"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_hyperparameters(overrides, message):
    with pytest.raises(ZooError, match=message):
        zoo.get("crnn", **overrides)


def _steps(*columns, classes=4):
    """Probabilities that put 0.9 on the given class of each step (0: blank)."""
    out = np.full((1, len(columns), classes), 0.1 / (classes - 1), dtype="float32")
    for step, index in enumerate(columns):
        out[0, step, index] = 0.9
    return out


def test_decode_merges_repeats_drops_blanks_and_scores_the_path():
    texts, confidences = crnn.decode(_steps(1, 1, 0, 1, 2, 2, 0, 3), "abc")
    # "a a _ a b b _ c": the blank separates the two a's; repeats without a blank merge.
    assert texts == ["aabc"]
    assert confidences[0] == pytest.approx(0.9**8, rel=1e-4)
    with pytest.raises(ZooError, match="alphabet has 2 characters"):
        crnn.decode(_steps(1, 2), "ab")


def test_ctc_loss_prefers_the_right_text():
    probabilities = _steps(1, 0, 2, 0, 3)
    right = crnn.ctc_loss(np.array([[1, 2, 3]]), probabilities)
    wrong = crnn.ctc_loss(np.array([[3, 2, 1]]), probabilities)
    padded = crnn.ctc_loss(np.array([[1, 2, 3, 0, 0]]), probabilities)
    assert float(right[0]) < float(wrong[0]) - 5
    # Padding with the blank (0) does not change the loss: the label length is read from it.
    assert float(padded[0]) == pytest.approx(float(right[0]), rel=1e-5)


def test_save_and_load_decode_identically(tmp_path):
    keras.utils.set_random_seed(3)
    lines = text_lines.digit_lines(0, lines=(2, 2, 4), lengths=(2, 3), max_gap=1)
    model = zoo.get("crnn", input_shape=lines.shape, alphabet="xyz", filters=(8, 8), rnn_units=(8,))
    pixels = lines.x_test * 255
    model.save(tmp_path / "crnn.keras")
    loaded = keras.saving.load_model(tmp_path / "crnn.keras")
    assert crnn.decode(model.predict(pixels, verbose=0), "xyz") == crnn.decode(loaded.predict(pixels, verbose=0), "xyz")
    assert loaded.loss is crnn.ctc_loss or loaded.loss.__name__ == "ctc_loss"


# === Data ===


def test_digit_lines_are_built_from_disjoint_scans():
    lines = text_lines.digit_lines(7, lines=(60, 20, 30), lengths=(3, 8))
    height, width, channels = lines.shape
    # 8-pixel scans with up to 2 pixels of vertical jitter (the default).
    assert (height, channels) == (10, 1) and width % 4 == 0 and width >= 8 * 8
    assert lines.x_val.shape[1:] == lines.x_test.shape[1:] == lines.shape
    assert lines.alphabet == "0123456789"
    scans, used = lines.extras["scans"], lines.extras["scan_ids"]
    # The scans of the three splits are disjoint (load_digits has no two identical scans).
    flat = {split: {x.tobytes() for x in scans[split]} for split in scans}
    assert not flat["train"] & flat["test"] and not flat["train"] & flat["validation"]
    assert not flat["validation"] & flat["test"]
    for split, texts in (("train", lines.texts_train), ("validation", lines.texts_val), ("test", lines.texts_test)):
        assert all(3 <= len(t) <= 8 for t in texts)
        assert all(len(ids) == len(t) and max(ids) < len(scans[split]) for ids, t in zip(used[split], texts))
    # Each line shows its scans: the first digit's scan sits within the left margin and the jitter.
    first = scans["test"][used["test"][0][0], ..., 0]
    assert any(
        np.array_equal(lines.x_test[0, top : top + 8, left : left + 8, 0], first)
        for top in range(3)
        for left in range(3)
    )


def test_unseen_lengths_and_labels():
    lines = text_lines.digit_lines(1, lines=(10, 5, 5), lengths=(3, 4), test_lengths=(7, 8))
    assert all(len(t) <= 4 for t in lines.texts_train) and all(len(t) >= 7 for t in lines.texts_test)
    labels = text_lines.encode(["12", "3"], "0123456789", 4)
    np.testing.assert_array_equal(labels, [[2, 3, 0, 0], [4, 0, 0, 0]])
    assert text_lines.needed_steps("1123") == 5


def test_read_lines_keeps_aspect_ratio_and_pads_with_the_background(tmp_path):
    paper = np.full((20, 60), 250, dtype="uint8")
    paper[5:15, 10:20] = 0
    Image.fromarray(paper).save(tmp_path / "wide.png")
    Image.fromarray(np.full((10, 200), 250, dtype="uint8")).save(tmp_path / "too_wide.png")
    pixels = text_lines.read_lines([str(tmp_path / "wide.png"), str(tmp_path / "too_wide.png")], 10, 50)
    assert pixels.shape == (2, 10, 50, 1)
    # 20x60 -> 10x30 (half), then light padding: columns 30-49 are the paper's colour.
    assert pixels[0, :, 30:].min() == 250 and pixels[0, 3:7, 5:10].max() < 50
    # 10x200 is shrunk to 50 wide (and 2-3 high), padded below with its background.
    assert np.allclose(pixels[1], 250)


def _tensorflow_line(path, height, max_width):
    """What `read_lines` gave when it decoded with `tf.io` and resized with `tf.image` (before it used NumPy)."""
    import tensorflow as tf

    image = tf.cast(tf.io.decode_image(tf.io.read_file(path), channels=1, expand_animations=False), tf.float32)
    h, w = image.shape[:2]
    scale = min(height / h, max_width / w)
    size = (max(1, min(height, int(round(h * scale)))), max(1, min(max_width, int(round(w * scale)))))
    resized = tf.image.resize(image, size, method="area" if scale < 1 else "bilinear")
    return np.clip(np.asarray(resized), 0, 255)[..., 0]


def test_lines_are_read_and_resized_as_tensorflow_did(tmp_path):
    """Off TensorFlow, lines are read with Pillow and resized in NumPy: this is how far that is from tf.io/tf.image."""
    import sklearn.datasets
    import tensorflow as tf

    # Real images: a line of real digit scans (gray), and a strip of scikit-learn's sample photo,
    # saved as RGB PNG and as JPEG (colour to gray differs: libpng's and libjpeg's own conversions).
    digits = text_lines.digit_lines(3, lines=(2, 1, 1), lengths=(6, 6))
    Image.fromarray((digits.x_train[0, ..., 0] * 255).round().astype("uint8")).save(tmp_path / "digits.png")
    photo = sklearn.datasets.load_sample_images().images[0][200:260, 100:420]
    Image.fromarray(photo).save(tmp_path / "photo.png")
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=90)
    # Up (bilinear) and down (area) at heights that do not divide the images' own.
    worst = {}
    for name, most in (("digits.png", 0.01), ("photo.png", 1.01), ("photo.jpg", 3.01)):
        for height, max_width in ((32, 400), (7, 300), (23, 60)):
            path = str(tmp_path / name)
            ours = text_lines.read_lines([path], height, max_width)[0, ..., 0]
            theirs = _tensorflow_line(path, height, max_width)
            difference = float(np.abs(ours[: theirs.shape[0], : theirs.shape[1]] - theirs).max())
            worst[name] = max(worst.get(name, 0.0), difference)
            assert difference <= most, (name, height, max_width, difference)
    print(f"max pixel difference (0-255) from tf.io + tf.image: {worst}")
    # Digit lines resized to another height: tf.image.resize's bilinear, within float rounding.
    tall = text_lines.digit_lines(3, lines=(2, 1, 1), lengths=(6, 6), image_height=23)
    expected = np.clip(np.asarray(tf.image.resize(digits.x_train, (23, tall.shape[1]), method="bilinear")), 0, 1)
    np.testing.assert_allclose(tall.x_train, expected, atol=1e-5)


def test_metrics_and_baseline():
    assert ocr.edit_distance("kitten", "sitting") == 3
    assert ocr.char_error_rate(["123", "45"], ["123", "4"]) == pytest.approx(1 / 5)
    assert ocr.exact_match(["123", "45"], ["123", "4"]) == 0.5
    assert ocr.most_frequent_character_baseline(["1123", "15", "111"], 2) == ["111", "111"]


# === Recipe ===


@pytest.fixture(scope="module")
def trained(session_store, tmp_path_factory):
    """One short `zoo train ocr` run on small digit lines, with --output."""
    from zoo.cli import main

    folder = tmp_path_factory.mktemp("ocr_run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", session_store)
        patch.chdir(folder)
        mlflow.set_tracking_uri(session_store)
        output = str(folder / "out")
        argv = ["train", "ocr", "--lines", ",".join(map(str, LINES)), "--digits", "1,3", "--epochs", "3"]
        argv += ["--batch-size", "16", "--output", output, "--experiment", "ocr-tests", "--worst-lines", "6"]
        status = main([*argv, *SMALL, *FAST])
        assert status == 0
    run = max(mlflow.search_runs(experiment_names=["ocr-tests"], output_format="list"), key=lambda r: r.info.start_time)
    lines = text_lines.digit_lines(42, lines=LINES, lengths=(1, 3))
    picture = str(folder / "line.png")
    Image.fromarray((lines.x_test[0, ..., 0] * 255).round().astype("uint8")).save(picture)
    return {"run": run, "output": output, "picture": picture, "lines": lines}


def test_smoke_run_reads_better_than_the_most_frequent_character(trained):
    metrics = trained["run"].data.metrics
    # The trivial reader (the commonest digit, repeated to the median length) misses ~all characters;
    # a model stuck in CTC's blank phase reads nothing (error rate 1.0). Measured: about 0.1.
    assert metrics["test_baseline_char_error_rate"] > 0.8
    assert metrics["test_char_error_rate"] < min(0.5, metrics["test_baseline_char_error_rate"] - 0.4)
    assert 0.0 <= metrics["test_exact_match"] <= 1.0
    history = mlflow.MlflowClient().get_metric_history(trained["run"].info.run_id, "val_char_error_rate")
    assert len(history) == 3
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(trained["run"].info.run_id)}
    assert {"worst_test_lines.png", "test_readings.csv", "alphabet.json", "learning_curve.png"} <= artifacts


OCR_OFF_TENSORFLOW = """
import contextlib, io, json, sys

import mlflow

from zoo import cli

argv = json.loads(sys.argv[1])
assert cli.main(["train", "ocr", *argv, "--tracking-uri", "sqlite:///mlflow.db"]) == 0
mlflow.set_tracking_uri("sqlite:///mlflow.db")
run = mlflow.search_runs(experiment_names=["zoo"], output_format="list")[0]
printed = io.StringIO()
with contextlib.redirect_stdout(printed):
    status = cli.main(["predict", run.info.run_id, "line.png", "--tracking-uri", "sqlite:///mlflow.db"])
result = {"metrics": run.data.metrics, "predict": [status, printed.getvalue()]}
print("RESULTS " + json.dumps({**result, "tensorflow_imported": "tensorflow" in sys.modules}))
"""


@pytest.mark.large
def test_ocr_trains_and_reads_image_files_on_jax_without_tensorflow(tmp_path):
    """The trained fixture's run on JAX where `import tensorflow` fails, lines resized to 12 high, and `zoo predict`."""
    import json

    from test_pipelines import run_without_tensorflow

    lines = text_lines.digit_lines(42, lines=LINES, lengths=(1, 3))
    Image.fromarray((lines.x_test[0, ..., 0] * 255).round().astype("uint8")).save(tmp_path / "line.png")
    argv = ["--lines", ",".join(map(str, LINES)), "--digits", "1,3", "--epochs", "3", "--batch-size", "16"]
    argv += ["--image-height", "12", "--worst-lines", "2", *SMALL, *FAST]
    results = run_without_tensorflow(tmp_path, OCR_OFF_TENSORFLOW, json.dumps(argv))
    metrics = results["metrics"]
    # The floor of test_smoke_run_reads_better_than_the_most_frequent_character.
    assert metrics["test_char_error_rate"] < min(0.5, metrics["test_baseline_char_error_rate"] - 0.4), metrics
    status, printed = results["predict"]
    text = printed.split(": ", 1)[1].rsplit(" (", 1)[0]
    assert status == 0 and (text == "(nothing read)" or set(text) <= set("0123456789")), printed


def test_logged_model_returns_text_through_pyfunc(trained):
    model = mlflow.pyfunc.load_model(f"runs:/{trained['run'].info.run_id}/model")
    table = model.predict(trained["lines"].x_test[:5] * 255)
    assert list(table.columns) == ["text", "confidence"]
    assert all(isinstance(t, str) and set(t) <= set("0123456789") for t in table["text"])
    assert ((table["confidence"] >= 0) & (table["confidence"] <= 1)).all()


def test_predict_prints_the_text_from_run_id_and_output_folder(trained, run_cli):
    expected = mlflow.pyfunc.load_model(f"runs:/{trained['run'].info.run_id}/model").predict(
        trained["lines"].x_test[:1] * 255
    )["text"][0]
    for reference in (trained["run"].info.run_id, trained["output"]):
        status, out, err = run_cli("predict", reference, trained["picture"])
        assert status == 0, err
        assert out.startswith(f"{trained['picture']}: {expected or '(nothing read)'} (")


# === Own data: a folder with labels.csv ===


def _write_folder(folder, count=40, rows=None):
    """Dark-on-light line images of varying width, labelled with letters instead of digits."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = text_lines.digit_lines(5, lines=(count, 1, 1), lengths=(2, 4), max_gap=2)
    table = ["filename,words"]
    for index, (pixels, digits) in enumerate(zip(lines.x_train, lines.texts_train)):
        ink = pixels[..., 0] * 255
        used = np.flatnonzero(ink.max(axis=0) > 0)
        image = Image.fromarray((255 - ink[:, : used[-1] + 2]).astype("uint8")).resize(
            ((used[-1] + 2) * 2, 16), Image.NEAREST
        )
        image.save(folder / f"line{index}.png")
        table.append(f"line{index}.png,{''.join('abcdefghij'[int(d)] for d in digits)}")
    for row in rows or []:
        table.append(row)
    (folder / "labels.csv").write_text("\n".join(table) + "\n")
    return str(folder)


def test_own_folder_trains_with_its_alphabet(run_cli, tmp_path):
    folder = _write_folder(tmp_path / "lines", count=60)
    loaded = text_lines.load_folder(folder, image_height=16)
    assert set(loaded.alphabet) <= set("abcdefghij") and loaded.shape[0] == 16 and loaded.shape[1] % 4 == 0
    assert loaded.x_train.max() <= 1.0 and loaded.x_train[:, :, -1].mean() > 0.9  # padded with light paper
    status, out, err = run_cli(
        "train",
        "ocr",
        "--data",
        folder,
        "--image-height",
        "16",
        "--epochs",
        "1",
        "--output",
        str(tmp_path / "o"),
        *SMALL,
    )
    assert status == 0, err
    # The digit-line generator's options mean nothing for a folder: not logged as params.
    params = mlflow.search_runs(output_format="list", order_by=["attributes.start_time DESC"])[0].data.params
    assert not {"lines", "digits", "test_digits", "max_gap", "jitter"} & set(params) and params["data"] == folder
    status, out, err = run_cli("predict", str(tmp_path / "o"), os.path.join(folder, "line0.png"))
    assert status == 0, err
    text = out.split(": ", 1)[1].rsplit(" (", 1)[0]
    assert text == "(nothing read)" or set(text) <= set(loaded.alphabet)


def _bad_folder(case, tmp_path):
    if case == "missing_labels":
        folder = _write_folder(tmp_path / "d", count=5)
        os.remove(os.path.join(folder, "labels.csv"))
        return folder, "No labels.csv"
    if case == "missing_image":
        return _write_folder(tmp_path / "d", count=10, rows=["ghost.png,abc"]), "names image 'ghost.png'"
    if case == "empty_label":
        return _write_folder(tmp_path / "d", count=10, rows=["line0.png,"]), "has an empty words"
    if case == "unseen_character":
        # Fifty "ab" lines and one "z": wherever the split puts the z line, it is not training data...
        folder = _write_folder(tmp_path / "d", count=50)
        rows = (tmp_path / "d" / "labels.csv").read_text().splitlines()
        rows = [rows[0]] + [f"{r.split(',')[0]},ab" for r in rows[1:]] + ["line0.png,abz"]
        (tmp_path / "d" / "labels.csv").write_text("\n".join(rows) + "\n")
        return folder, "Character 'z' in the "
    if case == "wrong_column":
        return _write_folder(tmp_path / "d", count=5), "no column 'text'"
    if case == "unreadable_image":
        # Every text "ab", so that no split check stops the load before the images are read.
        folder = _write_folder(tmp_path / "d", count=20)
        rows = (tmp_path / "d" / "labels.csv").read_text().splitlines()
        (tmp_path / "d" / "labels.csv").write_text("\n".join([rows[0]] + [f"{r.split(',')[0]},ab" for r in rows[1:]]))
        (tmp_path / "d" / "line3.png").write_text("not an image")
        return folder, "Cannot read image"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case", ["missing_labels", "missing_image", "empty_label", "unseen_character", "wrong_column", "unreadable_image"]
)
def test_bad_own_data_is_one_line_exit_2_and_leaves_no_run(run_cli, tracking_uri, tmp_path, case):
    folder, message = _bad_folder(case, tmp_path)
    extra = ["--text-column", "text"] if case == "wrong_column" else []
    if case == "unseen_character":
        # ...unless the split puts it in training: pick a seed whose permutation puts the last of the
        # 51 rows among the first 15 (10 test rows, then 5 validation rows).
        seed = next(s for s in range(100) if 50 in np.random.default_rng(s).permutation(51)[:15])
        extra = ["--seed", str(seed)]
    before = len(mlflow.search_runs(search_all_experiments=True, output_format="list"))
    status, out, err = run_cli("train", "ocr", "--data", folder, "--epochs", "1", *extra)
    assert status == 2, err
    assert err.startswith("zoo: error: ") and err.count("\n") == 1, err
    assert message in err
    if case == "unseen_character":
        assert "line0.png" in err
    assert not running_runs(tracking_uri)
    assert len(mlflow.search_runs(search_all_experiments=True, output_format="list")) == before
