"""Multilayer perceptron for tabular rows.

The preprocessing lives inside the model (Keras `Normalization` and lookup layers built from
statistics that the recipe computed on the training split), so a saved model takes raw rows: one
named input per CSV column.
"""

import dataclasses
import re
import typing
import warnings

import keras

from zoo import compiling
from zoo.errors import ZooError
from zoo.registry import check_range, register

TASKS = ("binary", "multiclass", "regression")


@dataclasses.dataclass(frozen=True)
class TabularTraining(compiling.Adam):
    """Adam on the task's loss: binary cross-entropy (accuracy, AUC), sparse categorical
    cross-entropy (accuracy) or mean squared error (MAE, RMSE)."""

    def compile(self, model, architecture):
        loss, metrics = _objective(architecture["task"])
        model.compile(optimizer=self.optimizer(), loss=loss, weighted_metrics=metrics)


@register(
    "mlp",
    technique="mlp",
    tasks=TASKS,
    summary="Fully connected network over numeric and categorical columns, preprocessing included.",
    when_to_use="Tabular data (a CSV): a strong, fast baseline before anything deeper.",
    inputs="With `features`: one named input per column (raw values, shape (batch, 1)); "
    "without: one float tensor of shape (batch, *input_shape).",
    outputs="binary: probability of class 1 (batch, 1); multiclass: class probabilities "
    "(batch, num_classes); regression: the predicted value (batch, 1).",
    recipe="mlp",
    training=TabularTraining,
    exports="tf_saved_model; litert when every categorical column holds text (integer lookup tables need "
    "TensorFlow ops); not onnx (tf2onnx turns the normalization constants into inputs and cannot convert "
    "lookup tables).",
    search_space={
        "learning_rate": "log:1e-4..1e-2",
        "dropout": "0..0.5",
        "hidden_units": "choice:16|32|64|32,16|64,32|128,64",
    },
)
def mlp(
    *,
    features: dict | None = None,
    input_shape: tuple[int, ...] = (30,),
    task: typing.Literal["binary", "multiclass", "regression"] = "binary",
    num_classes: int = 2,
    hidden_units: tuple[int, ...] = (64, 32),
    activation: str = "relu",
    dropout: float = 0.1,
):
    """Build a tabular MLP (`zoo.get` compiles it with `TabularTraining`).

    Args:
        features: column spec from the recipe: {column: {"kind": "numeric", "mean", "variance"}
            or {"kind": "categorical", "dtype": "int64" or "string", "vocabulary": [...]}; a text
            column with `"codes": True` takes integer codes, index + 1 in the vocabulary and 0 for
            an unseen value, one-hot in `keras.ops` on any backend, instead of strings looked up by
            `StringLookup`, which runs on TensorFlow only}.
            None means a single pre-normalized float input of `input_shape`.
        input_shape: shape of one row when `features` is None.
        task: binary or multiclass classification, or regression.
        num_classes: number of classes for multiclass (2 for binary).
        hidden_units: width of each hidden Dense layer, in order.
        activation: activation of the hidden layers (relu, sigmoid, tanh, gelu, ...).
        dropout: dropout rate after each hidden layer.

    Returns:
        A `keras.Model` named `mlp`.
    """
    check_range("dropout", dropout, low=0.0, high=1.0, high_open=True)
    check_range("hidden_units", hidden_units, low=1)
    check_range("input_shape", input_shape, low=1)
    if task == "multiclass":
        check_range("num_classes", num_classes, low=2)
    try:
        keras.activations.get(activation)
    except ValueError:
        raise ZooError(
            f"Unknown activation '{activation}'; use a Keras activation such as relu, sigmoid, tanh "
            f"or gelu. Received: activation={activation!r}"
        ) from None

    # === Inputs and preprocessing ===
    if features:
        inputs, encoded = _feature_inputs(features)
        x = keras.layers.Concatenate(name="features")(encoded) if len(encoded) > 1 else encoded[0]
    else:
        inputs = keras.Input(shape=tuple(input_shape), name="features")
        x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs

    # === Hidden layers ===
    for index, units in enumerate(hidden_units, start=1):
        x = keras.layers.Dense(units, activation=activation, name=f"dense{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout{index}")(x)

    # === Head ===
    outputs = _head(x, task, num_classes)
    with warnings.catch_warnings():
        # Keras warns that dict keys (raw column names) differ from the sanitized input names;
        # the dict structure is what maps columns to inputs, so the difference is intended.
        warnings.filterwarnings("ignore", message="When providing `inputs` as a dict")
        return keras.Model(inputs, outputs, name="mlp")


@keras.saving.register_keras_serializable(package="zoo")
class OneHotVocabulary(keras.layers.Layer):
    """One-hot codes of integer categories in `keras.ops`: what `IntegerLookup(output_mode="one_hot")` gives.

    Column 0 is the out-of-vocabulary slot, then one column per vocabulary entry in order. Keras'
    lookup layers run on TensorFlow whatever the backend and cannot sit in a JAX- or
    PyTorch-compiled model; this one compares each value with the vocabulary, on any backend.

    Args:
        vocabulary: the integer categories, in the order of their columns.
    """

    def __init__(self, vocabulary, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary = [int(v) for v in vocabulary]

    def call(self, inputs):
        values = keras.ops.cast(inputs, "int32")
        vocabulary = keras.ops.convert_to_tensor(self.vocabulary, dtype="int32")
        known = keras.ops.cast(keras.ops.equal(values, vocabulary[None, :]), self.compute_dtype)
        unknown = 1.0 - keras.ops.sum(known, axis=-1, keepdims=True)
        return keras.ops.concatenate([unknown, known], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.vocabulary) + 1)

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary}


def _feature_inputs(features):
    inputs, encoded = {}, []
    for column, spec in features.items():
        name = _layer_name(column)
        kind = spec.get("kind")
        if kind == "numeric":
            inputs[column] = keras.Input(shape=(1,), name=name, dtype="float32")
            layer = keras.layers.Normalization(
                mean=float(spec["mean"]), variance=float(spec["variance"]), name=f"normalize_{name}"
            )
        elif kind == "categorical" and spec.get("dtype") == "string" and spec.get("codes"):
            # Codes 1..n are the vocabulary's entries, 0 the unseen slot: StringLookup's one-hot columns.
            inputs[column] = keras.Input(shape=(1,), name=name, dtype="int64")
            layer = OneHotVocabulary(range(1, len(spec["vocabulary"]) + 1), name=f"onehot_{name}")
        elif kind == "categorical" and spec.get("dtype") == "string":
            inputs[column] = keras.Input(shape=(1,), name=name, dtype="string")
            layer = keras.layers.StringLookup(
                vocabulary=list(spec["vocabulary"]), output_mode="one_hot", name=f"onehot_{name}"
            )
        elif kind == "categorical":
            inputs[column] = keras.Input(shape=(1,), name=name, dtype="int64")
            layer = OneHotVocabulary([int(v) for v in spec["vocabulary"]], name=f"onehot_{name}")
        else:
            raise ZooError(f"Feature '{column}' has kind {kind!r}; use 'numeric' or 'categorical'.")
        encoded.append(layer(inputs[column]))
    return inputs, encoded


def _layer_name(column):
    # Layer names become TensorFlow name scopes under tf.distribute, which allow only
    # [A-Za-z0-9_.-]: "mean radius" or "od280/od315_of_diluted_wines" would fail there. The
    # input dict keeps the real column name as its key, so callers still pass raw columns.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(column))


def _head(x, task, num_classes):
    if task == "binary":
        return keras.layers.Dense(1, activation="sigmoid", name="predictions", dtype="float32")(x)
    if task == "multiclass":
        return keras.layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.layers.Dense(1, name="predictions", dtype="float32")(x)


def _objective(task):
    """The loss and the metrics of a task."""
    if task == "binary":
        return "binary_crossentropy", [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
    if task == "multiclass":
        return "sparse_categorical_crossentropy", [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return "mse", [keras.metrics.MeanAbsoluteError(name="mae"), keras.metrics.RootMeanSquaredError(name="rmse")]
