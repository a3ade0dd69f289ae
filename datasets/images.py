"""Image datasets as numpy arrays: scikit-learn's digits (offline default), tfds, local folders.

Every loader returns `ImageData`: float32 images in [0, 1] of shape (n, height, width, channels),
int64 labels, and a spec (shape, classes, class names, source). `to_dataset` and `pipeline` turn
the arrays into `tf.data` pipelines of raw pixels (0-255), which is what the image models take.

Sources:
- `digits`: scikit-learn's 1,797 real 8x8 handwritten digit scans, installed with scikit-learn.
- any tensorflow-datasets image-classification name (`mnist`, `fashion_mnist`, `cifar10`, ...),
  read from the tfds data directory, and downloaded there when it is missing and tensorflow-datasets'
  servers answer a probe within seconds (`download=False`, `--no-download`, forbids it). Offline,
  `load` fails at once with a message that says how to get the data (an unguarded `tfds.load`
  would retry for minutes).
- a folder with one subfolder of images per class (PNG, JPEG, BMP or GIF, grayscale or colour),
  read by `keras.utils.image_dataset_from_directory` and resized to one size. A folder whose
  subfolders are `train/`, `test/` (and optionally `validation/`), each holding the class
  subfolders, keeps that split.

Larger than memory: above `streaming.stream_threshold()` (`ZOO_STREAM_BYTES`, 64 MB of decoded
float32 pixels by default) the images are never stacked. A folder is listed (`FolderImages`), a
tfds split is read from its records with the images still encoded (`TfdsImages`, labels read
without decoding); both decode and resize batch by batch in the input pipeline, with the split
and class counts of the in-memory path. On TensorFlow that pipeline is `tf.data`; on JAX and
PyTorch a folder is read by Pillow and resized by area in NumPy (`FolderImages.batches`,
`area_resize`: TensorFlow's pixels within 0.001 of 255) in a `zoo.training.Stream`, so folders,
streamed or not, need no TensorFlow there. tfds needs TensorFlow on every backend.

Unreadable images in a folder: every file is decoded once before loading. By default the first
corrupt file stops the load with a `ZooError` naming its path (a silently smaller dataset is
worse than a clear stop); `skip_corrupt=True` (`--skip-corrupt`) leaves such files out and warns
with their paths on stderr.
"""

import dataclasses
import functools
import hashlib
import os
import re
import socket
import sys
import threading

import numpy as np

from zoo.datasets import splits, streaming
from zoo.errors import ZooError, closest

# What `keras.utils.image_dataset_from_directory` reads; other files in the folders are ignored.
IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
# Common image formats TensorFlow cannot decode: reported, so that they are not silently dropped.
UNSUPPORTED_FORMATS = (".tif", ".tiff", ".webp", ".heic", ".heif", ".avif", ".jp2", ".ppm", ".pgm")
# The largest value of a raw pixel: the image models take 0-255 and rescale inside.
PIXEL_MAX = 255.0
# Folder and variable-size tfds images are resized to this when no size is given and they do not
# share one size of at most MAX_NATIVE_SIDE pixels per side.
DEFAULT_IMAGE_SIZE = (64, 64)
MAX_NATIVE_SIDE = 256
# Area interpolation averages the pixels it merges, the right thing when shrinking photos.
RESIZE_METHOD = "area"
SPLIT_FOLDERS = {"train": "train", "validation": "validation", "val": "validation", "test": "test"}

# Named datasets, for help texts and error messages; any other tfds image-classification name works.
CATALOG = {
    "digits": "scikit-learn's 1,797 8x8 handwritten digits (offline, the default)",
    "mnist": "70,000 28x28 handwritten digits (tensorflow-datasets)",
    "fashion_mnist": "70,000 28x28 clothing images in 10 classes (tensorflow-datasets)",
    "cifar10": "60,000 32x32 colour photos in 10 classes (tensorflow-datasets)",
    "cifar100": "60,000 32x32 colour photos in 100 classes (tensorflow-datasets)",
    "emnist": "814,255 28x28 handwritten characters (tensorflow-datasets)",
    "kmnist": "70,000 28x28 cursive Japanese characters (tensorflow-datasets)",
    "svhn_cropped": "99,289 32x32 house-number digits from Street View (tensorflow-datasets)",
}


@dataclasses.dataclass
class ImageData:
    """Train/validation/test splits of images and labels, with what describes them.

    `details` holds loader facts worth logging (resize size, skipped files, ...); it joins `spec()`.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    name: str
    source: str
    details: dict = dataclasses.field(default_factory=dict)

    @property
    def shape(self):
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self):
        return len(self.class_names)

    def spec(self):
        return {
            "name": self.name,
            "source": self.source,
            "shape": list(self.shape),
            "num_classes": self.num_classes,
            "class_names": [str(c) for c in self.class_names],
            "rows": {"train": len(self.x_train), "validation": len(self.x_val), "test": len(self.x_test)},
            **self.details,
        }


def digits(seed=42, validation_fraction=0.1, test_fraction=0.2):
    """scikit-learn's 1,797 real 8x8 handwritten digit scans (values 0-16), scaled to [0, 1]."""
    import sklearn.datasets

    bunch = sklearn.datasets.load_digits()
    x = (bunch.images / 16.0).astype("float32")[..., np.newaxis]
    y = bunch.target.astype("int64")
    (xt, yt), (xv, yv), (xs, ys) = splits.split_arrays(
        (x, y), seed, validation_fraction, test_fraction, what="digits", unit="images"
    )
    return ImageData(xt, yt, xv, yv, xs, ys, [str(d) for d in range(10)], "digits", "sklearn.datasets.load_digits")


def load(
    dataset="digits",
    *,
    seed=42,
    data_dir=None,
    folder=None,
    image_size=None,
    validation_fraction=0.1,
    test_fraction=0.2,
    color_mode="auto",
    skip_corrupt=False,
    download=True,
):
    """Load a named image dataset or a folder of images.

    Args:
        dataset: `digits` (offline default) or a tensorflow-datasets image-classification name
            such as `mnist`, `fashion_mnist` or `cifar10` (see `CATALOG`).
        seed: seed of the split.
        data_dir: tensorflow-datasets data directory (default: TFDS_DATA_DIR or ~/tensorflow_datasets).
        folder: a folder with one subfolder of images per class; overrides `dataset`.
        image_size: (height, width) to resize folder or tfds images to; None keeps the size the
            images share (at most 256 per side), else 64x64. `digits` stays 8x8.
        validation_fraction: share of the training rows held out for validation.
        test_fraction: share held out for testing where the dataset has no test split.
        color_mode: for folders: `auto` (grayscale if every image is, else rgb), `grayscale`, `rgb`.
        skip_corrupt: for folders: leave unreadable images out with a warning instead of failing.
        download: for tensorflow-datasets: download missing data when its servers answer.

    Returns:
        `ImageData`.

    Raises:
        ZooError: for an unknown dataset, data that is not available offline, or an unusable folder.

    Example:
        >>> data = load("digits")
        >>> data.x_train.shape[1:], data.num_classes
        ((8, 8, 1), 10)
    """
    _check_fractions(validation_fraction, test_fraction)
    image_size = _check_image_size(image_size)
    if color_mode not in ("auto", "grayscale", "rgb"):
        raise ZooError(f"color_mode must be auto, grayscale or rgb. Received: color_mode={color_mode!r}")
    if folder is not None:
        return load_folder(
            folder,
            seed=seed,
            image_size=image_size,
            color_mode=color_mode,
            skip_corrupt=skip_corrupt,
            validation_fraction=validation_fraction,
            test_fraction=test_fraction,
        )
    if dataset == "digits":
        if image_size is not None and tuple(image_size) != (8, 8):
            raise ZooError(
                f"digits images are 8x8; drop `image_size` (received {image_size}) or use "
                "`dataset=mnist` for 28x28 digits."
            )
        return digits(seed, validation_fraction, test_fraction)
    return load_tfds(
        dataset,
        seed=seed,
        data_dir=data_dir,
        image_size=image_size,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        download=download,
    )


def _check_fractions(validation_fraction, test_fraction):
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 0.5:
            raise ZooError(f"--{name.replace('_', '-')} must be in (0, 0.5). Received: {value}")


def _check_image_size(image_size):
    if image_size is None or len(image_size) == 0:
        return None
    size = tuple(image_size)
    if len(size) != 2 or not all(isinstance(side, (int, np.integer)) and side >= 1 for side in size):
        raise ZooError(f"`image_size` takes two positive integers HEIGHT,WIDTH, e.g. 28,28. Received: {image_size}")
    return (int(size[0]), int(size[1]))


def warn(message):
    """Print a one-line warning on stderr, as the command line does for errors."""
    print(f"zoo: warning: {message}", file=sys.stderr)


# === tensorflow-datasets ===

# tensorflow-datasets fetches prepared data from Google Cloud Storage, else from each dataset's
# own site: a TCP connection to GCS within PROBE_SECONDS says whether downloading can work.
# ZOO_DOWNLOAD_PROBE=HOST:PORT probes another address (a mirror, or a test's local server);
# ZOO_DOWNLOAD_PROBE=none answers "unreachable" without probing (the test suite, air-gapped sites).
DOWNLOAD_PROBE = ("storage.googleapis.com", 443)
PROBE_SECONDS = 3.0


def can_download(timeout=PROBE_SECONDS):
    """Whether tensorflow-datasets' servers answer a TCP connection within `timeout` seconds.

    The lookup and the connection run in a thread that is given up on after `timeout`: with no
    network, a DNS lookup alone can block far longer than any socket timeout.
    """
    host, port = DOWNLOAD_PROBE
    override = os.environ.get("ZOO_DOWNLOAD_PROBE")
    if override == "none":
        return False
    if override:
        host, _, port = override.rpartition(":")
    answered = threading.Event()

    def probe():
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                answered.set()
        except (OSError, ValueError):
            pass

    thread = threading.Thread(target=probe, name="zoo-download-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return answered.is_set()


def tfds_load(name, split, data_dir=None, download=True, **kwargs):
    """`tfds.load` of one split from the data directory, downloading the dataset when it is missing.

    Args:
        name: tensorflow-datasets name.
        split: split to load.
        data_dir: tensorflow-datasets data directory (default: TFDS_DATA_DIR or ~/tensorflow_datasets).
        download: download a missing dataset when `can_download()` (False: never).
        **kwargs: passed to `tfds.load` (as_supervised, ...).

    Raises:
        ZooError: in seconds, when the data are missing and cannot or may not be downloaded.
    """
    import logging

    tfds = _tfds()
    # Looking for a dataset that is not there, tfds logs "Variant folder DIR/NAME/VERSION has no
    # dataset_info.json" about a folder it never made: a misleading warning from inside tfds,
    # which cannot be fixed here. zoo says what is missing in its own line below.
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        return tfds.load(name, split=split, data_dir=data_dir, download=False, **kwargs)
    except AssertionError as error:
        if "could not find data" not in str(error):
            raise
    finally:
        absl.setLevel(level)
    where = tfds_data_dir(data_dir)
    how = (
        f"run tfds.load('{name}') on a machine with network and copy its data folder here, then pass "
        "`data_dir=DIR` (or set TFDS_DATA_DIR); or train offline on the default `dataset=digits`"
    )
    if not download:
        raise ZooError(
            f"tensorflow-datasets' '{name}' is not on disk in {where} and `download=False` forbids downloading "
            f"it: {how}."
        )
    if not can_download():
        raise ZooError(
            f"tensorflow-datasets' '{name}' is not on disk in {where} and cannot be downloaded: its servers "
            f"do not answer (no network?). {how[0].upper()}{how[1:]}."
        )
    print(f"zoo: downloading '{name}' into {where} with tensorflow-datasets (once)", file=sys.stderr, flush=True)
    try:
        return tfds.load(name, split=split, data_dir=data_dir, download=True, **kwargs)
    except Exception as error:  # noqa: BLE001 - a failed download: one line, not a traceback
        raise ZooError(f"tensorflow-datasets could not download '{name}' ({_first_line(error)}): {how}.") from None


def _tfds():
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    return tfds


def _tfds_names():
    from tensorflow_datasets.core import registered

    return registered.list_imported_builders()


def _unknown_dataset(name, candidates):
    known = ", ".join(CATALOG)
    return ZooError(
        f"Unknown image dataset '{name}'.{closest(name, candidates)} Known: {known}, or any "
        "tensorflow-datasets image-classification name; for your own images pass `data=FOLDER`."
    )


def tfds_data_dir(data_dir=None):
    """The tensorflow-datasets data directory `load` reads: the argument, TFDS_DATA_DIR, or the default."""
    return data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def load_tfds(
    name, *, seed=42, data_dir=None, image_size=None, validation_fraction=0.1, test_fraction=0.2, download=True
):
    """Load an image-classification dataset from tensorflow-datasets (downloaded if missing, see `tfds_load`).

    The `train` split is used for training (less a validation share unless the dataset has a
    `validation` split); `test` for testing (carved out of `train` when there is none).

    Raises:
        ZooError: for a name tfds does not know, a dataset that is not image classification, or
            data that is not in the data directory and cannot (or, with `download=False`, may not)
            be downloaded.
    """
    if not re.fullmatch(r"[A-Za-z0-9_]+(/[A-Za-z0-9_.-]+)?(:[0-9.*]+)?", str(name)):
        raise _unknown_dataset(name, list(CATALOG))
    tfds = _tfds()
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise _unknown_dataset(name, list(CATALOG) + list(_tfds_names())) from None
    except Exception as error:  # noqa: BLE001 - a builder config tfds cannot make: say which, in one line
        raise ZooError(
            f"tensorflow-datasets cannot open '{name}' ({_first_line(error)}). "
            f"Known image datasets: {', '.join(CATALOG)}."
        ) from None
    image_key, label_key = _image_label_keys(builder, name)
    image_feature = builder.info.features[image_key]
    class_names = [str(c) for c in builder.info.features[label_key].names]
    native = tuple(image_feature.shape[:2])
    size, note = image_size, None
    if size is None and None in native:
        size = DEFAULT_IMAGE_SIZE
        note = f"'{name}' images vary in size: resized to {size[0]}x{size[1]}; choose with --image-size H,W."
    # Without prepared data tfds reports no splits (and under `tfds.testing.mock_data` too):
    # assume the usual train/test pair, and let the guarded load below say when data is missing.
    splits = set(builder.info.splits) or {"train", "test"}
    if "train" not in splits:
        raise ZooError(
            f"'{name}' has no train split (splits: {', '.join(sorted(splits))}); it cannot train a classifier."
        )

    present = [split for split in ("train", "validation", "test") if split in splits]
    # Counted by the builder's info where the data is prepared; else (mock data) by reading the
    # labels, which the stream needs anyway.
    labels = {}
    counts = {split: builder.info.splits[split].num_examples for split in present if split in builder.info.splits}
    if len(counts) < len(present) or not all(counts.values()):
        labels = {split: _tfds_labels(tfds, name, split, data_dir, image_key, download) for split in present}
        counts = {split: len(y) for split, y in labels.items()}
    channels = int(image_feature.shape[2] or 3)
    side = size or native
    # Above the threshold (the folders' test: decoded float32 bytes) each pass reads the records
    # again and decodes batch by batch; below it the splits are decoded once into arrays.
    streamed = sum(counts.values()) * side[0] * side[1] * channels * 4 > streaming.stream_threshold()
    if streamed and not labels:
        labels = {split: _tfds_labels(tfds, name, split, data_dir, image_key, download) for split in present}
    what = f"tensorflow-datasets' '{name}'"
    if streamed:
        (x, y), (x_val, y_val), (x_test, y_test) = _streamed_tfds_splits(
            name, data_dir, image_key, image_feature, side, labels, seed, validation_fraction, test_fraction, what
        )
    else:
        arrays = {split: _tfds_arrays(tfds, name, split, data_dir, size, download) for split in present}
        (x, y), (x_val, y_val), (x_test, y_test) = _complete_splits(
            arrays, seed, validation_fraction, test_fraction, what
        )
    if note:
        warn(note)
    details = {"data_dir": tfds_data_dir(data_dir)}
    if size is not None:
        details.update(resized_to=list(size), interpolation=RESIZE_METHOD)
    if streamed:
        details["streamed"] = True
        details["images_per_class"] = dict(
            zip(class_names, np.bincount(np.concatenate(list(labels.values())), minlength=len(class_names)).tolist())
        )
    return ImageData(
        x, y, x_val, y_val, x_test, y_test, class_names, name.split(":")[0], f"tensorflow-datasets:{name}", details
    )


def _complete_splits(arrays, seed, validation_fraction, test_fraction, what):
    """(train, validation, test) pairs from {split: (x, y)}: missing splits are carved out of train.

    Test rows are carved first and validation rows from what is left, so a dataset with its own
    test split keeps the same validation share of its training rows.
    """
    x, y = arrays["train"]
    if "test" in arrays:
        test = arrays["test"]
    else:
        (x, y), _, test = splits.split_arrays((x, y), seed, 0.0, test_fraction, what=what, unit="images")
    if "validation" in arrays:
        validation = arrays["validation"]
    else:
        (x, y), validation, _ = splits.split_arrays((x, y), seed, validation_fraction, 0.0, what=what, unit="images")
    return (x, y), validation, test


def _image_label_keys(builder, name):
    features = builder.info.features
    keys = builder.info.supervised_keys
    image_key, label_key = keys if keys and len(keys) == 2 and all(isinstance(k, str) for k in keys) else (None, None)
    tfds = _tfds()
    if not (
        image_key in features
        and isinstance(features[image_key], tfds.features.Image)
        and label_key in features
        and isinstance(features[label_key], tfds.features.ClassLabel)
    ):
        shown = " -> ".join(map(str, keys)) if keys else "none"
        raise ZooError(
            f"'{name}' is a tensorflow-datasets dataset but not image classification (supervised keys: "
            f"{shown}). Image datasets: {', '.join(CATALOG)}, or `data=FOLDER`."
        )
    return image_key, label_key


def _tfds_split(name, split, data_dir, download, **kwargs):
    """`tfds_load` of one split, any failure as one line."""
    try:
        return tfds_load(name, split, data_dir, download, as_supervised=True, **kwargs)
    except ZooError:
        raise
    except Exception as error:  # noqa: BLE001 - manual-download datasets and the like: one line
        raise ZooError(f"tensorflow-datasets cannot load '{name}' split {split} ({_first_line(error)}).") from None


def _tfds_arrays(tfds, name, split, data_dir, size, download):
    import tensorflow as tf

    dataset = _tfds_split(name, split, data_dir, download)

    def prepare(image, label):
        if size is not None:
            image = tf.image.resize(image, size, method=RESIZE_METHOD)
        return tf.cast(image, tf.float32) / PIXEL_MAX, label

    xs, ys = [], []
    for images, labels in tfds.as_numpy(dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(4096)):
        xs.append(images.astype("float32"))
        ys.append(labels.astype("int64"))
    if not xs:
        raise ZooError(f"tensorflow-datasets split '{split}' of '{name}' is empty.")
    return np.clip(np.concatenate(xs), 0.0, 1.0), np.concatenate(ys)


def _tfds_labels(tfds, name, split, data_dir, image_key, download):
    """The labels of one split in record order, read without decoding a single image (int64)."""
    dataset = _tfds_split(name, split, data_dir, download, decoders={image_key: tfds.decode.SkipDecoding()})
    labels = [batch for _, batch in tfds.as_numpy(dataset.batch(65536))]
    if not labels:
        raise ZooError(f"tensorflow-datasets split '{split}' of '{name}' is empty.")
    return np.concatenate(labels).astype("int64")


def _streamed_tfds_splits(
    name, data_dir, image_key, feature, size, labels, seed, validation_fraction, test_fraction, what
):
    """(train, validation, test) pairs of `TfdsImages` and labels, holding the rows `_complete_splits` holds.

    A split the dataset lacks is carved out of `train` the way `_complete_splits` carves arrays
    (test first, then validation from the rest, each by `splits.split_rows` with `seed`); the
    carving is kept as one code per record of `train`, so no image is read to split.
    """
    n = len(labels["train"])
    codes = np.full(n, splits.TRAIN, dtype="int8")
    rest = np.arange(n)
    if "test" not in labels:
        kept, _, test = splits.split_rows(n, seed, 0.0, test_fraction, what=what, unit="images")
        codes[test], rest = splits.TEST, kept
    if "validation" not in labels:
        kept, validation, _ = splits.split_rows(len(rest), seed, validation_fraction, 0.0, what=what, unit="images")
        codes[rest[validation]] = splits.VALIDATION
    carved = bool((codes != splits.TRAIN).any())
    parts = []
    for split, wanted in (("train", splits.TRAIN), ("validation", splits.VALIDATION), ("test", splits.TEST)):
        source = split if split in labels else "train"
        chosen = codes if source == "train" and carved else None
        y = labels[source] if chosen is None else labels[source][chosen == wanted]
        parts.append((TfdsImages(name, source, data_dir, image_key, feature, size, len(y), chosen, wanted), y))
    return parts


# === Image folders ===


def check_folder(folder):
    """Check a folder's layout and class folders without reading an image (os calls only).

    `zoo train cnn|gan --data` runs it before TensorFlow is imported; `load_folder` does the same
    checks again and reads the images.

    Raises:
        ZooError: for a missing folder, a file, mixed split and class folders, a single class, a
            class without images, or splits whose class folders differ.
    """
    root = os.path.abspath(os.path.expanduser(str(folder)))
    if not os.path.exists(root):
        raise ZooError(f"Image folder not found: {folder}. Check the path given to `data`.")
    if not os.path.isdir(root):
        raise ZooError(f"{folder} is a file; `data` takes a folder with one subfolder of images per class.")
    layout = _split_layout(root)
    # Quiet: `load_folder` says what it ignores, once.
    indexed = {split: _index_classes(path, folder, quiet=True) for split, path in layout.items()}
    class_names = list(indexed["train"])
    for split, classes in indexed.items():
        if split != "train" and list(classes) != class_names:
            raise ZooError(
                f"The class folders of {layout[split]} ({', '.join(classes)}) differ from those of "
                f"{layout['train']} ({', '.join(class_names)}); use the same class folders in each split."
            )


def load_folder(
    folder,
    *,
    seed=42,
    image_size=None,
    color_mode="auto",
    skip_corrupt=False,
    validation_fraction=0.1,
    test_fraction=0.2,
):
    """Load a folder of images with one subfolder per class (or train/ and test/ holding those).

    Raises:
        ZooError: for a missing or empty folder, a single class, a class without images, a corrupt
            image (unless `skip_corrupt`), or too few images to split.
    """
    root = os.path.abspath(os.path.expanduser(str(folder)))
    if not os.path.exists(root):
        raise ZooError(f"Image folder not found: {folder}. Check the path given to `data`.")
    if not os.path.isdir(root):
        raise ZooError(f"{folder} is a file; `data` takes a folder with one subfolder of images per class.")
    layout = _split_layout(root)
    indexed = {split: _index_classes(path, folder) for split, path in layout.items()}
    class_names = list(indexed["train"])
    for split, classes in indexed.items():
        if split != "train" and list(classes) != class_names:
            raise ZooError(
                f"The class folders of {layout[split]} ({', '.join(classes)}) differ from those of "
                f"{layout['train']} ({', '.join(class_names)}); use the same class folders in each split."
            )

    listing = [path for classes in indexed.values() for files in classes.values() for path in files]
    shapes, bad = _check_images(listing) if _tensorflow_input() else _check_images_pil(listing)
    if bad and not skip_corrupt:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ZooError(
            f"Cannot read image {bad[0][0]}: {bad[0][1]}{more}. Fix or delete it, or pass "
            "`skip_corrupt=True` to leave unreadable images out."
        )
    if bad:
        shown = ", ".join(path for path, _ in bad[:5]) + (" ..." if len(bad) > 5 else "")
        warn(f"skipped {len(bad)} unreadable image(s): {shown}")
        unreadable = {path for path, _ in bad}
        for split, classes in indexed.items():
            for name, files in classes.items():
                files[:] = [path for path in files if path not in unreadable]
                if not files:
                    raise ZooError(
                        f"Class folder {os.path.join(layout[split], name)} has no readable images left "
                        "after skipping the corrupt ones; add images or remove the folder."
                    )

    channels = [shape[2] for shape in shapes.values()]
    mode = color_mode if color_mode != "auto" else ("grayscale" if max(channels) <= 2 else "rgb")
    size, note = image_size, None
    if size is None:
        sizes = {shape[:2] for shape in shapes.values()}
        common = next(iter(sizes)) if len(sizes) == 1 else None
        if common and max(common) <= MAX_NATIVE_SIDE:
            size = common
        else:
            size = DEFAULT_IMAGE_SIZE
            why = "differ in size" if common is None else f"are {common[0]}x{common[1]}"
            note = f"the images in {folder} {why}: resized to {size[0]}x{size[1]}; choose with --image-size H,W."

    channels_out = 1 if mode == "grayscale" else 3
    total = sum(len(files) for classes in indexed.values() for files in classes.values())
    # Above the threshold the images are listed, not read: each batch decodes its own files.
    streamed = total * size[0] * size[1] * channels_out * 4 > streaming.stream_threshold()
    arrays = {}
    for split, path in layout.items():
        if streamed or not _tensorflow_input():
            listed = [(file, label) for label, name in enumerate(class_names) for file in indexed[split][name]]
            arrays[split] = (np.array([file for file, _ in listed]), np.array([label for _, label in listed], "int64"))
            if not streamed:
                # Off TensorFlow (JAX, PyTorch) a folder that fits is read by Pillow, as `read` decodes.
                paths = arrays[split][0]
                pixels = (
                    FolderImages(paths, size, mode).read_many(paths)
                    if len(paths)
                    else np.zeros((0, *size, channels_out))
                )
                arrays[split] = (pixels / PIXEL_MAX, arrays[split][1])
            continue
        import keras
        import tensorflow as tf

        # Always decoded as RGB and converted afterwards: TensorFlow cannot decode BMP or GIF
        # straight to one channel, which `color_mode="grayscale"` would ask of it.
        dataset = keras.utils.image_dataset_from_directory(
            path,
            labels="inferred",
            label_mode="int",
            class_names=class_names,
            color_mode="rgb",
            batch_size=None,
            image_size=size,
            shuffle=False,
            interpolation=RESIZE_METHOD,
            verbose=False,
        )
        if bad:
            # The failed element is the whole (image, label) pair, so labels stay aligned.
            dataset = dataset.ignore_errors()
        if mode == "grayscale":
            dataset = dataset.map(lambda image, label: (tf.image.rgb_to_grayscale(image), label))
        xs, ys = [], []
        for images, labels in dataset.batch(1024).as_numpy_iterator():
            xs.append(np.clip(images, 0.0, PIXEL_MAX).astype("float32") / PIXEL_MAX)
            ys.append(labels.astype("int64"))
        expected = sum(len(files) for files in indexed[split].values())
        count = sum(len(labels) for labels in ys)
        if count != expected:
            raise ZooError(
                f"Read {count} of the {expected} images in {path}; some files changed or cannot be "
                "decoded. Re-run with `skip_corrupt=True` or check the folder."
            )
        arrays[split] = (np.concatenate(xs), np.concatenate(ys))

    (x, y), (x_val, y_val), (x_test, y_test) = _complete_splits(
        arrays, seed, validation_fraction, test_fraction, str(folder)
    )
    if streamed:
        x, x_val, x_test = (FolderImages(paths, size, mode) for paths in (x, x_val, x_test))
    counts = {"train": len(x), "validation": len(x_val), "test": len(x_test)}
    if min(counts.values()) == 0 or len(np.unique(y)) < 2:
        total = sum(counts.values())
        raise ZooError(
            f"{folder} has {total} readable images: too few to split into train, validation and "
            f"test ({counts['train']}/{counts['validation']}/{counts['test']}); add images "
            "(a few dozen per class at least)."
        )
    if note:
        warn(note)
    details = {
        "color_mode": mode,
        "resized_to": list(size),
        "interpolation": RESIZE_METHOD,
        "skipped_files": len(bad),
        "layout": "split folders" if len(layout) > 1 else "class folders",
    }
    if streamed:
        details["streamed"] = True
        details["images_per_class"] = {
            name: sum(len(classes[name]) for classes in indexed.values()) for name in class_names
        }
    return ImageData(x, y, x_val, y_val, x_test, y_test, class_names, os.path.basename(root) or root, root, details)


def _split_layout(root):
    """{split: folder}: {'train': root} for class folders, or the train/validation/test subfolders."""
    subfolders = _subfolders(root)
    splits = {
        SPLIT_FOLDERS[name.lower()]: os.path.join(root, name) for name in subfolders if name.lower() in SPLIT_FOLDERS
    }
    if subfolders and len(splits) == len(subfolders) and "train" in splits:
        return splits
    if splits and "train" in splits and len(splits) > 1:
        others = [name for name in subfolders if name.lower() not in SPLIT_FOLDERS]
        raise ZooError(
            f"{root} mixes split folders ({', '.join(sorted(splits))}) with other folders "
            f"({', '.join(others)}); use either class folders or train/ and test/ holding class folders."
        )
    return {"train": root}


def _subfolders(path):
    return sorted(
        name for name in os.listdir(path) if not name.startswith(".") and os.path.isdir(os.path.join(path, name))
    )


def _image_files(folder):
    """Image files under `folder` (recursively, sorted), as `image_dataset_from_directory` lists them."""
    found, unsupported = [], []
    for root, _, files in sorted(os.walk(folder), key=lambda item: item[0]):
        for name in sorted(files):
            lower = name.lower()
            if lower.endswith(IMAGE_FORMATS):
                found.append(os.path.join(root, name))
            elif lower.endswith(UNSUPPORTED_FORMATS):
                unsupported.append(os.path.join(root, name))
    return found, unsupported


def _index_classes(folder, shown, quiet=False):
    classes = _subfolders(folder)
    if not classes:
        loose, _ = _image_files(folder)
        if loose:
            raise ZooError(
                f"{folder} holds images but no class subfolders: put each class's images in its own "
                f"subfolder ({os.path.join(shown, 'cat')}/..., {os.path.join(shown, 'dog')}/...)."
            )
        raise ZooError(
            f"{folder} is empty: it needs one subfolder of images per class "
            f"({os.path.join(shown, 'cat')}/*.jpg, {os.path.join(shown, 'dog')}/*.jpg)."
        )
    if len(classes) == 1:
        raise ZooError(
            f"{folder} has a single class folder ('{classes[0]}'): a classifier needs at least two "
            "subfolders of images, one per class."
        )
    indexed, ignored = {}, []
    for name in classes:
        files, unsupported = _image_files(os.path.join(folder, name))
        ignored += unsupported
        if not files:
            formats = " ".join(IMAGE_FORMATS)
            hint = f" ({len(unsupported)} file(s) in formats TensorFlow cannot read)" if unsupported else ""
            raise ZooError(
                f"Class folder {os.path.join(folder, name)} has no images ({formats}){hint}; "
                "add images or remove the folder."
            )
        indexed[name] = files
    if ignored and not quiet:
        warn(
            f"ignored {len(ignored)} image(s) in formats TensorFlow cannot read (e.g. {ignored[0]}); "
            "convert them to PNG or JPEG to use them."
        )
    return indexed


def _check_images(paths):
    """Decode every image once: ({path: (height, width, channels)}, [(path, reason)] for bad ones)."""
    import tensorflow as tf

    shapes, bad = {}, []
    for path in paths:
        try:
            image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
            shapes[path] = tuple(int(d) for d in image.shape)
        except (tf.errors.OpError, OSError) as error:
            bad.append((path, _reason(error)))
    return shapes, bad


# Pillow's image modes and the channels TensorFlow decodes from such a file.
PIL_CHANNELS = {"1": 1, "L": 1, "I": 1, "I;16": 1, "F": 1, "LA": 2, "La": 2, "P": 3, "RGB": 3, "RGBA": 4}


def _check_images_pil(paths):
    """`_check_images` without TensorFlow: each image decoded once by Pillow."""
    shapes, bad = {}, []
    for path in paths:
        try:
            image = _open_image(str(path))
        except _pil_errors() as error:
            bad.append((path, _pil_reason(error, str(path))))
            continue
        channels = PIL_CHANNELS.get(image.mode, len(image.getbands()))
        if image.mode == "P" and "transparency" in image.info:
            channels = 4
        shapes[path] = (image.height, image.width, channels)
    return shapes, bad


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _reason(error):
    """A TensorFlow decode error as a short phrase, without the op and device prefixes."""
    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"^\{\{[^}]*\}\}\s*", "", text.strip()).split(" [Op:")[0]
    return (text.splitlines()[0] if text else type(error).__name__).rstrip(".")


# === Raw images for models and pipelines ===


def read_images(paths, image_size, channels, *, convert=False, invert=False):
    """Read image files as raw pixels, resized the way the training folders were.

    Args:
        paths: image files (PNG, JPEG, BMP or GIF).
        image_size: (height, width) the model takes.
        channels: channels the model takes (1 grayscale, 3 RGB).
        convert: convert images of another channel count instead of refusing them.
        invert: replace each pixel p by 255 - p (dark ink on light paper, for models trained on
            light-on-dark digits such as `digits` and MNIST).

    Returns:
        float32 array (n, height, width, channels) with values 0-255.

    Raises:
        ZooError: for a missing or unreadable file, or an image with the wrong number of channels
            when `convert` is False.
    """
    import tensorflow as tf

    names = {1: "grayscale", 2: "grayscale with alpha", 3: "RGB", 4: "RGBA"}
    batch = []
    for path in paths:
        if not os.path.isfile(path):
            raise ZooError(f"Image file not found: {path}.")
        try:
            data = tf.io.read_file(path)
            native = int(tf.io.decode_image(data, expand_animations=False).shape[-1])
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
        except (tf.errors.OpError, OSError) as error:
            raise ZooError(f"Cannot read image {path}: {_reason(error)}. Use a PNG, JPEG, BMP or GIF file.") from None
        if native != channels and not convert:
            raise ZooError(
                f"{path} has {native} channel(s) ({names.get(native, native)}) but the model takes {channels} "
                f"({names.get(channels, channels)}): convert the image, or pass `convert=True` to convert it."
            )
        if channels == 1:
            image = tf.image.rgb_to_grayscale(image)
        elif channels != 3:
            raise ZooError(f"The model takes {channels}-channel images; only 1 (grayscale) and 3 (RGB) are supported.")
        image = tf.clip_by_value(tf.image.resize(image, image_size, method=RESIZE_METHOD), 0.0, PIXEL_MAX)
        batch.append(PIXEL_MAX - image if invert else image)
    return np.stack([np.asarray(image, dtype="float32") for image in batch])


class StreamedImages:
    """Images too large for memory, standing in for an image array in `ImageData`: decoded when read.

    `len`, `shape` and indexing (float32 images in [0, 1]) work as on an array; `dataset` is the
    TensorFlow pipeline that decodes batch by batch (`to_dataset`). Subclasses say where the
    images come from (`FolderImages`, `TfdsImages`).
    """

    def __init__(self, rows, size, channels):
        self.rows, self.size, self.channels = rows, tuple(size), channels

    def __len__(self):
        return self.rows

    @property
    def shape(self):
        return (self.rows, *self.size, self.channels)

    def __getitem__(self, index):
        positions = np.arange(self.rows)[index]
        if np.ndim(positions) == 0:
            return self[[int(positions)]][0]
        if not len(positions):
            return np.zeros((0, *self.shape[1:]), "float32")
        return self.pixels(np.asarray(positions)) / PIXEL_MAX

    def pixels(self, positions):
        """The images at `positions` as raw pixels (0-255, float32), in that order."""
        raise NotImplementedError

    def dataset(self, labels=None, seed=None):
        """A `tf.data.Dataset` of batches of raw-pixel images (with labels if given), decoded on the fly."""
        raise NotImplementedError

    def digest(self):
        """A short digest of what the images are, reading no pixel (MLflow's dataset digest)."""
        raise NotImplementedError

    def mlflow_dataset(self, labels, source, name):
        """MLflow's record of these images: the source, the tensor schema, the count and a digest, no pixels."""
        from mlflow.types.schema import Schema, TensorSpec

        schema = Schema([TensorSpec(np.dtype("float32"), (-1, *self.shape[1:]), "image")])
        classes = np.bincount(np.asarray(labels)).tolist()
        profile = {"num_rows": len(self), "images_per_class": classes}
        return streaming.meta_dataset(source, name, self.digest(), schema, profile)


class FolderImages(StreamedImages):
    """The images of a folder too large for memory, listed by path: decoded and resized when read.

    Two decoders give the same pixels, the way `keras.utils.image_dataset_from_directory` decodes
    (RGB, then resized by area, then grayscale): `decode`, in TensorFlow, for `dataset`; `read`, in
    Pillow and NumPy, for `batches`, the reader of JAX and PyTorch runs (`zoo.training.Stream`),
    which never import TensorFlow. Indexing uses whichever the run's backend feeds.
    """

    def __init__(self, paths, size, color_mode):
        self.paths = np.asarray(paths)
        self.color_mode = color_mode
        super().__init__(len(self.paths), size, 1 if color_mode == "grayscale" else 3)

    def pixels(self, positions):
        if _tensorflow_input():
            return np.stack([np.asarray(self.decode(path)) for path in self.paths[positions]])
        return self.read_many(self.paths[positions])

    def decode(self, path):
        """One image file as raw pixels (0-255, float32), resized and converted like the in-memory path."""
        import tensorflow as tf

        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        image = tf.image.resize(image, self.size, method=RESIZE_METHOD)
        if self.color_mode == "grayscale":
            image = tf.image.rgb_to_grayscale(image)
        return tf.clip_by_value(image, 0.0, PIXEL_MAX)

    def read(self, path):
        """`decode` without TensorFlow: Pillow decodes, NumPy resizes by area and converts (float32, 0-255).

        Raises:
            ZooError: naming the file, when it cannot be read (it changed since the folder was checked).
        """
        path = str(path)
        try:
            rgb = np.asarray(_open_image(path).convert("RGB"), dtype="float32")
        except _pil_errors() as error:
            raise _changed_image(path, _pil_reason(error, path)) from None
        return area_resize(rgb, self.size, grayscale=self.color_mode == "grayscale")

    def unreadable(self):
        """The error naming the first listed image that no longer decodes, or None if all do.

        For the TensorFlow pipeline, whose decoding error names no file: a pass over the listing,
        made only once a run has failed.
        """
        _, bad = _check_images_pil(self.paths)
        return _changed_image(*bad[0]) if bad else None

    def read_many(self, paths):
        """`read` of several files, decoded in a few threads (Pillow releases the GIL), stacked in order."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
            return np.stack(list(pool.map(self.read, paths)))

    def batches(self, labels=None, seed=None, epoch=0, rows=32):
        """One pass over the images as NumPy slices of `rows` raw-pixel images (with labels if given).

        With a `seed`, the listing (paths, not pixels) is permuted from (seed, epoch) alone, so a
        resume at epoch e reads pass e directly; without one, the listing's order. Memory holds
        one slice. What `zoo.training.Stream` takes off TensorFlow.
        """
        order = np.arange(self.rows) if seed is None else np.random.default_rng((seed, epoch)).permutation(self.rows)
        for start in range(0, self.rows, rows):
            picks = order[start : start + rows]
            pixels = self.read_many(self.paths[picks])
            yield pixels if labels is None else (pixels, np.asarray(labels)[picks])

    def dataset(self, labels=None, seed=None):
        """A `tf.data.Dataset` of batches of 32 raw-pixel images (with labels if given), decoded on the fly.

        Batched, as the run takes streamed data (`training.Data.streamed`: it rebatches it and
        never caches it). With a `seed`, the listing (paths, not pixels) is reshuffled every pass.
        """
        import tensorflow as tf

        rows = tf.data.Dataset.from_tensor_slices(self.paths if labels is None else (self.paths, labels))
        if seed is not None:
            rows = rows.shuffle(len(self.paths), seed=seed, reshuffle_each_iteration=True)
        if labels is None:
            rows = rows.map(self.decode, num_parallel_calls=tf.data.AUTOTUNE)
        else:
            rows = rows.map(lambda path, label: (self.decode(path), label), num_parallel_calls=tf.data.AUTOTUNE)
        return rows.batch(32)

    def digest(self):
        return streaming.listing_digest(self.paths)


# tfds records are read in order: a pass shuffles this many encoded images (bytes, not pixels:
# about 3 MB for MNIST) before decoding them, so its memory stays fixed whatever the split's size.
TFDS_SHUFFLE_IMAGES = 8192


class TfdsImages(StreamedImages):
    """One split of a tensorflow-datasets dataset too large for memory, read from its records on every pass.

    Records are read with their images still encoded (`tfds.decode.SkipDecoding`), filtered to
    the rows of this split (`codes == wanted` per record, when the split is carved out of
    `train`), shuffled as bytes within `TFDS_SHUFFLE_IMAGES`, then decoded and resized batch by
    batch: never stacked. TensorFlow only (tfds is).
    """

    def __init__(self, name, split, data_dir, image_key, feature, size, rows, codes=None, wanted=splits.TRAIN):
        super().__init__(rows, size, int(feature.shape[2] or 3))
        self.name, self.split, self.data_dir, self.image_key = name, split, data_dir, image_key
        self.feature, self.codes, self.wanted = feature, codes, wanted

    def encoded(self):
        """(encoded image, label) records of this split, in record order."""
        tfds = _tfds()
        records = _tfds_split(
            self.name, self.split, self.data_dir, False, decoders={self.image_key: tfds.decode.SkipDecoding()}
        )
        if self.codes is None:
            return records
        import tensorflow as tf

        codes, wanted = tf.constant(self.codes), np.int8(self.wanted)
        chosen = records.enumerate().filter(lambda i, record: tf.equal(tf.gather(codes, i), wanted))
        return chosen.map(lambda i, record: record)

    def decode(self, encoded):
        """One encoded image as raw pixels (0-255, float32), as `_tfds_arrays` prepares it."""
        import tensorflow as tf

        image = self.feature.decode_example(encoded)
        image = tf.image.resize(image, self.size, method=RESIZE_METHOD)
        return tf.clip_by_value(tf.cast(image, tf.float32), 0.0, PIXEL_MAX)

    def pixels(self, positions):
        # One pass, decoding only the wanted records: random access into records read in order.
        wanted = {int(p): i for i, p in enumerate(positions)}
        found = {}
        for position, (encoded, _) in enumerate(self.encoded().take(max(wanted) + 1).as_numpy_iterator()):
            if position in wanted:
                found[position] = np.asarray(self.decode(encoded))
        return np.stack([found[int(p)] for p in positions])

    def dataset(self, labels=None, seed=None):
        """A `tf.data.Dataset` of batches of 32 raw-pixel images (with labels unless `labels` is None).

        The labels come from the records (the `labels` given are the same, read by `load_tfds`).
        With a `seed`, each pass reshuffles the encoded records within `TFDS_SHUFFLE_IMAGES`.
        """
        import tensorflow as tf

        rows = self.encoded()
        if seed is not None:
            rows = rows.shuffle(min(self.rows, TFDS_SHUFFLE_IMAGES), seed=seed, reshuffle_each_iteration=True)
        if labels is None:
            rows = rows.map(lambda encoded, label: self.decode(encoded), num_parallel_calls=tf.data.AUTOTUNE)
        else:
            rows = rows.map(lambda encoded, label: (self.decode(encoded), label), num_parallel_calls=tf.data.AUTOTUNE)
        return rows.batch(32)

    def digest(self):
        # The dataset, the split, which records of it, and how many: no record read.
        digest = hashlib.md5(usedforsecurity=False)
        digest.update(f"{self.name}\0{self.split}\0{self.wanted}\0{self.rows}\0{self.size}".encode())
        if self.codes is not None:
            digest.update(self.codes.tobytes())
        return digest.hexdigest()[:8]


def _tensorflow_input():
    from zoo.training import pipelines

    return pipelines.tensorflow_input()


def _changed_image(path, reason):
    return ZooError(
        f"Cannot read image {path}: {reason}. It changed after the folder was checked: "
        "fix or delete it and train again (`skip_corrupt=True` leaves unreadable images out)."
    )


def _pil_errors():
    from PIL import Image

    # Pillow reports a broken file as OSError (UnidentifiedImageError is one), SyntaxError or ValueError.
    return (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _pil_reason(error, path):
    """Pillow's error as a short phrase, without the path it repeats ("cannot identify image file")."""
    text = _first_line(error).replace(repr(path), "").replace(path, "").strip().rstrip(".")
    return text or type(error).__name__


def _open_image(path):
    """A Pillow image with its pixels loaded (the first frame of a GIF, as TensorFlow decodes it)."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.copy()


@functools.lru_cache(maxsize=64)
def _area_weights(size_in, size_out):
    """(size_out, size_in) weights of TensorFlow's area resize along one axis: each output pixel
    averages the input pixels its span [y s, (y + 1) s) covers (s = size_in / size_out), by overlap."""
    scale = float(np.float32(size_in) / np.float32(size_out))
    weights = np.zeros((size_out, size_in))
    for y in range(size_out):
        start, end = y * scale, (y + 1) * scale
        for i in range(int(np.floor(start)), int(np.ceil(end))):
            weights[y, min(i, size_in - 1)] += min(i + 1.0, end) - max(float(i), start)
    return weights / scale


# tf.image.rgb_to_grayscale's weights (ITU-R BT.601 luma).
GRAY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140])


def area_resize(rgb, size, *, grayscale=False):
    """Resize an (h, w, 3) image by area, as `tf.image.resize(method="area")`, in NumPy; then
    optionally convert it to grayscale as `tf.image.rgb_to_grayscale`. float32, clipped to 0-255.
    """
    rows, columns = _area_weights(rgb.shape[0], size[0]), _area_weights(rgb.shape[1], size[1])
    image = np.einsum("yi,ijc,xj->yxc", rows, rgb.astype("float64"), columns, optimize=True)
    if grayscale:
        image = image @ GRAY_WEIGHTS[:, None]
    return np.clip(image, 0.0, PIXEL_MAX).astype("float32")


def to_dataset(x, y=None, seed=None):
    """An unbatched `tf.data.Dataset` of raw pixels (0-255) from [0, 1] images, with labels if given.

    `x` may be `StreamedImages` (a folder or a tfds split too large for memory): then the dataset
    decodes each image as it reads it, in batches (see `FolderImages.dataset`, `TfdsImages.dataset`),
    and `seed` reshuffles every pass.
    """
    import tensorflow as tf

    if isinstance(x, StreamedImages):
        return x.dataset(None if y is None else np.asarray(y), seed=seed)
    pixels = np.asarray(x, dtype="float32") * PIXEL_MAX
    return tf.data.Dataset.from_tensor_slices(pixels if y is None else (pixels, np.asarray(y)))


def pipeline(x, y, batch_size, *, shuffle=False, seed=None):
    """A training-ready `tf.data` pipeline: raw pixels, cached, optionally shuffled, batched, prefetched.

    Example:
        >>> data = load("digits")
        >>> model.fit(pipeline(data.x_train, data.y_train, 32, shuffle=True, seed=0), epochs=5)
    """
    import tensorflow as tf

    dataset = to_dataset(x, y).cache()
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
