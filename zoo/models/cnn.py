"""Image classifiers: a convolutional network, and the course's Keras-quickstart MLP for comparison.

Both take raw pixel values (0-255, any float or integer dtype) of shape (batch, height, width,
channels) and rescale them inside the model, so a saved model predicts on images as they are read
from disk. The convolutional network adapts its depth to the input: a pooling layer is only added
while the feature map is at least 2x2, so 8x8 digits, 28x28 MNIST and 64x64 colour photos all build.
"""

import dataclasses
import typing

import keras

from zoo import compiling
from zoo.errors import ZooError
from zoo.registry import check_range, register

# Not "ocr": one character per image is classification; reading a line of text is `crnn`'s task.
TASKS = ("image_classification",)


def _check_image_input(input_shape, num_classes, pixel_max):
    if len(input_shape) != 3:
        raise ZooError(
            f"'input_shape' must be (height, width, channels), e.g. 28,28,1. Received: input_shape={input_shape!r}"
        )
    check_range("input_shape", input_shape, low=1)
    check_range("num_classes", num_classes, low=2)
    check_range("pixel_max", pixel_max, low=0.0, low_open=True)


@keras.saving.register_keras_serializable(package="zoo")
class RandomShift(keras.layers.Layer):
    """Shift each image by a random fraction of its size while training, filling with zeros.

    What `keras.layers.RandomTranslation(factor, factor, fill_mode="constant")` does (bilinear
    interpolation, uniform shifts up to `factor` of each side), written as two products with
    interpolation matrices (`keras.ops.einsum`), which costs about the same on TensorFlow, JAX and
    PyTorch: `RandomTranslation`'s resampling made a JAX epoch of the digits CNN 13x slower than
    no augmentation (2.48 s against 0.13 s on 2 CPU cores). An identity at inference.

    Args:
        factor: the largest shift as a fraction of height and width.
        seed: seed of the layer's random shifts.
    """

    def __init__(self, factor, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @staticmethod
    def _shift_matrices(size, shift, dtype):
        # matrix[b, i, k]: the weight of input row k in output row i, shifted by shift[b] pixels
        # (linear interpolation: a triangle of width 1 around k = i - shift[b]; rows that fall
        # outside the image read zeros).
        rows = keras.ops.cast(keras.ops.arange(size), dtype)[None, :, None]
        cols = keras.ops.cast(keras.ops.arange(size), dtype)[None, None, :]
        distance = keras.ops.abs(cols - (rows - shift[:, None, None]))
        return keras.ops.maximum(keras.ops.cast(0.0, dtype), 1.0 - distance)

    def call(self, inputs, training=False):
        if not training or not self.factor:
            return inputs
        height, width = inputs.shape[1], inputs.shape[2]
        batch = keras.ops.shape(inputs)[0]
        shifts = keras.random.uniform((2, batch), -self.factor, self.factor, seed=self.seed_generator)
        dy = keras.ops.cast(shifts[0] * height, inputs.dtype)
        dx = keras.ops.cast(shifts[1] * width, inputs.dtype)
        rows = self._shift_matrices(height, dy, inputs.dtype)
        cols = self._shift_matrices(width, dx, inputs.dtype)
        shifted = keras.ops.einsum("bik,bkwc->biwc", rows, inputs)
        return keras.ops.einsum("bjk,bhkc->bhjc", cols, shifted)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


@dataclasses.dataclass(frozen=True)
class ImageTraining(compiling.Adam):
    """Adam on sparse categorical cross-entropy, accuracy reported."""

    def compile(self, model, architecture):
        model.compile(
            optimizer=self.optimizer(),
            loss="sparse_categorical_crossentropy",
            weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )


@register(
    "cnn",
    technique="cnn",
    tasks=TASKS,
    summary="Convolutional network: blocks of 3x3 convolutions and pooling, then a dense head.",
    when_to_use="Images (digits, MNIST, CIFAR, a folder of photos), one label per image (a single "
    "character, too): beats an MLP on pixels because it shares weights across positions and sees "
    "local shapes. To read a line of text, use `crnn`.",
    inputs="Raw pixels, float or integer 0-`pixel_max`, shape (batch, height, width, channels).",
    outputs="Class probabilities, shape (batch, num_classes).",
    recipe="cnn",
    training=ImageTraining,
    exports="tf_saved_model, onnx, litert (without the Random* augmentation layers, which only act in training).",
    search_space={
        "learning_rate": "log:3e-4..3e-3",
        "dropout": "0..0.5",
        "filters": "choice:16,32|32,64",
        "dense_units": "int:32..256",
        "translation": "0..0.2",
    },
)
def cnn(
    *,
    input_shape: tuple[int, ...] = (28, 28, 1),
    num_classes: int = 10,
    filters: tuple[int, ...] = (32, 64),
    convs_per_block: int = 2,
    kernel_size: int = 3,
    pooling: typing.Literal["max", "average", "none"] = "max",
    batch_norm: bool = False,
    dense_units: int = 128,
    dropout: float = 0.3,
    translation: float = 0.1,
    pixel_max: float = 255.0,
):
    """Build a convolutional image classifier (`zoo.get` compiles it with `ImageTraining`).

    Args:
        input_shape: (height, width, channels) of one image; the default is MNIST's, while `zoo train
            cnn` takes it from the data (8, 8, 1 for its default digits).
        num_classes: number of classes, taken from the data by the recipe.
        filters: number of filters of each convolutional block, in order; one block per entry.
        convs_per_block: convolutions per block before its pooling.
        kernel_size: side of the square convolution kernels.
        pooling: pooling at the end of each block (2x2, skipped once the map is below 2x2).
        batch_norm: batch normalization after each convolution (worth trying on larger photos).
        dense_units: width of the dense layer of the head (0: none, straight to the classes).
        dropout: dropout rate before the dense layer and before the output.
        translation: random shift while training, as a fraction of height and width (0: off).
        pixel_max: the largest raw pixel value; inputs are divided by it (255 for 8-bit images).

    Returns:
        A Functional `keras.Model` named `cnn`.

    Raises:
        ZooError: for an input shape that is not (height, width, channels) or a value out of range.
    """
    _check_image_input(input_shape, num_classes, pixel_max)
    check_range("filters", filters, low=1)
    if not filters:
        raise ZooError("'filters' needs at least one block, e.g. 32,64. Received: filters=()")
    check_range("convs_per_block", convs_per_block, low=1)
    check_range("kernel_size", kernel_size, low=1)
    check_range("dense_units", dense_units, low=0)
    check_range("dropout", dropout, low=0.0, high=1.0, high_open=True)
    check_range("translation", translation, low=0.0, high=0.5)

    # === Inputs and preprocessing ===
    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    x = keras.layers.Rescaling(1.0 / pixel_max, name="rescale")(inputs)
    if translation:
        # Active only while training: the saved model predicts on the image as given.
        x = RandomShift(translation, name="augment_shift")(x)

    # === Convolutional blocks ===
    height, width = input_shape[0], input_shape[1]
    for block, width_filters in enumerate(filters, start=1):
        for conv in range(1, convs_per_block + 1):
            prefix = f"block{block}_conv{conv}"
            x = keras.layers.Conv2D(width_filters, kernel_size, padding="same", use_bias=not batch_norm, name=prefix)(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
            x = keras.layers.Activation("relu", name=f"{prefix}_relu")(x)
        # Pool only while both sides are at least 2: an 8x8 digit takes three poolings, not four.
        if pooling != "none" and height >= 2 and width >= 2:
            layer = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
            x = layer(2, name=f"block{block}_pool")(x)
            height, width = height // 2, width // 2

    # === Head ===
    x = keras.layers.Flatten(name="flatten")(x)
    if dense_units:
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout1")(x)
        x = keras.layers.Dense(dense_units, activation="relu", name="dense")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout2")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="cnn")


@register(
    "mlp_image",
    technique="mlp",
    tasks=("image_classification",),
    summary="The Keras quickstart MLP on pixels: Flatten, Dense 128 relu, Dropout 0.2, Dense classes.",
    when_to_use="A baseline to compare with `cnn` on the same images (`zoo train cnn --model mlp_image`).",
    inputs="Raw pixels, float or integer 0-`pixel_max`, shape (batch, height, width, channels).",
    outputs="Class probabilities, shape (batch, num_classes).",
    recipe="cnn",
    training=ImageTraining,
    exports="tf_saved_model, onnx, litert (without the Random* augmentation layers, which only act in training).",
    search_space={"learning_rate": "log:1e-4..1e-2", "dropout": "0..0.5", "hidden_units": "int:32..256"},
)
def mlp_image(
    *,
    input_shape: tuple[int, ...] = (28, 28, 1),
    num_classes: int = 10,
    hidden_units: int = 128,
    dropout: float = 0.2,
    pixel_max: float = 255.0,
):
    """Build the quickstart MLP for images (`zoo.get` compiles it with `ImageTraining`).

    Args:
        input_shape: (height, width, channels) of one image; the default is MNIST's, while `zoo train
            cnn` takes it from the data (8, 8, 1 for its default digits).
        num_classes: number of classes, taken from the data by the recipe.
        hidden_units: width of the hidden Dense layer.
        dropout: dropout rate after the hidden layer.
        pixel_max: the largest raw pixel value; inputs are divided by it (255 for 8-bit images).

    Returns:
        A Functional `keras.Model` named `mlp_image`.

    Raises:
        ZooError: for an input shape that is not (height, width, channels) or a value out of range.
    """
    _check_image_input(input_shape, num_classes, pixel_max)
    check_range("hidden_units", hidden_units, low=1)
    check_range("dropout", dropout, low=0.0, high=1.0, high_open=True)

    # === Layers ===
    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    # The quickstart divides by 255 before `fit`; here the model does it, so it takes raw pixels.
    x = keras.layers.Rescaling(1.0 / pixel_max, name="rescale")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(hidden_units, activation="relu", name="dense")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(x)

    # === Functional Model ===
    return keras.Model(inputs, outputs, name="mlp_image")
