"""OCR: read a line of text from an image with a CRNN trained by CTC.

Technique: convolutional neural network as a feature extractor, a bidirectional LSTM over the image
columns, and CTC loss, as in keras.io's "OCR model for reading Captchas" and "Handwriting
recognition" (`zoo info crnn`). Where `zoo train cnn` classifies one character per image, this
reads a whole line of unknown length.
Dataset: lines of 3 to 8 digits made offline from scikit-learn's 1,797 real handwritten digit
scans, placed side by side with random spacing; train, validation and test lines are built from
disjoint sets of scans. `--data DIR` reads your own line images listed in `DIR/labels.csv`
(`filename,words`, as EasyOCR's trainer), any characters.
What it shows: character error rate (edit distance / characters) and exact line match per epoch
(validation) and on the test lines, a grid of test lines with what the model read, worst first,
and a logged model that takes raw pixels and returns text through `mlflow.pyfunc`, so
`zoo predict RUN_ID line.png` and `mlflow models serve` answer with text.

    zoo train ocr
    zoo train ocr --digits 3,6 --test-digits 7,8
    zoo train ocr --data lines/ --image-height 32 --epochs 50
"""

import csv
import dataclasses
import io
import json
import os

import numpy as np

from zoo import tracking, training
from zoo.datasets import images, text_lines
from zoo.errors import ZooError
from zoo.tracking import mlflow  # imported on first use: see zoo.tracking.lazy


@dataclasses.dataclass
class OCRConfig(training.RecipeConfig):
    """Options of the OCR recipe.

    Args:
        data: folder of line images with a labels.csv (filename,words); default: digit lines.
        image_column: column of labels.csv with the image file names.
        text_column: column of labels.csv with the text of each image.
        image_height: height lines are resized to, keeping their aspect ratio (default: 8 + jitter
            for the digit lines, 32 for --data).
        max_width: width lines are padded to (default: what the longest line needs).
        lines: number of TRAIN,VALIDATION,TEST digit lines.
        digits: SHORTEST,LONGEST digit line for training and validation.
        test_digits: SHORTEST,LONGEST test digit line (default: as --digits); longer lines measure
            lengths never seen in training.
        max_gap: largest random gap between neighbouring digits, in pixels.
        jitter: largest random vertical offset of a digit in its line, in pixels.
        validation_fraction: share of the scans (or --data rows) held out for validation.
        test_fraction: share of the scans (or --data rows) held out for the test metrics.
        worst_lines: how many test lines, worst first, the logged grid shows.
    """

    epochs: int = 20
    patience: int = 5
    data: str | None = None
    image_column: str = "filename"
    text_column: str = "words"
    image_height: int | None = None
    max_width: int | None = None
    lines: tuple[int, ...] = (4000, 400, 1000)
    digits: tuple[int, ...] = (3, 8)
    test_digits: tuple[int, ...] = ()
    max_gap: int = 3
    jitter: int = 2
    validation_fraction: float = 0.1
    test_fraction: float = 0.2
    worst_lines: int = 24


@dataclasses.dataclass
class Readings:
    """What the evaluation read on the test lines, for the artifacts.

    Attributes:
        texts: the text read from each test line.
        confidences: the reader's confidence in each.
    """

    texts: list[str]
    confidences: list[float]


@training.register_recipe
class OCRRecipe(training.Recipe):
    name = "ocr"
    technique = "cnn"
    summary = "OCR: a CRNN (conv + BiLSTM + CTC) reads lines of handwritten digits or your labelled line images."
    model = "crnn"
    Config = OCRConfig
    # Grappler's arithmetic optimizer rewrites the CTC loss's boolean label mask into an op that
    # oneDNN runs only with AVX-512, and TensorFlow logs that fallback as an error line ("E0000 ...
    # oneDNN supports DT_BOOL only on platforms with AVX-512") on every run.
    graph_passes_off = ("arithmetic_optimization",)
    main_metric = "test_char_error_rate"
    # Stop on what the reader reads, not on the CTC loss, which can rise while the network still
    # emits only blanks; epochs in which the reader reads nothing, or one text for every line (the
    # phase that follows the blanks on small folders), never stop a run.
    monitor = "val_char_error_rate"
    warm_up = "val_reading_variety"
    # The digit default's own budget (4,000 lines, 20 epochs of 125 steps): a folder of 1,050
    # training lines gets 76 epochs, patience 19 (keras.io's captcha reader: 100 epochs, patience 10).
    budget = training.Budget(steps=2500)
    baseline_hint = "more --epochs or a larger --patience (CTC readers need thousands of steps), or more lines"

    # === Data ===
    def check_data(self, config):
        if config.data:
            text_lines.check_folder(
                config.data, image_column=config.image_column, text_column=config.text_column, decode=True
            )

    def unused_options(self, config):
        if config.data:
            # The digit-line generator's options mean nothing for a folder of the user's lines.
            return ("lines", "digits", "test_digits", "max_gap", "jitter")
        return ("image_column", "text_column", "max_width")

    def load_data(self, config):
        if config.worst_lines < 0:
            raise ZooError(f"`worst_lines` must be 0 or more. Received: {config.worst_lines}")
        if config.image_height is not None and config.image_height < 1:
            raise ZooError(f"`image_height` must be at least 1. Received: {config.image_height}")
        if config.data:
            lines = text_lines.load_folder(
                config.data,
                image_column=config.image_column,
                text_column=config.text_column,
                image_height=config.image_height,
                max_width=config.max_width,
                seed=config.seed,
                validation_fraction=config.validation_fraction,
                test_fraction=config.test_fraction,
            )
        else:
            lines = text_lines.digit_lines(
                config.seed,
                lines=config.lines,
                lengths=config.digits,
                test_lengths=config.test_digits or None,
                max_gap=config.max_gap,
                jitter=config.jitter,
                image_height=config.image_height,
                validation_fraction=config.validation_fraction,
                test_fraction=config.test_fraction,
            )
            if config.max_width is not None:
                raise ZooError("`max_width` is for `data`; digit lines are as wide as `digits` and `max_gap` need.")
        length = lines.max_label_length
        # Raw pixels (0-255) and CTC labels: tf.data on TensorFlow, NumPy batches on JAX and PyTorch.
        splits = {
            name: training.from_arrays(
                (x * images.PIXEL_MAX).astype("float32"), text_lines.encode(texts, lines.alphabet, length)
            )
            for name, x, texts in (
                ("train", lines.x_train, lines.texts_train),
                ("validation", lines.x_val, lines.texts_val),
                ("test", lines.x_test, lines.texts_test),
            )
        }
        mlflow_datasets = [
            (
                mlflow.data.from_numpy(
                    x,
                    targets=text_lines.encode(texts, lines.alphabet, length),
                    source=tracking.dataset_source(lines.source),
                    name=f"{lines.name}-{split}",
                ),
                context,
            )
            for split, context, x, texts in (
                ("train", "training", lines.x_train, lines.texts_train),
                ("validation", "validation", lines.x_val, lines.texts_val),
                ("test", "testing", lines.x_test, lines.texts_test),
            )
        ]
        spec = {**lines.spec(), "task": "ocr", "pixel_range": f"0-{images.PIXEL_MAX:g} (raw)"}
        return training.Data(
            train=splits["train"],
            validation=splits["validation"],
            test=splits["test"],
            num_train=len(lines.x_train),
            example_inputs=(lines.x_test[:5] * images.PIXEL_MAX).astype("float32"),
            spec=spec,
            mlflow_datasets=mlflow_datasets,
            loaded=lines,
        )

    # === Model ===
    def model_overrides(self, config, data):
        overrides = {"input_shape": tuple(data.spec["shape"]), "alphabet": data.spec["alphabet"]}
        if config.data:
            overrides.update(folder_model(data.loaded))
        return overrides

    def check_overrides(self, config, data, overrides):
        from zoo import registry
        from zoo.models import crnn

        if "alphabet" in overrides:
            raise ZooError("The alphabet comes from the training labels; `alphabet=...` is not an option here.")
        resolved = registry.resolve("crnn", {**self.model_overrides(config, data), **overrides})
        if resolved["time_downsample"] == 4 and "time_downsample" not in overrides and len(resolved["filters"]) < 2:
            raise ZooError(
                "A --data folder trains with time_downsample=4, which needs 2 convolutional blocks; "
                "give `filters` two entries (filters=32,64) or pass `time_downsample=2`."
            )
        steps = crnn.output_steps(resolved["input_shape"], resolved["time_downsample"])
        lines = data.loaded
        longest = max(lines.texts_train + lines.texts_val + lines.texts_test, key=text_lines.needed_steps)
        if text_lines.needed_steps(longest) > steps:
            raise ZooError(
                f"The line {longest!r} needs {text_lines.needed_steps(longest)} output steps, but a "
                f"{resolved['input_shape'][1]}-pixel-wide line gives {steps} at time_downsample="
                f"{resolved['time_downsample']}; lower time_downsample (`time_downsample=1`) or raise `max_width`."
            )

    # === Train: per-epoch reading metrics ===
    def callbacks(self, model, data, config, prepared=None):
        return [
            reading_metrics(data.loaded, config.batch_size),
        ]

    # === Evaluate ===
    def evaluate(self, model, data, config, prepared=None):
        lines = data.loaded
        metrics = super().evaluate(model, data, config).metrics
        texts, confidences = read(model, lines.x_test * images.PIXEL_MAX, lines.alphabet, config.batch_size)
        metrics["test_char_error_rate"] = char_error_rate(lines.texts_test, texts)
        metrics["test_exact_match"] = exact_match(lines.texts_test, texts)
        metrics["test_baseline_char_error_rate"] = char_error_rate(
            lines.texts_test, most_frequent_character_baseline(lines.texts_train, len(lines.texts_test))
        )
        return training.Evaluation(metrics, Readings(texts, confidences))

    def baseline(self, model, data, config, evaluation, prepared=None):
        # The better of two trivial readers: the most frequent character (logged by `evaluate`; on
        # lines of varied length it can miss more than every character) and reading nothing (1.0),
        # so a reader stuck in CTC's all-blank start never counts as learned.
        frequent = evaluation.metrics["test_baseline_char_error_rate"]
        return training.Baseline(
            "test_char_error_rate",
            min(frequent, 1.0),
            "most frequent character" if frequent < 1.0 else "reading nothing",
            self.baseline_hint,
            logged_as="test_trivial_char_error_rate",
        )

    # === Log ===
    def log_artifacts(self, model, data, config, evaluation, prepared=None):
        lines = data.loaded
        read_texts, confidences = evaluation.outputs.texts, evaluation.outputs.confidences
        table = io.StringIO()
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(["text", "read", "confidence", "edit_distance"])
        for truth, text, confidence in zip(lines.texts_test, read_texts, confidences):
            writer.writerow([truth, text, f"{confidence:.4f}", edit_distance(truth, text)])
        mlflow.log_text(table.getvalue(), "test_readings.csv")
        mlflow.log_dict({"alphabet": lines.alphabet, "shape": list(lines.shape)}, "alphabet.json")
        if config.worst_lines:
            tracking.log_figure(
                reading_grid(lines.x_test, lines.texts_test, read_texts, confidences, config.worst_lines),
                "worst_test_lines.png",
            )
        if config.output:
            # `zoo predict FOLDER line.png` reads the alphabet from here; `training.save` writes the model.
            try:
                os.makedirs(config.output, exist_ok=True)
            except OSError as error:
                raise ZooError(f"Cannot create the `output` folder {config.output}: {error.strerror}.") from None
            with open(os.path.join(config.output, READER_FILE), "w") as handle:
                json.dump(_reader_metadata(lines), handle, indent=2)

    def log_model(self, model, data):
        return log_reader(model, data.loaded, data.example_inputs)


# === The model for a user's folder ===

# A user's lines are taller, noisier and fewer than the digit default's 4,000 lines of 10 pixels, and
# the `crnn` defaults (no batch normalization, a step every 2 columns) left such a folder in CTC's
# all-blank phase for the whole budget: 1,500 captcha lines read nothing after 20 epochs.
# Batch normalization after each convolution and a step every 4 columns (half the LSTM steps)
# end that phase within a few hundred steps; see `folder_model`.
FOLDER_MODEL = {"batch_norm": True}


def folder_model(lines):
    """The `crnn` hyperparameters a `--data` folder trains with (a `--set` value still wins).

    Args:
        lines: the folder's `LineData`.

    Returns:
        dict of hyperparameters: `FOLDER_MODEL`, and `time_downsample=4` where every line has
        enough output steps for it (else the builder's 2).
    """
    overrides = dict(FOLDER_MODEL)
    width = lines.shape[1]
    longest = max(text_lines.needed_steps(t) for t in lines.texts_train + lines.texts_val + lines.texts_test)
    # Twice the steps the longest line needs: CTC needs room between characters to align them.
    if width // 4 >= 2 * longest:
        overrides["time_downsample"] = 4
    return overrides


# === Reading and scoring ===


def read(model, pixels, alphabet, batch_size=256):
    """Read raw-pixel lines (0-255) with a `crnn` model: (texts, confidences)."""
    from zoo.models import crnn

    probabilities = model.predict(np.asarray(pixels, dtype="float32"), batch_size=batch_size, verbose=0)
    return crnn.decode(probabilities, alphabet)


def edit_distance(truth, read_text):
    """Levenshtein distance: insertions, deletions and substitutions turning `read_text` into `truth`."""
    previous = list(range(len(read_text) + 1))
    for i, a in enumerate(truth, start=1):
        current = [i]
        for j, b in enumerate(read_text, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1]


def char_error_rate(truths, readings):
    """Total edit distance over total characters of the true texts."""
    characters = sum(len(t) for t in truths)
    return sum(edit_distance(t, r) for t, r in zip(truths, readings)) / max(1, characters)


def exact_match(truths, readings):
    """Share of lines read exactly."""
    return float(np.mean([t == r for t, r in zip(truths, readings)])) if truths else 0.0


def most_frequent_character_baseline(train_texts, count):
    """The trivial reader: the most frequent training character, repeated to the median training length."""
    from collections import Counter

    character = Counter("".join(train_texts)).most_common(1)[0][0]
    length = int(np.median([len(t) for t in train_texts]))
    return [character * length] * count


def reading_variety(readings):
    """How varied the non-empty readings are: (distinct texts - 1) / (lines - 1), 0 when the reader
    reads nothing or one text for every line."""
    distinct = len({text for text in readings if text})
    return max(0, distinct - 1) / max(1, len(readings) - 1)


def reading_metrics(lines, batch_size):
    """A Keras callback that adds the validation character error rate, exact match and read share
    (the share of lines read as anything: 0 during CTC's all-blank start) and reading variety (0 while
    at most one distinct text is read for all lines: the blanks, then one guess for every line) to
    each epoch's logs."""
    import keras

    class ReadingMetrics(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is None:
                return
            texts, _ = read(self.model, lines.x_val * images.PIXEL_MAX, lines.alphabet, batch_size)
            logs["val_char_error_rate"] = char_error_rate(lines.texts_val, texts)
            logs["val_exact_match"] = exact_match(lines.texts_val, texts)
            logs["val_read_share"] = float(np.mean([bool(text) for text in texts])) if texts else 0.0
            logs["val_reading_variety"] = reading_variety(texts)

    return ReadingMetrics()


def reading_grid(pixels, truths, readings, confidences, count):
    """A figure of test lines with what was read, worst first (most edits per character, then least sure)."""
    from zoo import plots

    errors = [edit_distance(t, r) / max(1, len(t)) for t, r in zip(truths, readings)]
    order = sorted(range(len(truths)), key=lambda i: (-errors[i], confidences[i]))[:count]
    titles = [
        f"read {readings[i] or '(nothing)'} ({confidences[i]:.2f})"
        + ("" if readings[i] == truths[i] else f", is {truths[i]}")
        for i in order
    ]
    return plots.line_grid(np.asarray(pixels)[order], titles)


# === The logged model: pixels in, text out ===

READER_FILE = "reader.json"


def _reader_metadata(lines):
    height, width, channels = lines.shape
    return {"task": "ocr", "alphabet": lines.alphabet, "image_height": height, "max_width": width, "channels": channels}


def log_reader(model, lines, example_inputs):
    """Log the model behind the `ocr` serving adapter: raw pixels in, `text` and `confidence` out."""
    from zoo import serving

    adapter = serving.Lines(alphabet=lines.alphabet)
    return serving.log_model(model, adapter, example_inputs, metadata=_reader_metadata(lines))


class Reader:
    """What `zoo predict` uses for an OCR model: image files in, (text, confidence) pairs out."""

    def __init__(self, predict, metadata):
        self._predict = predict
        self.height = int(metadata["image_height"])
        self.max_width = int(metadata["max_width"])

    def read_files(self, paths, invert=False):
        pixels = text_lines.read_lines(paths, self.height, self.max_width, invert=invert)
        return self._predict(pixels)


def mlflow_reader(uri, metadata):
    """A `Reader` over the logged pyfunc model at `uri`."""
    model = mlflow.pyfunc.load_model(uri)

    def predict(pixels):
        table = model.predict(pixels)
        return list(zip(table["text"], table["confidence"]))

    return Reader(predict, metadata)


def folder_reader(folder, model):
    """A `Reader` over a `.keras` crnn saved by `--output`, when `reader.json` is beside it; else None."""
    path = os.path.join(folder, READER_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        metadata = json.load(handle)

    def predict(pixels):
        from zoo.models import crnn

        return list(zip(*crnn.decode(model.predict(pixels, verbose=0), metadata["alphabet"])))

    return Reader(predict, metadata)
