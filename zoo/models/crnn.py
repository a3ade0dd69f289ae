"""CRNN: reads a line of text from an image (convolutions, a bidirectional LSTM over columns, CTC).

The model of keras.io's "OCR model for reading Captchas" and "Handwriting recognition", and of the
recognizers of EasyOCR and PaddleOCR: convolutional blocks turn the image into a feature map, each
column of that map becomes one time step, a bidirectional LSTM reads the steps left to right and
right to left, and a softmax gives, per step, the probability of every character of the alphabet
and of the CTC blank. CTC (connectionist temporal classification) trains it from the text alone,
without saying where each character is; decoding merges repeated characters and drops blanks.

Inputs are raw pixels (0-`pixel_max`) of a fixed height and a fixed maximum width; narrower lines
are padded to it. Output step `t` covers about `time_downsample` pixel columns; index 0 of the last
axis is the blank and index `i` (1-based) the character `alphabet[i - 1]`.
"""

import dataclasses

import keras
from keras import ops

from zoo import compiling
from zoo.errors import ZooError
from zoo.registry import check_range, register

# CTC blank: index 0, which is also the padding of the encoded labels (keras's `mask_index`).
BLANK = 0
# log(0) would make the loss infinite on a confident wrong column.
_EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="zoo")
def ctc_loss(y_true, y_pred):
    """CTC loss of per-step probabilities against labels padded with `BLANK`.

    Args:
        y_true: int labels (batch, max_label_length), characters 1..n left-aligned, then 0.
        y_pred: probabilities (batch, steps, n + 1), blank at index 0.

    Returns:
        Loss per line (batch,).
    """
    y_true = ops.cast(y_true, "int32")
    label_length = ops.sum(ops.cast(ops.not_equal(y_true, BLANK), "int32"), axis=-1)
    batch = ops.shape(y_pred)[0]
    steps = ops.shape(y_pred)[1]
    output_length = ops.full((batch,), steps, dtype="int32")
    # keras.ops.ctc_loss takes logits and normalizes them; log-probabilities are logits that need none.
    log_probabilities = ops.log(ops.clip(ops.cast(y_pred, "float32"), _EPSILON, 1.0))
    return ops.ctc_loss(y_true, log_probabilities, label_length, output_length, mask_index=BLANK)


def decode(probabilities, alphabet):
    """Greedy CTC decoding: the most probable character per step, repeats merged, blanks dropped.

    Args:
        probabilities: (batch, steps, len(alphabet) + 1) outputs of a `crnn` model.
        alphabet: the model's alphabet (its `alphabet` hyperparameter).

    Returns:
        (texts, confidences): a list of strings, and per line the probability of the decoded
        path (the product over steps of the highest probability), a float in [0, 1].

    Example:
        >>> texts, confidences = decode(model.predict(lines), "0123456789")
    """
    probabilities = ops.convert_to_tensor(probabilities, dtype="float32")
    batch, steps = int(probabilities.shape[0]), int(probabilities.shape[1])
    if batch == 0:
        return [], []
    if int(probabilities.shape[2]) != len(alphabet) + 1:
        raise ZooError(
            f"The model outputs {int(probabilities.shape[2])} classes per step, but the alphabet has "
            f"{len(alphabet)} characters (+1 blank); pass the alphabet the model was trained with."
        )
    log_probabilities = ops.log(ops.clip(probabilities, _EPSILON, 1.0))
    lengths = ops.full((batch,), steps, dtype="int32")
    decoded, scores = ops.ctc_decode(log_probabilities, lengths, strategy="greedy", mask_index=BLANK)
    ids = ops.convert_to_numpy(decoded[0])
    confidences = ops.convert_to_numpy(ops.exp(-scores[:, 0]))
    texts = ["".join(alphabet[i - 1] for i in row if i > BLANK) for row in ids.tolist()]
    return texts, [float(c) for c in confidences]


@dataclasses.dataclass(frozen=True)
class CTCTraining(compiling.Adam):
    """Adam on the CTC loss (`ctc_loss`) of the labels against the per-column probabilities."""

    def compile(self, model, architecture):
        model.compile(optimizer=self.optimizer(), loss=ctc_loss)


def output_steps(input_shape, time_downsample):
    """Number of time steps (columns of the final feature map) for an input width."""
    return int(input_shape[1]) // time_downsample


@register(
    "crnn",
    technique="cnn",
    tasks=("ocr",),
    summary="CRNN text-line reader: conv feature extractor, bidirectional LSTM over image columns, CTC.",
    when_to_use="Reading a line of text of unknown length (digits, a word, a printed or handwritten line); "
    "for one character per image, classify it with `cnn` instead.",
    inputs="Raw pixels of text lines, 0-`pixel_max`, shape (batch, height, max_width, 1), padded on the right.",
    outputs="Per-column probabilities, shape (batch, max_width / time_downsample, len(alphabet) + 1); "
    "index 0 is the CTC blank (decode with `zoo.models.crnn.decode`).",
    recipe="ocr",
    training=CTCTraining,
    exports="tf_saved_model, onnx, litert: the per-column probabilities; decode them with `zoo.models.crnn.decode`.",
    search_space={
        "learning_rate": "log:3e-4..3e-3",
        "dropout": "0..0.4",
        "dense_units": "int:32..128",
        "rnn_units": "choice:64,64|128,128|64",
    },
)
def crnn(
    *,
    input_shape: tuple[int, ...] = (32, 128, 1),
    alphabet: str = "0123456789",
    filters: tuple[int, ...] = (32, 64),
    time_downsample: int = 2,
    batch_norm: bool = False,
    dense_units: int = 64,
    rnn_units: tuple[int, ...] = (64, 64),
    dropout: float = 0.25,
    pixel_max: float = 255.0,
):
    """Build a CRNN text-line reader (`zoo.get` compiles it with `CTCTraining`).

    Args:
        input_shape: (height, max_width, channels) of a line image, taken from the data by the recipe.
        alphabet: the characters the model can read, in output order, taken from the training labels.
        filters: filters of each convolutional block (two 3x3 convolutions, then pooling); one block
            per entry. Each block halves the height.
        time_downsample: how many pixel columns one output step covers (1, 2 or 4); the first blocks
            halve the width until it is reached. A line needs at least as many steps as characters
            plus repeated neighbours.
        batch_norm: batch normalization after each convolution; it shortens the first epochs in
            which a CTC model outputs only blanks (used by the small smoke-test models).
        dense_units: width of the Dense layer that maps each column's features before the LSTMs.
        rnn_units: units of each bidirectional LSTM layer (per direction), in order.
        dropout: dropout rate on the column features and between the LSTM layers.
        pixel_max: the largest raw pixel value; inputs are divided by it (255 for 8-bit images).

    Returns:
        A Functional `keras.Model` named `crnn`.

    Raises:
        ZooError: for an input shape that is not (height, width, channels), an empty or repeated
            alphabet, or a value out of range.
    """
    if len(input_shape) != 3:
        raise ZooError(
            f"'input_shape' must be (height, max_width, channels), e.g. 32,128,1. Received: input_shape={input_shape!r}"
        )
    check_range("input_shape", input_shape, low=1)
    if not alphabet or len(set(alphabet)) != len(alphabet):
        raise ZooError(f"'alphabet' must be non-empty characters without repeats. Received: alphabet={alphabet!r}")
    if not filters or not rnn_units:
        raise ZooError("'filters' and 'rnn_units' need at least one entry each, e.g. filters=32,64 rnn_units=64.")
    check_range("filters", filters, low=1)
    check_range("rnn_units", rnn_units, low=1)
    check_range("dense_units", dense_units, low=1)
    if time_downsample not in (1, 2, 4):
        raise ZooError(f"'time_downsample' must be 1, 2 or 4. Received: time_downsample={time_downsample!r}")
    width_poolings = {1: 0, 2: 1, 4: 2}[time_downsample]
    if width_poolings > len(filters):
        raise ZooError(
            f"time_downsample={time_downsample} needs {width_poolings} convolutional blocks; "
            f"filters has {len(filters)}."
        )
    if input_shape[1] // time_downsample < 1:
        raise ZooError(f"input width {input_shape[1]} is narrower than time_downsample={time_downsample}.")
    check_range("dropout", dropout, low=0.0, high=1.0, high_open=True)
    check_range("pixel_max", pixel_max, low=0.0, low_open=True)

    # === Inputs and preprocessing ===
    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    x = keras.layers.Rescaling(1.0 / pixel_max, name="rescale")(inputs)

    # === Convolutional feature extractor ===
    height = int(input_shape[0])
    for block, block_filters in enumerate(filters, start=1):
        for conv in (1, 2):
            prefix = f"block{block}_conv{conv}"
            x = keras.layers.Conv2D(block_filters, 3, padding="same", use_bias=not batch_norm, name=prefix)(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
            x = keras.layers.Activation("relu", name=f"{prefix}_relu")(x)
        # Height halves while it can; width only in the first blocks, so every column stays a step.
        pool = (2 if height >= 2 else 1, 2 if block <= width_poolings else 1)
        if pool != (1, 1):
            x = keras.layers.MaxPooling2D(pool, name=f"block{block}_pool")(x)
            height //= pool[0]

    # === Columns as time steps ===
    # (batch, height, width, filters) -> (batch, width, height * filters): one step per column.
    x = keras.layers.Permute((2, 1, 3), name="columns")(x)
    steps = output_steps(input_shape, time_downsample)
    x = keras.layers.Reshape((steps, height * int(filters[-1])), name="column_features")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="column_dense")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="column_dropout")(x)

    # === Bidirectional LSTMs over the columns ===
    for index, units in enumerate(rnn_units, start=1):
        x = keras.layers.Bidirectional(
            keras.layers.LSTM(units, return_sequences=True, name=f"lstm{index}"), name=f"bilstm{index}"
        )(x)
        if dropout and index < len(rnn_units):
            x = keras.layers.Dropout(dropout, name=f"bilstm{index}_dropout")(x)

    # === Per-step characters ===
    outputs = keras.layers.Dense(len(alphabet) + 1, activation="softmax", name="characters", dtype="float32")(x)

    # === Functional Model ===
    return keras.Model(inputs, outputs, name="crnn")
