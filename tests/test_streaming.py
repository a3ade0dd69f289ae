"""Data larger than memory: a CSV streamed in chunks gives what the in-memory path gives.

Every test forces the streaming path on a small file: `ZOO_STREAM_BYTES=0` streams any CSV, and
`streaming.CHUNK_ROWS` is cut to a few dozen rows so that a file of a few thousand rows spans many
chunks (a bad row is found many chunks deep, statistics merge across chunks).
"""

import functools

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
from baselines import assert_beats, count, majority_count
from conftest import running_runs
from test_splits import assert_partition

from zoo import training
from zoo.datasets import splits, streaming, tabular
from zoo.errors import ZooError

ROWS = 2400


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 64)
    monkeypatch.setattr(streaming, "SHUFFLE_ROWS", 256)
    monkeypatch.setenv(streaming.THRESHOLD_ENV, "0")


def _table(path, rows=ROWS, seed=0):
    """A learnable table: the label follows x and the colour; ids, empty cells and label-less rows."""
    rng = np.random.default_rng(seed)
    x = rng.normal(5.0, 2.0, rows)
    colour = rng.choice(["red", "green", "blue"], rows)
    label = np.where(x + 2.0 * (colour == "red") + rng.normal(0, 0.5, rows) > 6.0, "yes", "no")
    frame = pd.DataFrame(
        {"row_id": np.arange(rows) + 1000, "x": x, "level": rng.integers(1, 5, rows), "colour": colour, "label": label}
    )
    frame.loc[frame.sample(40, random_state=1).index, "x"] = np.nan
    frame.loc[[5, rows - 7], "label"] = np.nan
    frame.to_csv(path, index=False)
    return frame


def _ids(frame):
    return frame["row_id"].round().astype(int).tolist()


def test_streamed_table_splits_and_describes_like_the_in_memory_path(tmp_path, small_chunks):
    frame = _table(tmp_path / "t.csv")
    whole = tabular.prepare(tabular.read_csv(str(tmp_path / "t.csv"), "label"), seed=7)
    streamed = streaming.scan(str(tmp_path / "t.csv"), "label", seed=7)
    assert streamed.split.n == ROWS - 2 and streamed.split.n > 30 * streaming.CHUNK_ROWS
    train = [i for chunk in streamed.chunks(splits.TRAIN) for i in _ids(chunk)]
    # Same rows in each split, disjoint, every labelled row once.
    assert sorted(train) == sorted(_ids(whole.train))
    assert sorted(_ids(streamed.validation)) == sorted(_ids(whole.validation))
    assert sorted(_ids(streamed.test)) == sorted(_ids(whole.test))
    assert_partition(train, _ids(streamed.validation), _ids(streamed.test), _ids(frame[frame["label"].notna()]))
    # Same statistics: task, classes, kinds, vocabularies, normalization, missing counts.
    assert (streamed.task, streamed.class_names, streamed.filled) == (whole.task, whole.class_names, whole.filled)
    assert streamed.filled == {"x": int(frame.loc[frame["label"].notna(), "x"].isna().sum())}
    assert streamed.features.keys() == whole.features.keys()
    for column, feature in whole.features.items():
        mine = streamed.features[column]
        if feature["kind"] == "numeric":
            assert mine["kind"] == "numeric"
            assert mine["mean"] == pytest.approx(feature["mean"], rel=1e-5)
            assert mine["variance"] == pytest.approx(feature["variance"], rel=1e-4)
        else:
            assert mine == feature
    # The streamed training rows are cast and filled like the in-memory ones.
    streamed_inputs, streamed_labels = streamed.arrays(pd.concat(streamed.chunks(splits.TRAIN)).sort_values("row_id"))
    whole_inputs, whole_labels = whole.arrays(whole.train.sort_values("row_id"))
    np.testing.assert_array_equal(streamed_labels, whole_labels)
    for column, values in whole_inputs.items():
        assert streamed_inputs[column].dtype == values.dtype
        if values.dtype.kind == "f":
            np.testing.assert_allclose(streamed_inputs[column], values, rtol=1e-6)
        else:
            np.testing.assert_array_equal(streamed_inputs[column], values)


def test_streamed_mlp_trains_above_the_majority_class_and_logs_the_file_without_its_rows(
    tmp_path, tracking_uri, small_chunks
):
    _table(tmp_path / "t.csv")
    result = training.train("mlp", {"data": str(tmp_path / "t.csv"), "target": "label", "epochs": 3, "batch_size": 64})
    run = mlflow.MlflowClient(tracking_uri).get_run(result.run_id)
    assert run.data.params["data.streamed.chunk_rows"] == "64"
    test = streaming.scan(str(tmp_path / "t.csv"), "label", seed=42).test
    rows = len(test)
    assert_beats(count(result.metrics["test_accuracy"], rows), majority_count(test["label"]), 20, rows, "streamed mlp")
    records = {d.dataset.name: d.dataset for d in run.inputs.dataset_inputs}
    train = records["t-train"]
    assert train.digest == streaming.file_digest(str(tmp_path / "t.csv"))
    assert f'"num_rows": {ROWS - 2 - 2 * round((ROWS - 2) * 0.1)}' in train.profile
    assert "row_id" in train.schema and "colour" in train.schema


def _epoch_ids(batches, steps, epochs):
    """Row ids of each epoch's batches, in order, reading a Keras `PyDataset` or a tf.data iterator."""
    if hasattr(batches, "on_epoch_end"):
        orders = []
        for _ in range(epochs):
            orders.append([_ids_of(batches[i]) for i in range(steps)])
            batches.on_epoch_end()
        return orders
    iterator = iter(batches)
    return [[_ids_of(next(iterator)) for _ in range(steps)] for _ in range(epochs)]


def _ids_of(batch):
    return np.round(np.asarray(batch[0]["row_id"]).reshape(-1)).astype(int).tolist()


def test_stream_off_tensorflow_gives_the_tf_data_batches_and_resumes_exactly(tmp_path, small_chunks):
    # The NumPy stream that JAX and PyTorch train on (tests/test_pipelines.py runs it with
    # TensorFlow blocked) yields, batch for batch, what the tf.data stream yields.
    import functools

    _table(tmp_path / "t.csv")
    streamed = streaming.scan(str(tmp_path / "t.csv"), "label", seed=7)
    rows = streamed.num_train
    stream = training.Stream(functools.partial(streamed.batches, 7), rows)
    numpy_batches, steps = training.training_batches(stream, rows, 100, 7)
    tf_batches, tf_steps = training.training_batches(streamed.train_dataset(7), rows, 100, 7, streamed=True)
    assert steps == tf_steps == -(-rows // 100)
    numpy_epochs = _epoch_ids(numpy_batches, steps, 3)
    assert numpy_epochs == _epoch_ids(tf_batches, steps, 3)
    assert [len(ids) for ids in numpy_epochs[0]] == [100] * (steps - 1) + [rows - 100 * (steps - 1)]
    orders = [sum(epoch, []) for epoch in numpy_epochs]
    for order in orders:
        assert sorted(order) == sorted(i for chunk in streamed.chunks(splits.TRAIN) for i in _ids(chunk))
    assert orders[0] != orders[1]  # shuffled again each pass
    resumed, _ = training.training_batches(stream, rows, 100, 7, initial_epoch=2)
    assert _epoch_ids(resumed, steps, 1)[0] == numpy_epochs[2]
    # A read out of order (Keras peeking at a batch) reopens the pass and gives the same batch.
    peeked, _ = training.training_batches(stream, rows, 100, 7, initial_epoch=1)
    assert _ids_of(peeked[3]) == numpy_epochs[1][3] and _ids_of(peeked[0]) == numpy_epochs[1][0]


@pytest.mark.parametrize(
    "line, pattern",
    [
        (
            "1999,5.0,2,red,yes,extra",
            r"Cannot parse .*bad\.csv as CSV \(.*line 2001, saw 6\)\. Check the file's format\.",
        ),
        ("1999,five,2,red,yes", r"Column 'x' is numeric but row 2001 holds 'five', which is not a number"),
        ("1999,inf,2,red,yes", r"Column 'x' of bad holds inf at row 2001 \(1 such cell\(s\)\)"),
    ],
)
def test_bad_row_deep_in_a_streamed_file_is_one_line_exit_2_and_no_run(
    tmp_path, run_cli, tracking_uri, small_chunks, monkeypatch, line, pattern
):
    import re

    _table(tmp_path / "bad.csv")
    lines = (tmp_path / "bad.csv").read_text().splitlines()
    lines[2000] = line  # line 2001 of the file: 31 chunks of 64 rows in
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    before = len(mlflow.search_runs(search_all_experiments=True, output_format="list"))
    status, _, err = run_cli("train", "mlp", "--data", tmp_path / "bad.csv", "--target", "label", "--epochs", "1")
    assert status == 2, err
    assert err.startswith("zoo: error: ") and err.count("\n") == 1, err
    assert re.search(pattern, err), err
    assert not running_runs(tracking_uri)
    assert len(mlflow.search_runs(search_all_experiments=True, output_format="list")) == before
    # The in-memory path says the same.
    streaming_err = err
    monkeypatch.setenv(streaming.THRESHOLD_ENV, str(10**12))
    status, _, err = run_cli("train", "mlp", "--data", tmp_path / "bad.csv", "--target", "label", "--epochs", "1")
    assert (status, err) == (2, streaming_err)


# === Image folders ===


def _photos(folder, count=72):
    """Grayscale PNGs, 12x10, whose first pixel is the image's id; the class shows in one corner."""
    from PIL import Image

    for i in range(count):
        pixels = np.zeros((12, 10), dtype="uint8")
        pixels[0, 0] = i
        pixels[6:, 5:] = (0, 120, 240)[i % 3]
        (folder / "abc"[i % 3]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / "abc"[i % 3] / f"{i}.png")


def test_streamed_image_folder_lists_what_the_in_memory_path_reads(tmp_path, monkeypatch):
    from zoo.datasets import images

    _photos(tmp_path / "photos")
    monkeypatch.setenv(streaming.THRESHOLD_ENV, str(10**12))
    whole = images.load(folder=tmp_path / "photos", seed=1)
    monkeypatch.setenv(streaming.THRESHOLD_ENV, "0")
    listed = images.load(folder=tmp_path / "photos", seed=1)
    assert isinstance(listed.x_train, images.FolderImages) and not isinstance(whole.x_train, images.FolderImages)
    assert (listed.class_names, listed.shape, listed.spec()["rows"]) == (
        whole.class_names,
        whole.shape,
        whole.spec()["rows"],
    )
    assert listed.details["images_per_class"] == {"a": 24, "b": 24, "c": 24}
    for lazy, arrays in ((listed.y_train, whole.y_train), (listed.y_val, whole.y_val), (listed.y_test, whole.y_test)):
        np.testing.assert_array_equal(lazy, arrays)
    # Decoded on demand, the same pixels; the training pipeline decodes each image as it reads it.
    np.testing.assert_allclose(listed.x_test[np.arange(len(listed.y_test))], whole.x_test, atol=1e-6)
    pixels, labels = zip(*images.to_dataset(listed.x_train, listed.y_train, seed=0).unbatch().as_numpy_iterator())
    ids = np.round(np.stack(pixels)[:, 0, 0, 0]).astype(int)
    assert sorted(ids) == sorted(np.round(whole.x_train[:, 0, 0, 0] * 255).astype(int))
    np.testing.assert_array_equal(np.array(labels), ids % 3)
    # Off TensorFlow the same listing is a `Stream`: Pillow and NumPy's area resize give
    # TensorFlow's pixels (here resized 12x10 -> 7x9, colour and grey) within 0.001 of 255.
    for mode in ("rgb", "grayscale"):
        resized = images.FolderImages(listed.x_test.paths, (7, 9), mode)
        for path in resized.paths[:6]:
            difference = np.abs(resized.read(path) - np.asarray(resized.decode(path)))
            assert difference.max() <= 1e-3, (mode, path, difference.max())
    stream = training.Stream(functools.partial(listed.x_train.batches, listed.y_train, 3), len(listed.x_train))
    batches, steps = training.training_batches(stream, len(stream), 10, seed=3)
    epochs = []
    for _ in range(3):
        parts = [batches[i] for i in range(steps)]
        ids = np.concatenate([np.round(x[:, 0, 0, 0]).astype(int) for x, _ in parts])
        assert sorted(ids) == sorted(np.round(whole.x_train[:, 0, 0, 0] * 255).astype(int))  # each image once
        np.testing.assert_array_equal(np.concatenate([y for _, y in parts]), ids % 3)
        epochs.append(ids)
        batches.on_epoch_end()
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled every epoch, from (seed, epoch)
    resumed, _ = training.training_batches(stream, len(stream), 10, seed=3, initial_epoch=2)
    resumed_ids = np.concatenate([resumed[i][0][:, 0, 0, 0] for i in range(steps)])
    np.testing.assert_array_equal(np.round(resumed_ids).astype(int), epochs[2])


def test_streamed_image_folder_trains_and_an_unreadable_image_names_its_path(
    tmp_path, run_cli, tracking_uri, monkeypatch
):
    monkeypatch.setenv(streaming.THRESHOLD_ENV, "0")
    _photos(tmp_path / "photos", count=90)
    status, out, err = run_cli(
        "train", "cnn", "--data", tmp_path / "photos", "--epochs", "3", "--batch-size", "16", "--worst-images", "3"
    )
    assert status == 0, err
    run = mlflow.MlflowClient(tracking_uri).get_run(out.split("run ")[1].split()[0])
    assert run.data.params["data.streamed"] == "True"
    records = {d.dataset.name: d.dataset for d in run.inputs.dataset_inputs}
    assert '"num_rows": 18' in records["photos-test"].profile
    (tmp_path / "photos" / "b" / "40.png").write_bytes(b"not an image")
    before = len(mlflow.search_runs(search_all_experiments=True, output_format="list"))
    status, _, err = run_cli("train", "cnn", "--data", tmp_path / "photos", "--epochs", "1")
    assert status == 2 and err.count("\n") == 1, err
    assert f"Cannot read image {tmp_path / 'photos' / 'b' / '40.png'}" in err
    assert not running_runs(tracking_uri)
    assert len(mlflow.search_runs(search_all_experiments=True, output_format="list")) == before

    # An image that turns unreadable once the run has started fails inside tf.data, whose error names
    # no file: the run still ends FAILED with the one line that names it.
    _photos(tmp_path / "photos", count=90)

    class Corrupt(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            (tmp_path / "photos" / "b" / "40.png").write_bytes(b"not an image")

    options = {"data": str(tmp_path / "photos"), "epochs": 1, "experiment": "turned-unreadable"}
    with pytest.raises(ZooError, match=f"^Cannot read image {tmp_path / 'photos' / 'b' / '40.png'}: "):
        training.train("cnn", options, callbacks=[Corrupt()])
    (failed,) = mlflow.search_runs(experiment_names=["turned-unreadable"], output_format="list")
    assert failed.info.status == "FAILED" and "Cannot read image" in failed.data.tags["zoo.failure"]
