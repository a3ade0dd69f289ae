"""Every loader's train, validation and test splits partition its rows, checked by row identity.

Sizes alone do not show a leak: validation rows drawn from the training rows keep every size. Each
test tags the rows with a unique id (a column, a pixel, a word, a bit pattern), reads the ids back
out of the three splits, and checks that the splits are pairwise disjoint and together hold every
row exactly once.
"""

import collections
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from zoo import training
from zoo.datasets import images, sequences, tabular


def assert_partition(train, validation, test, rows):
    """`train`, `validation` and `test` (ids) split `rows` (ids): disjoint, each row exactly once."""
    splits = {"train": list(train), "validation": list(validation), "test": list(test)}
    for name, ids in splits.items():
        assert ids, f"{name} is empty"
        repeated = [i for i, n in collections.Counter(ids).items() if n > 1]
        assert not repeated, f"{name} holds rows {repeated[:5]} more than once"
    for first, second in (("train", "validation"), ("train", "test"), ("validation", "test")):
        shared = set(splits[first]) & set(splits[second])
        assert not shared, f"{first} and {second} share rows {sorted(shared)[:5]}"
    held = collections.Counter(splits["train"] + splits["validation"] + splits["test"])
    assert held == collections.Counter(rows), "the splits do not hold every row exactly once"


def _image_ids(x):
    """One id per image: its pixels as bytes (every image of these datasets is distinct)."""
    x = np.asarray(x, dtype="float32")
    return [row.tobytes() for row in x.reshape(len(x), -1)]


def _load_recipe_data(name, options):
    recipe = training.get_recipe(name)
    return recipe.load_data(training.make_config(recipe, options)[0])


# === Tables ===


@pytest.mark.parametrize("seed", [0, 42])
def test_csv_table_through_the_mlp_recipe(tmp_path, seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"row_id": np.arange(97) + 1000, "x": rng.random(97), "label": rng.integers(0, 2, 97)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    data = _load_recipe_data("mlp", {"data": str(tmp_path / "t.csv"), "target": "label", "seed": seed})
    splits = data.loaded
    ids = [split["row_id"].round().astype(int).tolist() for split in (splits.train, splits.validation, splits.test)]
    assert_partition(*ids, frame["row_id"].tolist())


@pytest.mark.parametrize("name", sorted(tabular.EMBEDDED))
def test_embedded_tables(name):
    table = tabular.load_embedded(name)
    # `prepare` keeps the frame's row labels (0..n-1 once rows without a target are dropped).
    splits = tabular.prepare(table, seed=3)
    ids = [split.index.tolist() for split in (splits.train, splits.validation, splits.test)]
    assert_partition(*ids, range(len(table.frame)))


def test_rbm_binary_csv(tmp_path):
    # Each row's id written in binary over 10 columns of 0/1: the visible units carry the identity.
    rows = 150
    bits = (np.arange(rows)[:, None] >> np.arange(10)) & 1
    frame = pd.DataFrame(bits, columns=[f"b{i}" for i in range(10)])
    frame["label"] = np.arange(rows) % 2
    frame.to_csv(tmp_path / "bits.csv", index=False)
    data = _load_recipe_data("rbm", {"data": str(tmp_path / "bits.csv"), "target": "label"})
    ids = []
    for split in ("train", "validation", "test"):
        x, y = data.loaded.splits[split]
        numbers = (x.round().astype(int) << np.arange(10)).sum(axis=1)
        np.testing.assert_array_equal(y, numbers % 2)  # labels travel with their rows
        ids.append(numbers.tolist())
    assert_partition(*ids, range(rows))


# === Images ===


@pytest.mark.parametrize("seed", [0, 42])
def test_digits(seed):
    import sklearn.datasets

    everything = _image_ids((sklearn.datasets.load_digits().images / 16.0).astype("float32")[..., None])
    data = images.load("digits", seed=seed)
    assert_partition(_image_ids(data.x_train), _image_ids(data.x_val), _image_ids(data.x_test), everything)


def _write_id_images(folder, ids, classes=("a", "b")):
    """8x8 grayscale PNGs whose first pixel is the image's id, in one subfolder per class."""
    for i in ids:
        pixels = np.zeros((8, 8), dtype="uint8")
        pixels[0, 0] = i
        pixels[4:, 4:] = 200 * (i % 2)
        target = folder / classes[i % 2]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target / f"{i}.png")


def _folder_ids(x):
    return np.round(np.asarray(x)[:, 0, 0, 0] * 255).astype(int).tolist()


def test_class_folders(tmp_path):
    _write_id_images(tmp_path / "photos", range(60))
    data = images.load(folder=tmp_path / "photos", seed=1)
    assert_partition(_folder_ids(data.x_train), _folder_ids(data.x_val), _folder_ids(data.x_test), range(60))
    # Labels travel with their images.
    for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)):
        np.testing.assert_array_equal(y, np.asarray(_folder_ids(x)) % 2)


def test_split_folders_keep_their_test_images_and_carve_validation_from_train(tmp_path):
    _write_id_images(tmp_path / "photos" / "train", range(40))
    _write_id_images(tmp_path / "photos" / "test", range(40, 60))
    data = images.load(folder=tmp_path / "photos", seed=1)
    assert sorted(_folder_ids(data.x_test)) == list(range(40, 60))
    assert_partition(_folder_ids(data.x_train), _folder_ids(data.x_val), _folder_ids(data.x_test), range(60))


def test_tensorflow_datasets_mock(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=30, data_dir=str(tmp_path)):
        data = images.load("mnist", seed=5)
        originals = {
            split: [
                image.astype("float32") / 255.0
                for image, _ in tfds.as_numpy(tfds.load("mnist", split=split, as_supervised=True, download=False))
            ]
            for split in ("train", "test")
        }
    # The mock draws the test split with the same generator as the train split, so the test rows
    # repeat the training rows' pixels: check that test is tfds's test split and that train and
    # validation partition tfds's train split.
    train_ids = _image_ids(np.stack(originals["train"]))
    assert len(set(train_ids)) == 30
    assert sorted(_image_ids(data.x_test)) == sorted(_image_ids(np.stack(originals["test"])))
    assert_partition(_image_ids(data.x_train), _image_ids(data.x_val), ["test"], train_ids + ["test"])


# === Sequences ===


@pytest.mark.parametrize("loader", [sequences.digit_rows, sequences.digit_captions])
def test_digit_sequences(loader):
    import sklearn.datasets

    everything = _image_ids(sklearn.datasets.load_digits().images / 16.0)
    data = loader(seed=7)
    first = lambda x: x[0] if isinstance(x, tuple) else x  # noqa: E731 - captions: (images, previous tokens)
    ids = [_image_ids(first(x)) for x in (data.x_train, data.x_val, data.x_test)]
    assert_partition(*ids, everything)


def test_numeric_sequences_padded(tmp_path):
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 6, 50)
    # Every step of sequence i holds the value i (the padding value -1 never occurs).
    x = np.concatenate([np.full((n, 2), i, dtype="float32") for i, n in enumerate(lengths)])
    np.savez(tmp_path / "seqs.npz", x=x, y=np.arange(50) % 3, lengths=lengths)
    data = sequences.npz_sequences(str(tmp_path / "seqs.npz"), pad=True, seed=2)
    ids = [np.round(split[:, 0, 0]).astype(int).tolist() for split in (data.x_train, data.x_val, data.x_test)]
    assert_partition(*ids, range(50))
    for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)):
        np.testing.assert_array_equal(y, np.round(x[:, 0, 0]).astype(int) % 3)


def test_text_csv(tmp_path):
    # A row's id spelled in words the training texts all share, so the vocabulary keeps them.
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    texts = [" ".join(words[int(d)] for d in f"{i:02d}") for i in range(80)]
    pd.DataFrame({"text": texts, "label": np.arange(80) % 2}).to_csv(tmp_path / "t.csv", index=False)
    data = sequences.text_csv(str(tmp_path / "t.csv"), seed=4, sequence_length=2)

    def ids(x):
        return [int("".join(str(words.index(data.vocabulary[t])) for t in row)) for row in x]

    assert_partition(ids(data.x_train), ids(data.x_val), ids(data.x_test), range(80))


def test_ocr_line_folder(tmp_path):
    from zoo.datasets import text_lines

    rows = ["filename,words"]
    for i in range(40):
        Image.fromarray(np.full((8, 24), 255 - i, dtype="uint8")).save(tmp_path / f"line{i}.png")
        rows.append(f"line{i}.png,{'ab'[i % 2]}{'ba'[i % 2]}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    data = text_lines.load_folder(tmp_path, seed=3)
    ids = [
        sorted(os.path.basename(f) for f in data.extras["files"][split]) for split in ("train", "validation", "test")
    ]
    assert_partition(*ids, [f"line{i}.png" for i in range(40)])


# === The split itself ===


@pytest.mark.parametrize("n, seed", [(7, 0), (97, 42), (1000, 3)])
def test_row_by_row_split_puts_every_row_where_the_in_memory_split_does(n, seed):
    from zoo.datasets import splits

    train, validation, test = splits.split_rows(n, seed, 0.1, 0.2)
    assert_partition(train, validation, test, range(n))
    streamed = splits.RowSplit(n, seed, 0.1, 0.2)
    # Decided chunk by chunk, from row numbers alone.
    codes = np.concatenate([streamed.assign(np.arange(start, min(start + 10, n))) for start in range(0, n, 10)])
    for code, rows in ((splits.TRAIN, train), (splits.VALIDATION, validation), (splits.TEST, test)):
        assert sorted(np.flatnonzero(codes == code)) == sorted(rows)
    other = splits.split_rows(n, seed + 1, 0.1, 0.2)[2]
    assert sorted(other) != sorted(test)


def test_loaders_refuse_data_too_small_to_split_with_the_same_message():
    from zoo.datasets import splits
    from zoo.errors import ZooError

    frame = pd.DataFrame({"x": [0.1, 0.5, 0.9], "label": ["a", "b", "a"]})
    for load in (
        lambda: splits.split_rows(3, 0, 0.1, 0.2),
        lambda: splits.RowSplit(3, 0, 0.1, 0.2),
        lambda: tabular.prepare(tabular.Table(frame, "label", "memory", "tiny")),
        lambda: sequences.from_sequences(np.zeros((3, 4, 1)), np.array([0, 1, 0]), name="tiny"),
    ):
        with pytest.raises(ZooError, match=r"has 3 \w+( \w+)?: too few to split into train, validation and test"):
            load()


def test_imdb_reviews_validation_is_carved_from_tfds_train_and_test_is_tfds_test(tmp_path):
    import keras
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=40, data_dir=str(tmp_path)):
        data = sequences.imdb_reviews(seed=3, max_tokens=100000, sequence_length=50)
        originals = {
            split: [
                text.decode() for text, _ in tfds.as_numpy(tfds.load("imdb_reviews", split=split, as_supervised=True))
            ]
            for split in ("train", "test")
        }
    # The same vocabulary turns each original review into the row the loader made of it.
    vectorizer = keras.layers.TextVectorization(vocabulary=data.vocabulary, output_sequence_length=50)

    def ids(x):
        return [tuple(int(t) for t in row if t) for row in np.asarray(x)]

    train_ids = ids(vectorizer(np.array(originals["train"], dtype=object)))
    assert len(set(train_ids)) == 40, "the mock reviews are not distinct enough to identify rows"
    assert sorted(ids(data.x_test)) == sorted(ids(vectorizer(np.array(originals["test"], dtype=object))))
    assert_partition(ids(data.x_train), ids(data.x_val), ["test"], train_ids + ["test"])
