"""Text-line images for OCR: lines of real handwritten digits (offline default) or a labelled folder.

Every loader returns `LineData`: float32 line images in [0, 1] of one height and one maximum width
(narrower lines padded on the right with their own background), the text of each line, and the
alphabet read from the training texts; `encode` turns the texts into CTC labels (character ids
1..n, padded with 0, the blank). Image files are read and resized with Pillow and NumPy
(`zoo.datasets.pixels`, the pixels `tf.io` and `tf.image` give), so no backend needs TensorFlow here.

Sources:
- `digit_lines`: lines of 3 to 8 digits made by placing scikit-learn's 1,797 real 8x8 handwritten
  digit scans side by side with random spacing. The scans are split into train, validation and
  test first (`zoo.datasets.splits`, the split every loader uses), and each split's lines
  are built from its own scans only, so a test line never shows a scan seen in training.
- `load_folder`: a folder of line images with a `labels.csv` (`filename,words`, the layout of
  EasyOCR's trainer), any characters; images of any width are resized to one height, keeping
  their aspect ratio, and padded.
"""

import dataclasses
import os

import numpy as np

from zoo.datasets import images, pixels, tabular
from zoo.datasets.splits import split_rows
from zoo.errors import ZooError

# CTC label padding: the blank, index 0 of the model's output (zoo.models.crnn.BLANK).
PAD = 0
LABELS_FILE = "labels.csv"
SCAN_SIDE = 8
DEFAULT_FOLDER_HEIGHT = 32
# A line wider than this after resizing would make an unwieldy model; --max-width overrides it.
MAX_AUTO_WIDTH = 1024


@dataclasses.dataclass
class LineData:
    """Train/validation/test line images and their texts.

    Attributes:
        x_train, x_val, x_test: float32 (n, height, max_width, 1) in [0, 1].
        texts_train, texts_val, texts_test: the text of each line.
        alphabet: the characters of the training texts, sorted; output i of the model is alphabet[i - 1].
        name, source: where the lines came from.
        details: loader facts worth logging (spacing, lengths, resize height, ...).
        extras: per-source facts for checks and logs (the scan indices of each digit line, file names).
    """

    x_train: np.ndarray
    texts_train: list
    x_val: np.ndarray
    texts_val: list
    x_test: np.ndarray
    texts_test: list
    alphabet: str
    name: str
    source: str
    details: dict = dataclasses.field(default_factory=dict)
    extras: dict = dataclasses.field(default_factory=dict)

    @property
    def shape(self):
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def max_label_length(self):
        return max(len(t) for t in self.texts_train + self.texts_val + self.texts_test)

    def spec(self):
        return {
            "name": self.name,
            "source": self.source,
            "shape": list(self.shape),
            "alphabet": self.alphabet,
            "alphabet_size": len(self.alphabet),
            "max_label_length": self.max_label_length,
            "rows": {"train": len(self.x_train), "validation": len(self.x_val), "test": len(self.x_test)},
            **self.details,
        }


def encode(texts, alphabet, length):
    """Character ids (1-based index into `alphabet`), left-aligned and padded with `PAD` to `length`."""
    index = {c: i + 1 for i, c in enumerate(alphabet)}
    labels = np.full((len(texts), length), PAD, dtype="int32")
    for row, text in enumerate(texts):
        labels[row, : len(text)] = [index[c] for c in text]
    return labels


def needed_steps(text):
    """Output steps CTC needs for `text`: one per character, plus a blank between equal neighbours."""
    return len(text) + sum(a == b for a, b in zip(text, text[1:]))


# === Lines of handwritten digits ===


def compose_lines(scans, labels, count, lengths, rng, *, max_gap=3, jitter=0, margin=2, width=None):
    """Place scans side by side into `count` lines of `lengths[0]`..`lengths[1]` characters.

    Args:
        scans: (n, side, side) images in [0, 1] (ink bright on a dark background).
        labels: the character of each scan.
        count: number of lines.
        lengths: (shortest, longest) line, in characters.
        rng: a `numpy.random.Generator`.
        max_gap: the gap between neighbours is drawn uniformly from 0..max_gap pixels.
        jitter: each scan sits 0..jitter pixels down a line `jitter` pixels taller than a scan,
            as handwriting wanders about its baseline.
        margin: the left margin is drawn uniformly from 0..margin pixels.
        width: width of the images (default: what the longest line needs).

    Returns:
        (images (count, side + jitter, width, 1), texts, scan indices of each line).
    """
    side = scans.shape[1]
    shortest, longest = lengths
    needed = margin + longest * side + (longest - 1) * max_gap
    width = width or needed
    if width < needed:
        raise ZooError(f"Lines of {longest} characters need {needed} pixels; width is {width}.")
    lines = np.zeros((count, side + jitter, width, 1), dtype="float32")
    texts, used = [], []
    for row in range(count):
        picks = rng.integers(0, len(scans), size=int(rng.integers(shortest, longest + 1)))
        left = int(rng.integers(0, margin + 1))
        for position, pick in enumerate(picks):
            if position:
                left += int(rng.integers(0, max_gap + 1))
            top = int(rng.integers(0, jitter + 1))
            window = lines[row, top : top + side, left : left + side, 0]
            window[:] = np.maximum(window, scans[pick])
            left += side
        texts.append("".join(str(labels[p]) for p in picks))
        used.append(picks)
    return lines, texts, used


def line_width(longest, *, max_gap=3, margin=2, side=SCAN_SIDE):
    """Width of a digit line image: the longest line at the widest spacing, rounded up to 4 pixels."""
    needed = margin + longest * side + (longest - 1) * max_gap
    return int(-(-needed // 4) * 4)


def digit_lines(
    seed=42,
    *,
    lines=(4000, 400, 1000),
    lengths=(3, 8),
    test_lengths=None,
    max_gap=3,
    jitter=2,
    image_height=None,
    validation_fraction=0.1,
    test_fraction=0.2,
):
    """Lines of real handwritten digit scans (scikit-learn's `load_digits`), offline.

    Args:
        seed: seeds the scan split and the lines.
        lines: number of (train, validation, test) lines.
        lengths: (shortest, longest) train and validation line, in digits.
        test_lengths: (shortest, longest) test line (default: `lengths`); longer than `lengths`
            measures lines of lengths never seen in training.
        max_gap: largest random gap between neighbouring digits, in pixels.
        jitter: largest random vertical offset of a digit, in pixels; lines are 8 + jitter high.
        image_height: resize the lines to this height (default: keep 8 + jitter).
        validation_fraction, test_fraction: shares of the scans held out for validation and test.

    Returns:
        `LineData`; `extras["scans"]` holds each split's scans and `extras["scan_ids"]` the scan
        indices (into its split's scans) of every line.

    Raises:
        ZooError: for bad counts or lengths.
    """
    test_lengths = tuple(test_lengths or lengths)
    for name, value in (("lengths", tuple(lengths)), ("test_lengths", test_lengths)):
        if len(value) != 2 or not 1 <= value[0] <= value[1]:
            raise ZooError(f"{name} must be SHORTEST,LONGEST with 1 <= SHORTEST <= LONGEST. Received: {value}")
    if len(lines) != 3 or min(lines) < 1:
        raise ZooError(f"lines must be TRAIN,VALIDATION,TEST counts of at least 1 each. Received: {tuple(lines)}")
    if max_gap < 0 or jitter < 0:
        raise ZooError(f"max_gap and jitter must be 0 or more. Received: max_gap={max_gap}, jitter={jitter}")
    digits = images.digits(seed=seed, validation_fraction=validation_fraction, test_fraction=test_fraction)
    width = line_width(max(lengths[1], test_lengths[1]), max_gap=max_gap)
    rng = np.random.default_rng(seed)
    splits, scans, scan_ids = [], {}, {}
    for split, x, y, count, span in (
        ("train", digits.x_train, digits.y_train, lines[0], lengths),
        ("validation", digits.x_val, digits.y_val, lines[1], lengths),
        ("test", digits.x_test, digits.y_test, lines[2], test_lengths),
    ):
        drawn, texts, used = compose_lines(x[..., 0], y, count, span, rng, max_gap=max_gap, jitter=jitter, width=width)
        if image_height and image_height != drawn.shape[1]:
            drawn = _resize_batch(drawn, image_height)
        splits.append((drawn, texts))
        scans[split], scan_ids[split] = x, used
    details = {
        "line_lengths": list(lengths),
        "test_line_lengths": list(test_lengths),
        "max_gap": max_gap,
        "jitter": jitter,
        "scans": {"train": len(digits.x_train), "validation": len(digits.x_val), "test": len(digits.x_test)},
    }
    (xt, tt), (xv, tv), (xs, ts) = splits
    return LineData(
        xt,
        tt,
        xv,
        tv,
        xs,
        ts,
        "0123456789",
        "digit_lines",
        "sklearn.datasets.load_digits",
        details,
        extras={"scans": scans, "scan_ids": scan_ids},
    )


def _resize_batch(lines, height):
    width = int(round(lines.shape[2] * height / lines.shape[1]))
    resized = np.stack([pixels.resize(line, (height, width), "bilinear") for line in lines])
    return np.clip(resized, 0.0, 1.0).astype("float32")


# === A folder of line images with labels.csv ===


def check_folder(folder, *, image_column="filename", text_column="words", decode=False):
    """Read `folder/labels.csv` and check every row: the file exists (and is not empty) and has a text.

    NumPy, pandas and Pillow only: `zoo train ocr --data` runs it before TensorFlow is imported.

    Args:
        folder: holds `labels.csv` and the images it names.
        image_column, text_column: the columns of `labels.csv`.
        decode: also decode every image (a damaged file fails here rather than in `load_folder`).

    Returns:
        (absolute image paths, texts), in the order of `labels.csv`.

    Raises:
        ZooError: for a missing folder or labels.csv, a missing column, no rows, a row naming a
            missing, empty or (with `decode`) unreadable image, or an empty text.
    """
    import pandas as pd

    root = os.path.abspath(os.path.expanduser(str(folder)))
    if not os.path.isdir(root):
        raise ZooError(f"OCR data folder not found: {folder}. `data` takes a folder of line images with a labels.csv.")
    labels_path = os.path.join(root, LABELS_FILE)
    if not os.path.isfile(labels_path):
        raise ZooError(
            f"No {LABELS_FILE} in {folder}: add one with a row per image ({image_column},{text_column}: "
            f"line1.png,hello) or rename the columns with `image_column` and `text_column`."
        )
    tabular.check_header(labels_path)
    try:
        # dtype=str and no NA parsing: "007" and "NA" are texts, not numbers or missing values.
        table = pd.read_csv(labels_path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise ZooError(f"Cannot read {labels_path}: {str(error).splitlines()[0]}.") from None
    for column, flag in ((image_column, "`image_column`"), (text_column, "`text_column`")):
        if column not in table.columns:
            raise ZooError(
                f"{labels_path} has no column '{column}' (its columns: {', '.join(map(str, table.columns))}); "
                f"name the right one with {flag}."
            )
    if table.empty:
        raise ZooError(f"{labels_path} lists no images; add a row per line image.")
    files, texts = [], []
    for row, (name, text) in enumerate(zip(table[image_column], table[text_column]), start=2):
        path = os.path.join(root, name)
        if not name or not os.path.isfile(path):
            raise ZooError(f"{LABELS_FILE} line {row} names image '{name}', which is not in {folder}.")
        if not text:
            raise ZooError(f"{LABELS_FILE} line {row} ({name}) has an empty {text_column}; give every image its text.")
        if os.path.getsize(path) == 0:
            raise ZooError(f"{LABELS_FILE} line {row} names image '{name}', an empty file (0 bytes); replace it.")
        if decode:
            _image_size(path)
        files.append(path)
        texts.append(text)

    return files, texts


def load_folder(
    folder,
    *,
    image_column="filename",
    text_column="words",
    image_height=None,
    max_width=None,
    seed=42,
    validation_fraction=0.1,
    test_fraction=0.2,
):
    """Load line images listed in `folder/labels.csv` with their texts, split by a seeded permutation.

    Args:
        folder: holds `labels.csv` and the images it names (paths relative to the folder).
        image_column: column of `labels.csv` with the image file names.
        text_column: column with the text of each image.
        image_height: height every image is resized to, keeping its aspect ratio (default 32).
        max_width: width every image is padded to (default: the widest training image, at most 1024).
        seed: seeds the split.
        validation_fraction, test_fraction: shares of the rows held out.

    Returns:
        `LineData` with the alphabet of the training texts; `extras["files"]` maps each split to its files.

    Raises:
        ZooError: for a missing folder or labels.csv, a missing column, a row naming a missing or
            unreadable image, an empty text, too few rows, or a character in a validation or test
            text that no training text has (naming it and the file).
    """
    root = os.path.abspath(os.path.expanduser(str(folder)))
    files, texts = check_folder(folder, image_column=image_column, text_column=text_column)
    labels_path = os.path.join(root, LABELS_FILE)
    train, val, test = split_rows(len(files), seed, validation_fraction, test_fraction, what=labels_path)
    alphabet = "".join(sorted(set("".join(texts[i] for i in train))))
    for split, indices in (("validation", val), ("test", test)):
        for i in indices:
            unseen = sorted(set(texts[i]) - set(alphabet))
            if unseen:
                raise ZooError(
                    f"Character {unseen[0]!r} in the {split} text of {os.path.relpath(files[i], root)} "
                    f"({texts[i]!r}) is in no training text, so the model cannot learn it; add training "
                    "lines with it or fix the label."
                )

    height = image_height or DEFAULT_FOLDER_HEIGHT
    if height < 1:
        raise ZooError(f"`image_height` must be at least 1. Received: {height}")
    sizes = {path: _image_size(path) for path in files}
    if max_width is None:
        widest = max(_resized_width(sizes[files[i]], height) for i in train)
        max_width = min(MAX_AUTO_WIDTH, int(-(-widest // 4) * 4))
    elif max_width < 1:
        raise ZooError(f"`max_width` must be at least 1. Received: {max_width}")
    split_pixels = [
        read_lines([files[i] for i in split], height, max_width) / images.PIXEL_MAX for split in (train, val, test)
    ]
    details = {"resized_height": height, "max_width": max_width, "labels_file": LABELS_FILE}
    return LineData(
        split_pixels[0],
        [texts[i] for i in train],
        split_pixels[1],
        [texts[i] for i in val],
        split_pixels[2],
        [texts[i] for i in test],
        alphabet,
        os.path.basename(root) or root,
        root,
        details,
        extras={
            "files": {
                "train": [files[i] for i in train],
                "validation": [files[i] for i in val],
                "test": [files[i] for i in test],
            }
        },
    )


def _resized_width(size, height):
    return max(1, int(round(size[1] * height / size[0])))


def _image_size(path):
    # Decoded whole, not read from the header: an unreadable file stops the load before the run.
    height, width = pixels.read_gray(path).shape
    return int(height), int(width)


def read_lines(paths, height, max_width, *, invert=False):
    """Read line images as raw grayscale pixels of one height, padded to `max_width`.

    Each image is resized to `height` keeping its aspect ratio (a line wider than `max_width` at
    that height is shrunk to fit, and padded below), then padded on the right with the median of
    its border pixels, its own background, whether that is dark or light paper.

    Args:
        paths: image files (PNG, JPEG, BMP or GIF, any channels; colour is read as gray).
        height: the model's input height.
        max_width: the model's input width.
        invert: replace each pixel p by 255 - p (for a model trained on light ink on dark paper).

    Returns:
        float32 array (n, height, max_width, 1) with values 0-255.

    Raises:
        ZooError: for a missing or unreadable file.
    """
    batch = np.zeros((len(paths), height, max_width, 1), dtype="float32")
    for row, path in enumerate(paths):
        if not os.path.isfile(path):
            raise ZooError(f"Image file not found: {path}.")
        image = pixels.read_gray(path)
        if invert:
            image = images.PIXEL_MAX - image
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        batch[row] = np.median(border)
        h, w = image.shape
        scale = min(height / h, max_width / w)
        size = (max(1, min(height, int(round(h * scale)))), max(1, min(max_width, int(round(w * scale)))))
        resized = pixels.resize(image, size, "area" if scale < 1 else "bilinear")
        batch[row, : size[0], : size[1], 0] = np.clip(resized, 0.0, images.PIXEL_MAX)
    return batch
