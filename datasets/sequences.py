"""Sequence datasets for the recurrent recipes, each as numpy arrays split into train/validation/test.

Offline, from data installed with scikit-learn and matplotlib:

- `digit_rows`: each 8x8 digit scan read as a sequence of 8 rows (many to one).
- `digit_video`: "videos" of digit scans, each shown for a few frames with camera jitter; one label
  per frame (many to many).
- `stock_forecast`: Google's daily share price 2004-2008 (matplotlib's `goog.npz`), the value
  `horizon` days ahead at every step (many to many, regression).
- `digit_captions`: a digit scan in, its English name out, character by character (one to many).

With tensorflow-datasets data already on disk (never downloaded here): `imdb_reviews` (sentiment)
and `mnist` read row by row. Users' own data: `text_csv` (a text column and a label column) and
`from_sequences` / `npz_sequences` (numeric sequences, padded and masked on request). Texts become
token ids with `TextVectorization`'s mapping, in NumPy on every backend (`zoo.datasets.text_ids`).
"""

import dataclasses
import os

import numpy as np

from zoo.datasets import images, splits, tabular, text_ids
from zoo.errors import ZooError, closest

# The three sequence configurations the recurrent models build and the recipes train.
MODES = ("many_to_one", "many_to_many", "one_to_many")
# Token ids every caption vocabulary reserves; the caption model (zoo.models.recurrent) masks PAD,
# starts decoding from START and stops at END.
PAD, START, END = 0, 1, 2
SPECIAL_TOKENS = ["<pad>", "<start>", "<end>"]
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# Steps of a padded float sequence hold this value in every feature; the model masks them.
PAD_VALUE = -1.0


@dataclasses.dataclass
class SequenceData:
    """Train/validation/test splits of sequences with what the model and the logs need.

    Attributes:
        x_train, y_train, x_val, y_val, x_test, y_test: inputs and targets; one_to_many inputs are
            (images, previous tokens) pairs.
        mode: many_to_one, many_to_many or one_to_many.
        task: multiclass, binary or regression.
        num_outputs: classes, values per step, or vocabulary size (one_to_many).
        class_names: names of the classes ([] for regression).
        name, source: where the data came from.
        vocabulary: token strings by id for token inputs or caption outputs, else None.
        mask_value: value of padded float steps, or None when nothing is padded.
        extras: per-dataset facts for the examples the recipe logs (frames, captions, texts, ...).
    """

    x_train: object
    y_train: np.ndarray
    x_val: object
    y_val: np.ndarray
    x_test: object
    y_test: np.ndarray
    mode: str
    task: str
    num_outputs: int
    class_names: list
    name: str
    source: str
    vocabulary: list = None
    mask_value: float = None
    extras: dict = dataclasses.field(default_factory=dict)

    @property
    def input_shape(self):
        first = self.x_train[0] if isinstance(self.x_train, tuple) else self.x_train
        return tuple(int(d) for d in first.shape[1:])

    def spec(self):
        spec = {
            "name": self.name,
            "source": self.source,
            "mode": self.mode,
            "task": self.task,
            "input_shape": list(self.input_shape),
            "num_outputs": self.num_outputs,
            "rows": {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)},
        }
        if self.class_names:
            spec["class_names"] = [str(c) for c in self.class_names]
        if self.vocabulary is not None:
            spec["vocabulary_size"] = len(self.vocabulary)
        if self.mask_value is not None:
            spec["mask_value"] = self.mask_value
        return spec


# === Offline digits: rows, video, captions ===


def digit_rows(seed=42, validation_fraction=0.1, test_fraction=0.2):
    """scikit-learn's 8x8 digit scans as sequences of 8 rows of 8 pixels (many to one)."""
    digits = images.load("digits", seed=seed, validation_fraction=validation_fraction, test_fraction=test_fraction)
    return _image_rows(digits, "digits")


def _image_rows(loaded, name):
    """Images of an `images.load` result as sequences: (h, w, c) read as h steps of w*c pixels."""

    def rows(x):
        return x.reshape(len(x), x.shape[1], -1)

    return SequenceData(
        rows(loaded.x_train),
        loaded.y_train,
        rows(loaded.x_val),
        loaded.y_val,
        rows(loaded.x_test),
        loaded.y_test,
        "many_to_one",
        "multiclass",
        loaded.num_classes,
        loaded.class_names,
        name,
        loaded.source,
        extras={"rows_are_images": True},
    )


def digit_video(seed=42, frames=16, videos=1500, max_shot=4, noise=0.05):
    """Videos of digit scans, one label per frame (many to many).

    A video is a run of shots; a shot shows one real scan for 1 to `max_shot` frames, each frame
    shifted by up to one pixel and with pixel noise, as a hand-held camera would. Training videos
    use training scans only, test videos test scans only.

    Args:
        seed: seed of the scan split and of the video generation.
        frames: frames per video.
        videos: training videos; validation and test get a quarter of that each.
        max_shot: longest run of frames showing the same scan.
        noise: standard deviation of the pixel noise added to each frame.

    Returns:
        `SequenceData` with x of shape (videos, frames, 64) and y of shape (videos, frames);
        `extras["frames"]` holds the test frames as images for plotting.
    """
    if frames < 1 or videos < 1 or max_shot < 1:
        raise ZooError(
            f"A digit video needs frames, videos and max_shot >= 1. Received: frames={frames}, "
            f"videos={videos}, max_shot={max_shot}"
        )
    digits = images.load("digits", seed=seed)
    rng = np.random.default_rng(seed + 1)
    splits = []
    for x, y, count in (
        (digits.x_train, digits.y_train, videos),
        (digits.x_val, digits.y_val, max(1, videos // 4)),
        (digits.x_test, digits.y_test, max(1, videos // 4)),
    ):
        splits.append(_videos(rng, x[..., 0], y, count, frames, max_shot, noise))
    (xt, yt, _), (xv, yv, _), (xs, ys, frames_test) = splits
    return SequenceData(
        xt,
        yt,
        xv,
        yv,
        xs,
        ys,
        "many_to_many",
        "multiclass",
        digits.num_classes,
        digits.class_names,
        "digit_video",
        f"{digits.source} (frames with camera jitter)",
        extras={"frames": frames_test},
    )


def _videos(rng, scans, labels, count, frames, max_shot, noise):
    height, width = scans.shape[1:]
    video = np.zeros((count, frames, height, width), dtype="float32")
    target = np.zeros((count, frames), dtype="int64")
    for v in range(count):
        t = 0
        while t < frames:
            shot = min(int(rng.integers(1, max_shot + 1)), frames - t)
            index = int(rng.integers(len(scans)))
            for f in range(t, t + shot):
                dy, dx = rng.integers(-1, 2, size=2)
                video[v, f] = _shift(scans[index], int(dy), int(dx))
            target[v, t : t + shot] = labels[index]
            t += shot
    video = np.clip(video + rng.normal(0, noise, video.shape).astype("float32"), 0.0, 1.0)
    return video.reshape(count, frames, height * width), target, video


def _shift(image, dy, dx):
    """Shift an image by (dy, dx) pixels, filling the uncovered border with 0."""
    shifted = np.zeros_like(image)
    h, w = image.shape
    shifted[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return shifted


def caption_vocabulary(captions):
    """Return the token list: PAD, START, END, then the characters of `captions`, sorted."""
    return SPECIAL_TOKENS + sorted(set("".join(captions)))


def encode_captions(captions, vocabulary, steps):
    """Encode captions for teacher forcing.

    Returns:
        (previous, following): int arrays (n, steps); `previous` is START then the characters,
        `following` the characters then END; both padded with PAD.

    Raises:
        ZooError: if a caption does not fit in `steps` tokens or uses a character not in the vocabulary.
    """
    index = {token: i for i, token in enumerate(vocabulary)}
    previous = np.full((len(captions), steps), PAD, dtype="int32")
    following = np.full((len(captions), steps), PAD, dtype="int32")
    for row, caption in enumerate(captions):
        if len(caption) + 1 > steps:
            raise ZooError(
                f"Caption {caption!r} needs {len(caption) + 1} steps (END included); "
                f"raise output_steps to at least {len(caption) + 1}."
            )
        unknown = sorted(set(caption) - set(index))
        if unknown:
            raise ZooError(f"Caption {caption!r} uses characters not in the vocabulary: {unknown}.")
        ids = [index[c] for c in caption]
        previous[row, : len(ids) + 1] = [START] + ids
        following[row, : len(ids) + 1] = ids + [END]
    return previous, following


def decode_tokens(tokens, vocabulary):
    """Turn rows of token ids into strings, stopping at END and skipping PAD and START."""
    texts = []
    for row in np.asarray(tokens):
        chars = []
        for token in row:
            if token == END:
                break
            if token > END:
                chars.append(vocabulary[int(token)])
        texts.append("".join(chars))
    return texts


def digit_captions(seed=42, validation_fraction=0.1, test_fraction=0.2):
    """Digit scans captioned with their English name, character by character (one to many).

    Returns:
        `SequenceData` whose inputs are (images (n, 8, 8, 1), previous tokens (n, steps)) and
        targets the following tokens (n, steps); `extras["captions"]` holds the test captions and
        `extras["images"]` the test images.
    """
    digits = images.load("digits", seed=seed, validation_fraction=validation_fraction, test_fraction=test_fraction)
    vocabulary = caption_vocabulary(DIGIT_NAMES)
    steps = max(len(name) for name in DIGIT_NAMES) + 1
    split = []
    for x, y in ((digits.x_train, digits.y_train), (digits.x_val, digits.y_val), (digits.x_test, digits.y_test)):
        captions = [DIGIT_NAMES[label] for label in y]
        previous, following = encode_captions(captions, vocabulary, steps)
        split.append(((x, previous), following))
    (xt, yt), (xv, yv), (xs, ys) = split
    return SequenceData(
        xt,
        yt,
        xv,
        yv,
        xs,
        ys,
        "one_to_many",
        "multiclass",
        len(vocabulary),
        [],
        "digit_captions",
        digits.source,
        vocabulary=vocabulary,
        extras={"captions": [DIGIT_NAMES[label] for label in digits.y_test], "images": digits.x_test},
    )


# === Offline time series ===


SERIES = {"goog": "Google daily adjusted close 2004-08-19 to 2008-10-14 (matplotlib sample data goog.npz)"}


def load_series(name="goog"):
    """Return a real price series shipped with matplotlib as a float64 array."""
    if name not in SERIES:
        raise ZooError(f"Unknown series '{name}'.{closest(name, SERIES)} Known: {', '.join(SERIES)}.")
    import matplotlib.cbook

    data = matplotlib.cbook.get_sample_data("goog.npz")
    return np.asarray(data["price_data"]["adj_close"], dtype="float64")


def stock_forecast(name="goog", window=32, horizon=1, validation_fraction=0.1, test_fraction=0.2):
    """Forecast a price `horizon` days ahead at every step of a sliding window (many to many).

    Prices are not stationary (Google's rose sevenfold, then fell, in these four years), so the
    model reads and predicts log returns instead: the input at day d is log(p[d] / p[d-1]) and the
    target log(p[d + horizon] / p[d]), both divided by the training returns' deviation. The series
    is split in time (train, validation, then test; a window never crosses a split). Predicting a
    return of 0 is the persistence forecast (tomorrow's price = today's), the naive baseline.

    Returns:
        `SequenceData` with x and y of shape (windows, window, 1); `extras` holds the series, the
        last day of each test window, the scale and the persistence forecast's error.

    Raises:
        ZooError: if the horizon or the window do not fit in the series or in its shortest split.
    """
    series = load_series(name)
    if window < 1 or horizon < 1:
        raise ZooError(f"`window` and `horizon` must be at least 1. Received: window={window}, horizon={horizon}")
    if horizon >= len(series):
        raise ZooError(
            f"Forecast horizon {horizon} is longer than the series '{name}' ({len(series)} days); "
            f"use a `horizon` below {len(series)}."
        )
    n_test = int(round(len(series) * test_fraction))
    n_val = int(round(len(series) * validation_fraction))
    bounds = {
        "train": (0, len(series) - n_val - n_test),
        "validation": (len(series) - n_val - n_test, len(series) - n_test),
        "test": (len(series) - n_test, len(series)),
    }
    shortest = min(end - start for start, end in bounds.values())
    # A window needs the day before its first step (its first return) and `horizon` days after its last.
    if window + horizon > shortest - 1:
        raise ZooError(
            f"Window {window} plus horizon {horizon} does not fit in the shortest split of '{name}' "
            f"({shortest} days of {len(series)}); use `window` + `horizon` <= {shortest - 1}."
        )
    log_price = np.log(series)
    returns = np.diff(log_price, prepend=np.nan)  # returns[d] = log(p[d] / p[d-1])
    train_start, train_end = bounds["train"]
    scale = float(np.std(returns[train_start + 1 : train_end]))
    arrays, last_days = {}, {}
    for key, (start, end) in bounds.items():
        first_days = np.arange(start + 1, end - horizon - window + 1)
        days = first_days[:, None] + np.arange(window)[None, :]
        x = (returns[days] / scale).astype("float32")[..., None]
        y = ((log_price[days + horizon] - log_price[days]) / scale).astype("float32")[..., None]
        arrays[key], last_days[key] = (x, y), days[:, -1]
    x_test, y_test = arrays["test"]
    naive_mae = float(np.mean(np.abs(y_test)))
    return SequenceData(
        *arrays["train"],
        *arrays["validation"],
        x_test,
        y_test,
        "many_to_many",
        "regression",
        1,
        [],
        f"{name}_forecast",
        SERIES[name],
        extras={
            "series": series,
            "test_days": bounds["test"],
            "test_last_days": last_days["test"],
            "scale": scale,
            "horizon": horizon,
            "window": window,
            "naive_mae": naive_mae,
        },
    )


# === tensorflow-datasets (on disk only) ===


def _tfds_load(name, split, data_dir, download=True):
    """Load a tfds dataset from disk, downloaded first where possible (see `images.tfds_load`)."""
    try:
        import tensorflow_datasets  # noqa: F401
    except ImportError as error:
        raise ZooError(
            f"tensorflow-datasets is not usable here ({error}); install it or use the offline datasets."
        ) from None
    try:
        return images.tfds_load(name, split, data_dir, download, as_supervised=True)
    except ZooError:
        raise
    except (AssertionError, FileNotFoundError, OSError, ValueError) as error:
        where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ZooError(
            f"tfds dataset '{name}' is not on disk in {where} ({first}). This machine does not download: "
            f"prepare it where there is network (python -m tensorflow_datasets.scripts.download_and_prepare "
            f"--datasets={name}) and pass `data_dir`, or use an offline dataset."
        ) from None


def mnist_rows(data_dir=None, seed=42, validation_fraction=0.1, download=True):
    """MNIST from tensorflow-datasets, each 28x28 image read as 28 rows of 28 pixels."""
    digits = images.load(
        "mnist", seed=seed, data_dir=data_dir, validation_fraction=validation_fraction, download=download
    )
    return _image_rows(digits, digits.name)


def imdb_reviews(data_dir=None, seed=42, max_tokens=20000, sequence_length=200, validation_fraction=0.1, download=True):
    """IMDB movie reviews from tensorflow-datasets, vectorized for sentiment (many to one, binary)."""
    texts, labels = {}, {}
    for split in ("train", "test"):
        pairs = list(_tfds_load("imdb_reviews", split, data_dir, download).as_numpy_iterator())
        if not pairs:
            raise ZooError(f"tfds 'imdb_reviews' split {split} is empty; prepare the dataset again.")
        texts[split] = [p[0].decode("utf-8", errors="replace") for p in pairs]
        labels[split] = np.array([p[1] for p in pairs], dtype="int64")
    train, val, _ = splits.split_rows(len(texts["train"]), seed, validation_fraction, 0.0, what="imdb_reviews")
    return vectorize_texts(
        [texts["train"][i] for i in train],
        labels["train"][train],
        [texts["train"][i] for i in val],
        labels["train"][val],
        texts["test"],
        labels["test"],
        class_names=["negative", "positive"],
        name="imdb_reviews",
        source="tensorflow_datasets:imdb_reviews",
        max_tokens=max_tokens,
        sequence_length=sequence_length,
    )


# === Users' data ===


def text_csv(
    path,
    text_column="text",
    target="label",
    seed=42,
    max_tokens=20000,
    sequence_length=200,
    validation_fraction=0.1,
    test_fraction=0.2,
):
    """A CSV of texts and labels, vectorized for classification (many to one).

    Raises:
        ZooError: for a missing file or column, fewer than two classes, or texts without a single word.
    """
    import pandas as pd

    if not os.path.isfile(path):
        raise ZooError(f"CSV file not found: {path}. Check the path given to `data`.")
    tabular.check_header(path)
    try:
        frame = pd.read_csv(path, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "empty file"
        raise ZooError(f"Cannot read {path} as CSV ({first}). It needs a header row and data rows.") from None
    for column, flag in ((text_column, "`text_column`"), (target, "`target`")):
        if column not in frame.columns:
            raise ZooError(
                f"Column '{column}' ({flag}) is not in {path}.{closest(column, frame.columns)} "
                f"Columns: {', '.join(map(str, frame.columns))}."
            )
    frame = frame[frame[target].astype(str) != ""]
    class_names = sorted(frame[target].astype(str).unique().tolist())
    if len(class_names) < 2:
        raise ZooError(f"Column '{target}' of {path} has {len(class_names)} class(es); a classifier needs at least 2.")
    y = frame[target].astype(str).map({c: i for i, c in enumerate(class_names)}).to_numpy("int64")
    x = frame[text_column].astype(str).tolist()
    train, val, test = splits.split_rows(
        len(x), seed, validation_fraction, test_fraction, what=path, unit="labelled rows"
    )
    pick = lambda idx: [x[i] for i in idx]  # noqa: E731
    return vectorize_texts(
        pick(train),
        y[train],
        pick(val),
        y[val],
        pick(test),
        y[test],
        class_names=class_names,
        name=os.path.splitext(os.path.basename(path))[0],
        source=os.path.abspath(path),
        max_tokens=max_tokens,
        sequence_length=sequence_length,
    )


def vectorize_texts(
    train_texts,
    y_train,
    val_texts,
    y_val,
    test_texts,
    y_test,
    *,
    class_names,
    name,
    source,
    max_tokens=20000,
    sequence_length=200,
):
    """Turn texts into padded token ids with the vocabulary of the training texts.

    The mapping is `TextVectorization`'s with its defaults (`zoo.datasets.text_ids`, NumPy on every
    backend, so JAX and PyTorch need no TensorFlow): id 0 is padding (masked by the model) and id 1
    the out-of-vocabulary token.

    Raises:
        ZooError: if the training texts hold no word at all (an empty vocabulary).
    """
    if max_tokens < 3 or sequence_length < 1:
        raise ZooError(
            f"`max_tokens` must be at least 3 and `sequence_length` at least 1. "
            f"Received: max_tokens={max_tokens}, sequence_length={sequence_length}"
        )
    train_tokens = text_ids.tokenize(train_texts)
    vocabulary = text_ids.adapt(train_tokens, max_tokens)
    # The vocabulary always holds '' (padding) and '[UNK]'; anything more is a word of the texts.
    if len(vocabulary) <= 2:
        raise ZooError(
            f"The text dataset '{name}' has an empty vocabulary: its {len(train_texts)} training texts hold no "
            "word after lowercasing and stripping punctuation. Check the text column."
        )

    def ids(split_texts, tokenized=None):
        tokenized = text_ids.tokenize(split_texts) if tokenized is None else tokenized
        return text_ids.encode(tokenized, vocabulary, sequence_length)

    task = "binary" if len(class_names) == 2 else "multiclass"
    cast = (lambda y: np.asarray(y, dtype="float32")) if task == "binary" else (lambda y: np.asarray(y, dtype="int64"))
    return SequenceData(
        ids(train_texts, train_tokens),
        cast(y_train),
        ids(val_texts),
        cast(y_val),
        ids(test_texts),
        cast(y_test),
        "many_to_one",
        task,
        len(class_names),
        list(class_names),
        name,
        source,
        vocabulary=vocabulary,
        extras={"texts_test": list(test_texts)},
    )


def from_sequences(
    sequences,
    targets,
    *,
    mode="many_to_one",
    pad=False,
    pad_value=PAD_VALUE,
    seed=42,
    name="sequences",
    source="arrays",
    validation_fraction=0.1,
    test_fraction=0.2,
):
    """Split numeric sequences and their targets, padding them to one length when asked.

    Args:
        sequences: an array (n, steps, features), or a list of arrays (steps_i, features) or (steps_i,).
        targets: many_to_one: one label or value per sequence; many_to_many: one per step
            (a list of arrays when the lengths differ).
        mode: many_to_one or many_to_many.
        pad: pad sequences of different lengths at the end with `pad_value`; the model masks those steps.
        pad_value: value of the padded steps; pick one that no real step holds in every feature.
        seed: seed of the split.
        name, source: how the logs name the data.
        validation_fraction, test_fraction: shares held out.

    Returns:
        `SequenceData`; integer targets make a classification task, float targets a regression.

    Raises:
        ZooError: for sequences of different lengths without `pad`, targets that do not match, a
            real step equal to the padding, or too few sequences.
    """
    if mode not in ("many_to_one", "many_to_many"):
        raise ZooError(f"Numeric sequences train mode many_to_one or many_to_many. Received: mode={mode!r}")
    sequences = [np.asarray(s, dtype="float32") for s in sequences]
    sequences = [s[:, None] if s.ndim == 1 else s for s in sequences]
    splits.split_sizes(len(sequences), validation_fraction, test_fraction, what=name, unit="sequences")
    if any(s.ndim != 2 for s in sequences) or len({s.shape[1] for s in sequences}) != 1:
        raise ZooError(f"Every sequence of {name} must be (steps, features) with the same number of features.")
    lengths = np.array([len(s) for s in sequences])
    if lengths.min() < 1:
        raise ZooError(f"{name} holds an empty sequence (0 steps); drop it.")
    if mode == "many_to_many":
        targets = [np.asarray(t) for t in targets]
        if len(targets) != len(sequences) or any(t.ndim == 0 or len(t) != n for t, n in zip(targets, lengths)):
            raise ZooError(f"many_to_many needs one target per step of each sequence of {name}.")
    else:
        targets = np.asarray(targets)
        if len(targets) != len(sequences):
            raise ZooError(f"{name} has {len(sequences)} sequences but {len(targets)} targets.")
    mask_value = None
    if lengths.min() != lengths.max():
        if not pad:
            raise ZooError(
                f"The sequences of {name} have different lengths ({lengths.min()} to {lengths.max()} steps) "
                f"and padding is off: pass `pad=True` to pad them with {pad_value} and mask the padded steps, "
                "or pad them yourself to one length."
            )
        mask_value = float(pad_value)
        if any(np.all(s == pad_value, axis=1).any() for s in sequences):
            raise ZooError(
                f"A real step of {name} holds {pad_value} in every feature, so it would be masked as "
                "padding; choose another `pad_value`."
            )
    width, features = int(lengths.max()), sequences[0].shape[1]
    x = np.full((len(sequences), width, features), pad_value, dtype="float32")
    for row, s in enumerate(sequences):
        x[row, : len(s)] = s
    if mode == "many_to_many":
        dtype = targets[0].dtype
        y = np.zeros((len(targets), width) + targets[0].shape[1:], dtype=dtype)
        for row, t in enumerate(targets):
            y[row, : len(t)] = t
    else:
        y = targets
    classify = np.issubdtype(y.dtype, np.integer) or y.dtype == bool
    if classify:
        y = y.astype("int64")
        classes = int(y.max()) + 1
        if y.min() < 0 or classes < 2:
            raise ZooError(f"Class labels of {name} must be 0..K-1 with K >= 2; float targets mean regression.")
        task, num_outputs, class_names = "multiclass", classes, [str(c) for c in range(classes)]
    else:
        y = y.astype("float32")
        if y.ndim == (2 if mode == "many_to_many" else 1):
            y = y[..., None]  # one value per sequence or step: the model's single output
        task, num_outputs, class_names = "regression", int(y.shape[-1]), []
    (xt, yt), (xv, yv), (xs, ys) = splits.split_arrays(
        (x, y), seed, validation_fraction, test_fraction, what=name, unit="sequences"
    )
    return SequenceData(
        xt, yt, xv, yv, xs, ys, mode, task, num_outputs, class_names, name, source, mask_value=mask_value
    )


def check_finite(values, what):
    """Refuse NaN and infinite numbers, which train a model to NaN or to a constant.

    Raises:
        ZooError: naming `what` and the index of the first bad value.
    """
    if not np.issubdtype(values.dtype, np.floating):
        return
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        index = ", ".join(str(int(i)) for i in bad[0])
        raise ZooError(
            f"{what} holds {values[tuple(bad[0])]} at index [{index}] ({len(bad)} such value(s)); "
            "fix or drop those sequences (pad ragged ones with `pad=True`, not NaN)."
        )


def npz_sequences(path, *, mode="many_to_one", pad=False, pad_value=PAD_VALUE, seed=42):
    """Load sequences from a NumPy `.npz` file and split them (see `from_sequences`).

    The file holds `x` (n, steps, features) and `y`; sequences of different lengths are stored
    concatenated, `x` (total_steps, features) with `lengths` (n,) giving each sequence's steps (and,
    for many_to_many, `y` concatenated the same way).

    Raises:
        ZooError: for a missing or unreadable file, missing arrays, or lengths that do not add up.
    """
    if not os.path.isfile(path):
        raise ZooError(f"File not found: {path}. Check the path given to `data`.")
    import zipfile

    save_hint = "save the arrays with np.savez(path, x=..., y=...)"
    # np.load reads anything that is not a zip as a pickle, and its refusal then suggests
    # `allow_pickle=`, an option the zoo does not have.
    if not zipfile.is_zipfile(path):
        raise ZooError(f"{path} is not a NumPy .npz file (an .npz is a zip archive of arrays): {save_hint}.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        if "pickle" in str(error).lower():
            reason = "it holds Python objects, which are never loaded: use numeric arrays"
        else:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ZooError(f"Cannot read {path} as a NumPy .npz of plain arrays ({reason}); {save_hint}.") from None
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise ZooError(
            f"{path} lacks the array(s) {', '.join(missing)}; it holds {', '.join(arrays) or 'nothing'}. "
            "Save it with np.savez(path, x=..., y=...[, lengths=...])."
        )
    for key in ("x", "y", "lengths"):
        array = arrays.get(key)
        if array is None:
            continue
        if array.dtype.kind not in "biuf":
            raise ZooError(
                f"{path}: array '{key}' holds {array.dtype} values, not numbers; encode it as numbers "
                "(class labels as integers 0, 1, ...)."
            )
        if array.ndim == 0 or (key == "x" and len(array) == 0):
            raise ZooError(
                f"{path}: array '{key}' is {'a single number' if array.ndim == 0 else 'empty'}; {save_hint}."
            )
    x, y = arrays["x"], arrays["y"]
    for key in ("x", "y"):
        check_finite(arrays[key], f"{path}: array '{key}'")
    if "lengths" in arrays:
        lengths = arrays["lengths"]
        if (
            lengths.ndim != 1
            or not np.isfinite(lengths).all()
            or (lengths != np.round(lengths)).any()
            or (lengths < 1).any()
        ):
            raise ZooError(f"{path}: array 'lengths' must list each sequence's steps (1 or more). {save_hint}.")
        lengths = lengths.astype(int)
        if lengths.sum() != len(x) or (mode == "many_to_many" and lengths.sum() != len(y)):
            raise ZooError(f"The lengths in {path} add up to {lengths.sum()} steps but x has {len(x)} rows.")
        cuts = np.cumsum(lengths)[:-1]
        x = np.split(x, cuts)
        if mode == "many_to_many":
            y = np.split(y, cuts)
    name = os.path.splitext(os.path.basename(path))[0]
    return from_sequences(
        x, y, mode=mode, pad=pad, pad_value=pad_value, seed=seed, name=name, source=os.path.abspath(path)
    )
