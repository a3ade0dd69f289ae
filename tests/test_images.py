"""Image loaders: digits, tensorflow-datasets (mocked, and absent), folders of images, raw image files."""

import os
import time

import numpy as np
import pytest
from PIL import Image

from zoo.datasets import images
from zoo.errors import ZooError

# Each class of the test folders is a flat grey level, so a loaded pixel tells its label.
LEVELS = {"dark": 40, "light": 200, "mid": 120}


def write_image(path, value, size=(10, 12), mode="L"):
    """A flat image (height, width) = size of grey `value`, in `mode` (L, RGB, RGBA), format by suffix."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    array = np.full(size, value, dtype="uint8")
    image = Image.fromarray(array).convert(mode)
    image.save(path)
    return path


def make_folder(root, counts=None, mode="L", suffixes=(".png",), size=(10, 12)):
    counts = counts or {"dark": 10, "light": 10}
    for name, count in counts.items():
        for index in range(count):
            suffix = suffixes[index % len(suffixes)]
            write_image(os.path.join(root, name, f"{index:03d}{suffix}"), LEVELS[name], size, mode)
    return str(root)


def assert_labels_match_pixels(x, y, class_names):
    for image, label in zip(x, y):
        expected = LEVELS[class_names[label]] / 255
        assert abs(float(image.mean()) - expected) < 0.02, (class_names[label], float(image.mean()))


# === digits ===


def test_digits_shape_range_and_deterministic_split():
    data = images.load("digits", seed=3)
    assert data.shape == (8, 8, 1)
    assert data.class_names == [str(d) for d in range(10)]
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (1258, 180, 359)
    assert data.x_train.dtype == np.float32 and 0.0 <= data.x_train.min() and data.x_train.max() == 1.0
    again = images.load("digits", seed=3)
    np.testing.assert_array_equal(data.y_test, again.y_test)
    assert not np.array_equal(data.y_test, images.load("digits", seed=4).y_test)


def test_pipeline_gives_raw_pixels_in_batches():
    data = images.load("digits")
    batch_x, batch_y = next(iter(images.pipeline(data.x_train, data.y_train, 16, shuffle=True, seed=0)))
    assert tuple(batch_x.shape) == (16, 8, 8, 1) and tuple(batch_y.shape) == (16,)
    assert float(batch_x.numpy().max()) == 255.0


# === folders ===


def test_folder_grayscale_keeps_common_size_and_labels(tmp_path):
    folder = make_folder(tmp_path / "shades", {"dark": 10, "light": 10}, suffixes=(".png", ".bmp", ".JPG"))
    data = images.load(folder=folder, seed=0)
    assert data.shape == (10, 12, 1)
    assert data.class_names == ["dark", "light"]
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 20
    assert min(len(data.x_val), len(data.x_test)) >= 1
    assert data.spec()["color_mode"] == "grayscale"
    assert_labels_match_pixels(
        np.concatenate([data.x_train, data.x_test]), np.concatenate([data.y_train, data.y_test]), data.class_names
    )


def test_folder_colour_mixed_sizes_resized(tmp_path, capsys):
    root = tmp_path / "mixed"
    make_folder(root, {"dark": 6}, mode="RGB", suffixes=(".jpg", ".gif"), size=(20, 30))
    make_folder(root, {"light": 6}, mode="RGBA", suffixes=(".png",), size=(9, 9))
    make_folder(root, {"mid": 6}, mode="L", suffixes=(".png",), size=(40, 16))
    data = images.load(folder=str(root), image_size=(16, 16))
    assert data.shape == (16, 16, 3) and data.num_classes == 3
    assert data.spec()["resized_to"] == [16, 16]
    assert_labels_match_pixels(data.x_train, data.y_train, data.class_names)
    # Without a size, differing sizes fall back to 64x64 and say so.
    assert images.load(folder=str(root)).shape == (64, 64, 3)
    assert "--image-size" in capsys.readouterr().err


def test_folder_forced_grayscale(tmp_path):
    folder = make_folder(tmp_path / "rgb", mode="RGB", suffixes=(".png", ".gif", ".bmp"))
    data = images.load(folder=folder, color_mode="grayscale")
    assert data.shape == (10, 12, 1)
    assert_labels_match_pixels(data.x_train, data.y_train, data.class_names)


def test_folder_with_train_and_test_subfolders_keeps_the_split(tmp_path):
    make_folder(tmp_path / "split" / "train", {"dark": 8, "light": 8})
    make_folder(tmp_path / "split" / "test", {"dark": 3, "light": 2})
    data = images.load(folder=str(tmp_path / "split"))
    assert len(data.x_test) == 5 and len(data.x_train) + len(data.x_val) == 16
    assert data.spec()["layout"] == "split folders"
    assert_labels_match_pixels(data.x_test, data.y_test, data.class_names)


def test_corrupt_image_fails_with_its_path(tmp_path):
    folder = make_folder(tmp_path / "broken")
    bad = os.path.join(folder, "light", "bad.png")
    with open(bad, "wb") as handle:
        handle.write(b"\x89PNG but not really")
    with pytest.raises(ZooError, match="`skip_corrupt=True`") as info:
        images.load(folder=folder)
    assert bad in str(info.value) and "\n" not in str(info.value)


def test_skip_corrupt_leaves_it_out_with_a_warning(tmp_path, capsys):
    folder = make_folder(tmp_path / "broken")
    good = os.path.join(folder, "dark", "000.png")
    truncated = os.path.join(folder, "dark", "005.png")
    with open(good, "rb") as handle:
        data = handle.read()
    with open(truncated, "wb") as handle:
        handle.write(data[: len(data) // 2])
    loaded = images.load(folder=folder, skip_corrupt=True)
    assert len(loaded.x_train) + len(loaded.x_val) + len(loaded.x_test) == 19
    assert loaded.spec()["skipped_files"] == 1
    assert truncated in capsys.readouterr().err
    # Dropping the bad file must not shift the labels of the files after it.
    assert_labels_match_pixels(loaded.x_train, loaded.y_train, loaded.class_names)


def test_unsupported_formats_are_reported(tmp_path, capsys):
    folder = make_folder(tmp_path / "tiff")
    write_image(os.path.join(folder, "dark", "scan.tif"), 40)
    images.load(folder=folder)
    assert "scan.tif" in capsys.readouterr().err


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "not found"),
        ("file", "is a file"),
        ("empty", "is empty"),
        ("loose", "no class subfolders"),
        ("single", "single class"),
        ("no_images", "has no images"),
        ("too_few", "too few"),
    ],
)
def test_bad_folders(tmp_path, case, message):
    root = tmp_path / "data"
    if case == "file":
        root = tmp_path / "x.png"
        write_image(str(root), 0)
    elif case == "empty":
        root.mkdir()
    elif case == "loose":
        write_image(str(root / "a.png"), 0)
    elif case == "single":
        make_folder(root, {"dark": 5})
    elif case == "no_images":
        make_folder(root, {"dark": 5})
        (root / "light").mkdir()
        (root / "light" / "notes.txt").write_text("no images here")
    elif case == "too_few":
        make_folder(root, {"dark": 2, "light": 2})
    with pytest.raises(ZooError, match=message) as info:
        images.load(folder=str(root))
    assert "\n" not in str(info.value)


# === tensorflow-datasets ===


def test_tfds_mock_mnist_and_cifar10(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=24):
        mnist = images.load("mnist", data_dir=str(tmp_path))
        cifar = images.load("cifar10", data_dir=str(tmp_path))
    assert mnist.shape == (28, 28, 1) and mnist.num_classes == 10
    assert len(mnist.x_test) == 24 and len(mnist.x_train) + len(mnist.x_val) == 24
    assert mnist.x_train.dtype == np.float32 and mnist.x_train.max() <= 1.0
    # Offline, tfds knows cifar10's class count but not its names (they come with the data).
    assert cifar.shape == (32, 32, 3) and cifar.num_classes == 10
    assert mnist.source == "tensorflow-datasets:mnist"


def test_tfds_variable_size_images_are_resized(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        flowers = images.load("tf_flowers", data_dir=str(tmp_path), image_size=(20, 24))
    assert flowers.shape == (20, 24, 3) and flowers.num_classes == 5
    # tf_flowers has no test split: it is carved out of train.
    assert len(flowers.x_test) >= 1


def test_tfds_above_the_threshold_streams_records_never_a_whole_split(tmp_path, monkeypatch):
    # 200 mock images resized to 64x64: a split of them as float32 is 2.6 MB, a batch of 32 0.5 MB.
    import tracemalloc

    import tensorflow_datasets as tfds

    from zoo import training
    from zoo.datasets import streaming

    def load(threshold):
        monkeypatch.setenv(streaming.THRESHOLD_ENV, threshold)
        peaks = []
        tracemalloc.start()
        data = images.load("mnist", data_dir=str(tmp_path), seed=3, image_size=(64, 64))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        # Not measured: tracing the pipeline's functions (megabytes of short-lived Python objects).
        epoch = images.to_dataset(data.x_train, data.y_train, seed=3).as_numpy_iterator()
        tracemalloc.start()
        seen = [ids(x) for x, _ in epoch]  # one epoch, keeping only a fingerprint of each image
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        return data, sorted(sum(seen, [])), max(peaks)

    def ids(pixels):  # each random image is its own fingerprint
        return sorted(hash(np.round(image).astype("uint8").tobytes()) for image in pixels)

    with tfds.testing.mock_data(num_examples=200):
        whole, _, whole_peak = load(str(10**12))
        streamed, epoch, peak = load("0")
        assert isinstance(streamed.x_train, images.TfdsImages) and streamed.details["streamed"]
        # The in-memory path stacks the split (NumPy, which tracemalloc sees); the stream holds
        # a batch or two.
        split_bytes = whole.x_train.nbytes
        assert whole_peak > split_bytes > 2 * peak, (whole_peak, peak, split_bytes)
        assert streamed.spec()["rows"] == whole.spec()["rows"] and streamed.shape == (64, 64, 1)
        assert sum(streamed.details["images_per_class"].values()) == 400
        # The same rows in each split (validation carved out of train with the same seed).
        assert epoch == ids(whole.x_train * 255)
        assert ids(streamed.x_val[np.arange(len(streamed.y_val))] * 255) == ids(whole.x_val * 255)
        assert sorted(streamed.y_train) == sorted(whole.y_train)
        # Every example once per epoch, reshuffled each epoch; a resume reads epoch 1 as it was.
        rows = len(streamed.y_train)
        train = images.to_dataset(streamed.x_train, streamed.y_train, seed=3)
        endless, steps = training.training_batches(train, rows, 50, 3, streamed=True)
        seen = [x for x, _ in endless.take(2 * steps).as_numpy_iterator()]
        assert ids(np.concatenate(seen[:steps])) == ids(np.concatenate(seen[steps:])) == ids(whole.x_train * 255)
        assert not np.array_equal(seen[0], seen[steps])
        # A resumed process builds its pipeline anew (a pipeline's shuffle carries on its seeds).
        train = images.to_dataset(streamed.x_train, streamed.y_train, seed=3)
        resumed, _ = training.training_batches(train, rows, 50, 3, initial_epoch=1, streamed=True)
        for ours, theirs in zip((x for x, _ in resumed.take(steps).as_numpy_iterator()), seen[steps:], strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_tfds_without_data_fails_fast_and_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    started = time.perf_counter()
    with pytest.raises(ZooError) as info:
        images.load("fashion_mnist")
    assert time.perf_counter() - started < 15
    message = str(info.value)
    for needed in ("`data_dir=DIR`", "TFDS_DATA_DIR", "`dataset=digits`", str(tmp_path / "tfds")):
        assert needed in message
    assert "\n" not in message


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ZooError, match="Did you mean 'mnist'") as info:
        images.load("mnst")
    assert "digits" in str(info.value) and "cifar10" in str(info.value)
    with pytest.raises(ZooError, match="Unknown image dataset"):
        images.load("../etc/passwd")


def test_tfds_dataset_that_is_not_images():
    with pytest.raises(ZooError, match="not image classification"):
        images.load("imdb_reviews")


def test_bad_arguments():
    with pytest.raises(ZooError, match="`image_size`"):
        images.load("digits", image_size=(8,))
    with pytest.raises(ZooError, match="8x8"):
        images.load("digits", image_size=(28, 28))
    with pytest.raises(ZooError, match="test-fraction"):
        images.load("digits", test_fraction=0.7)


# === raw image files ===


def test_read_images_resizes_converts_and_inverts(tmp_path):
    gray = write_image(str(tmp_path / "g.png"), 40, size=(32, 32))
    colour = write_image(str(tmp_path / "c.jpg"), 200, size=(16, 16), mode="RGB")
    pixels = images.read_images([gray], (8, 8), 1)
    assert pixels.shape == (1, 8, 8, 1) and np.allclose(pixels, 40)
    assert np.allclose(images.read_images([gray], (8, 8), 1, invert=True), 215)
    with pytest.raises(ZooError, match="3 channel.*takes 1.*`convert=True`"):
        images.read_images([colour], (8, 8), 1)
    converted = images.read_images([colour, gray], (4, 4), 3, convert=True)
    assert converted.shape == (2, 4, 4, 3) and abs(float(converted[0].mean()) - 200) < 3


def test_read_images_bad_files(tmp_path):
    with pytest.raises(ZooError, match="not found"):
        images.read_images([str(tmp_path / "nope.png")], (8, 8), 1)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(ZooError, match="Cannot read image .*corrupt.png"):
        images.read_images([str(corrupt)], (8, 8), 1)
