"""Recurrent networks (simple RNN, LSTM, GRU) in the three sequence configurations.

One builder per cell (`rnn`, `lstm`, `gru`), each with `mode`:

- `many_to_one`: a sequence in, one prediction out (classify a digit scan read row by row, the
  sentiment of a review).
- `many_to_many`: a sequence in, one prediction per step out (label every frame of a video,
  forecast the next value of a series at every step).
- `one_to_many`: one vector or image in, a token sequence out (caption an image character by
  character). The model trains with teacher forcing: it takes the image and the caption shifted
  right (`START` first) and predicts the caption followed by `END`. At inference time
  `greedy_decoder(model)` rebuilds, from the trained layers, a model that takes the image alone and
  feeds each predicted token back in; `greedy_decode(model, images)` returns the token ids.

Padded steps are masked: token inputs mask id 0 (`PAD`); float sequences mask the steps whose
features all equal `mask_value`. The loss and metrics then skip those steps.
"""

import dataclasses
import typing

import keras
from keras import ops

from zoo import compiling

# The configurations and the caption vocabulary's reserved token ids are defined once, beside the
# data that follows them (constants, not a data load; zoo.datasets.sequences imports no framework).
from zoo.datasets.sequences import END, MODES, START
from zoo.errors import ZooError
from zoo.models import forecast_layers
from zoo.registry import check_range, register

_CELLS = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}

_DOC = """Build a {title} network in one of the three sequence configurations.

    `zoo.get` compiles it with `RecurrentTraining`.

    Args:
        mode: many_to_one (batch, steps, features) -> (batch, outputs); many_to_many
            (batch, steps, features) -> (batch, steps, outputs); one_to_many: (image or vector,
            previous tokens) -> (batch, output_steps, num_outputs), decoded greedily by
            `zoo.models.recurrent.greedy_decoder`.
        input_shape: many_to_one and many_to_many: (steps, features) for float sequences or (steps,)
            for token ids (with vocabulary_size > 0); steps 0 means any length. one_to_many: the
            shape of the input image or vector.
        task: multiclass (softmax over num_outputs), binary (one sigmoid unit) or regression
            (num_outputs linear values); one_to_many is always multiclass over the vocabulary.
        num_outputs: classes (multiclass), values per step (regression), or the caption vocabulary
            size including PAD, START and END (one_to_many).
        step_units: many_to_one and many_to_many: widths of Dense layers applied to every step
            before the recurrent layers (a per-frame encoder, e.g. for video frames); () for none.
        units: width of each stacked recurrent layer, in order.
        bidirectional: read the sequence in both directions (many_to_one and many_to_many only; not
            for forecasting, where it would see the future). None: yes for many_to_one and
            many_to_many, no for one_to_many.
        dropout: dropout rate on the inputs of each recurrent layer and before the output layer.
        mask_value: skip the steps of a float sequence whose features all equal this value
            (padding); None masks nothing.
        vocabulary_size: above 0, many_to_one and many_to_many take token ids (0 = padding,
            masked) and embed them.
        embedding_dim: width of the token embedding (token inputs and the caption decoder).
        encoder_units: one_to_many only: width of the Dense layer that reads the image before it
            becomes the decoder's initial state.
        output_steps: one_to_many only: caption length in tokens, END included.
        input_mean: many_to_one and many_to_many float sequences: per-feature mean subtracted
            inside the model (fixed, e.g. from the training part of a series); () for none.
        input_std: per-feature standard deviation the inputs are divided by (with input_mean).
        output_mean: regression: mean added back to the outputs inside the model, so the model
            returns raw-scale values; one value, or one per output; () for none.
        output_std: regression: standard deviation the outputs are multiplied by (with
            output_mean); the loss stays on the standardized scale.
        target_transform: many_to_many forecasts (float sequences, regression): "none"; "diff":
            the network reads the target (feature 0) as its step-to-step changes and returns the
            residual over persistence, added back inside the model; "seasonal": the residual over
            the seasonal-naive forecast (needs reference_season). input_*/output_* then hold the statistics
            of the changes and residuals (`zoo.forecast_transforms`).
        reference_season: season length in steps for target_transform="seasonal".
        members: many_to_one and many_to_many regression: how many networks (recurrent layers and
            head, each from its own initial weights) read the same scaled inputs; the model returns
            their mean and trains each member on its own error (`forecast_layers.MemberMean`).
        linear_lags: many_to_many float sequences: above 0, each member's output adds a linear
            autoregression on the last linear_lags scaled steps (a causal convolution: LSTNet's
            highway), so the network only learns what a linear model misses.

    Returns:
        A `keras.Model` named `{name}_<mode>`.

    Raises:
        ZooError: for a shape that does not fit the mode, bidirectional one_to_many, or a value out
            of range.
    """


def _make_builder(cell, default_units):
    """Return the registered builder of `cell`: one signature shared by the three cells.

    Only the default width differs: on the digit benchmarks an LSTM gained from 128 units (row
    sequences, 3 seeds: 0.983-0.989 against 0.961-0.989 with 64) where a simple RNN lost.
    """

    def builder(
        *,
        mode: typing.Literal["many_to_one", "many_to_many", "one_to_many"] = "many_to_one",
        input_shape: tuple[int, ...] = (8, 8),
        task: typing.Literal["multiclass", "binary", "regression"] = "multiclass",
        num_outputs: int = 10,
        step_units: tuple[int, ...] = (),
        units: tuple[int, ...] = default_units,
        bidirectional: bool | None = None,
        dropout: float = 0.1,
        mask_value: float | None = None,
        vocabulary_size: int = 0,
        embedding_dim: int = 32,
        encoder_units: int = 128,
        output_steps: int = 6,
        input_mean: tuple[float, ...] = (),
        input_std: tuple[float, ...] = (),
        output_mean: tuple[float, ...] = (),
        output_std: tuple[float, ...] = (),
        target_transform: typing.Literal["none", "diff", "seasonal"] = "none",
        reference_season: int = 0,
        members: int = 1,
        linear_lags: int = 0,
    ):
        return build(
            cell,
            mode=mode,
            input_shape=input_shape,
            task=task,
            num_outputs=num_outputs,
            step_units=step_units,
            units=units,
            bidirectional=bidirectional,
            dropout=dropout,
            mask_value=mask_value,
            vocabulary_size=vocabulary_size,
            embedding_dim=embedding_dim,
            encoder_units=encoder_units,
            output_steps=output_steps,
            scaling=(input_mean, input_std, output_mean, output_std),
            transform=(target_transform, reference_season),
            members=members,
            linear_lags=linear_lags,
        )

    builder.__name__ = builder.__qualname__ = cell
    builder.__doc__ = _DOC.format(title=_TITLES[cell], name=cell)
    return builder


@dataclasses.dataclass(frozen=True)
class RecurrentTraining(compiling.Adam):
    """Adam with gradient clipping on the task's loss: sparse categorical cross-entropy (accuracy),
    binary cross-entropy (accuracy) or mean squared error (MAE, RMSE; weighted by 1 / output_std^2
    when the model returns raw-scale values).

    Args:
        clipnorm: clip each gradient to this norm (recurrent nets can explode); 0 disables.
    """

    learning_rate: float = 3e-3
    clipnorm: float = 1.0

    def check(self):
        super().check()
        check_range("clipnorm", self.clipnorm, low=0.0)

    def compile(self, model, architecture):
        loss, metrics = _objective(architecture["task"])
        output_std = architecture["output_std"]
        # Raw-scale outputs would make the loss (and the clipped gradients) depend on the data's
        # units: weighting the MSE by 1 / std^2 keeps it the standardized loss, while the metrics
        # stay raw.
        loss_weights = [1.0 / float(max(output_std)) ** 2] if output_std else None
        model.compile(
            optimizer=self.optimizer(clipnorm=self.clipnorm or None),
            loss=loss,
            weighted_metrics=metrics,
            loss_weights=loss_weights,
        )


_TITLES = {"rnn": "simple (Elman) RNN", "lstm": "long short-term memory (LSTM)", "gru": "gated recurrent unit (GRU)"}
_CARD: dict[str, typing.Any] = dict(
    technique="rnn",
    tasks=("multiclass", "binary", "regression", "sequence_labelling", "forecasting", "captioning"),
    inputs="mode many_to_one/many_to_many: float sequences (batch, steps, features), or token ids "
    "(batch, steps) with vocabulary_size > 0. one_to_many: [image or vector (batch, *input_shape), "
    "previous tokens (batch, output_steps)] (teacher forcing); greedy_decoder(model) takes the image alone.",
    outputs="many_to_one: (batch, num_outputs); many_to_many: (batch, steps, num_outputs); "
    "one_to_many: token probabilities (batch, output_steps, num_outputs).",
    search_space={"learning_rate": "log:1e-3..1e-2", "dropout": "0..0.4", "units": "choice:32|64|128|64,64"},
    exports="tf_saved_model, onnx, litert (recurrent layers unrolled for litert) for sequences, frames, forecasts "
    "and token ids; the caption decoder (one_to_many) only tf_saved_model: argmax's Bitcast has no ONNX or "
    "LiteRT operator.",
)

rnn = register(
    "rnn",
    summary="Simple (Elman) recurrent network; mode many_to_one, many_to_many or one_to_many.",
    when_to_use="Short sequences (tens of steps) and teaching: the plainest recurrence; "
    "prefer lstm or gru when dependencies span many steps.",
    recipe="rnn",
    training=RecurrentTraining,
    **_CARD,
)(_make_builder("rnn", (64,)))
lstm = register(
    "lstm",
    summary="LSTM recurrent network; mode many_to_one, many_to_many or one_to_many.",
    when_to_use="Sequences with long-range dependencies (text, long series): gates keep gradients alive.",
    recipe="lstm",
    training=RecurrentTraining,
    **_CARD,
)(_make_builder("lstm", (128,)))
gru = register(
    "gru",
    summary="GRU recurrent network; mode many_to_one, many_to_many or one_to_many.",
    when_to_use="Like lstm with fewer parameters and faster steps; often as accurate on short sequences.",
    recipe="gru",
    training=RecurrentTraining,
    **_CARD,
)(_make_builder("gru", (64,)))


def build(
    cell,
    *,
    mode,
    input_shape,
    task,
    num_outputs,
    step_units,
    units,
    bidirectional,
    dropout,
    mask_value,
    vocabulary_size,
    embedding_dim,
    encoder_units,
    output_steps,
    scaling=((), (), (), ()),
    transform=("none", 0),
    members=1,
    linear_lags=0,
):
    """Build the network of `cell` (rnn, lstm or gru); see the registered builders."""
    if mode not in MODES:
        raise ZooError(f"Unknown mode {mode!r}; use one of {', '.join(MODES)}.")
    check_range("units", units, low=1)
    check_range("step_units", step_units, low=1)
    check_range("dropout", dropout, low=0.0, high=1.0, high_open=True)
    check_range("embedding_dim", embedding_dim, low=1)
    check_range("vocabulary_size", vocabulary_size, low=0)
    if not units:
        raise ZooError("'units' needs at least one recurrent layer width, e.g. units=64 or units=64,64.")
    if bidirectional is None:
        bidirectional = mode != "one_to_many"
    _check_scaling(mode, task, vocabulary_size, input_shape, num_outputs, *scaling)
    _check_transform(mode, task, vocabulary_size, input_shape, *transform)
    check_range("members", members, low=1)
    if members > 1 and (mode == "one_to_many" or task != "regression"):
        raise ZooError(
            f"members={members} averages regression outputs (many_to_one, many_to_many); "
            f"mode is {mode!r} and task {task!r}. Pass members=1."
        )
    check_range("linear_lags", linear_lags, low=0)
    if linear_lags and (mode != "many_to_many" or vocabulary_size > 0):
        raise ZooError(
            f"linear_lags={linear_lags} adds a linear autoregression to every step of a float many_to_many "
            f"sequence; mode is {mode!r}{' with token inputs' if vocabulary_size else ''}. Pass linear_lags=0."
        )
    if mode == "one_to_many":
        return _one_to_many(
            cell,
            input_shape,
            num_outputs,
            units,
            dropout,
            embedding_dim,
            encoder_units,
            output_steps,
            bidirectional,
            task,
        )
    return _sequence_model(
        cell,
        mode,
        input_shape,
        task,
        num_outputs,
        step_units,
        units,
        bidirectional,
        dropout,
        mask_value,
        vocabulary_size,
        embedding_dim,
        scaling,
        transform,
        members,
        linear_lags,
    )


def _check_transform(mode, task, vocabulary_size, input_shape, target_transform, reference_season):
    """Refuse a target transform the model cannot invert: it needs raw float windows of a fixed length."""
    check_range("reference_season", reference_season, low=0)
    if target_transform not in ("none", "diff", "seasonal"):
        raise ZooError(f"target_transform must be none, diff or seasonal. Received: {target_transform!r}")
    if target_transform == "none":
        return
    if mode != "many_to_many" or task != "regression" or vocabulary_size > 0 or len(input_shape) != 2:
        raise ZooError("target_transform applies to many_to_many regression on float sequences (forecasts).")
    if not input_shape[0]:
        raise ZooError("target_transform needs windows of a fixed length: give input_shape=(steps, features).")
    if target_transform == "seasonal" and not reference_season:
        raise ZooError("target_transform='seasonal' needs reference_season=M, the season length in steps.")


def _check_scaling(
    mode, task, vocabulary_size, input_shape, num_outputs, input_mean, input_std, output_mean, output_std
):
    """Refuse scaling the model cannot apply: it needs float inputs, matching lengths, stds above 0."""
    if not (input_mean or input_std or output_mean or output_std):
        return
    if mode == "one_to_many" or vocabulary_size > 0:
        raise ZooError("input_mean/input_std/output_mean/output_std apply to float sequences, not tokens or images.")
    if bool(input_mean) != bool(input_std) or bool(output_mean) != bool(output_std):
        raise ZooError("Pass input_mean with input_std and output_mean with output_std (a mean and a scale each).")
    check_range("input_std", input_std, low=0.0, low_open=True)
    check_range("output_std", output_std, low=0.0, low_open=True)
    features = input_shape[-1] if len(input_shape) == 2 else None
    if input_mean and not (len(input_mean) == len(input_std) and len(input_mean) in (1, features)):
        raise ZooError(
            f"input_mean and input_std need 1 or {features} values (one per feature). "
            f"Received: {len(input_mean)} and {len(input_std)}"
        )
    if output_mean and task != "regression":
        raise ZooError(f"output_mean/output_std rescale regression outputs; task is {task!r}.")
    if output_mean and not (len(output_mean) == len(output_std) and len(output_mean) in (1, num_outputs)):
        raise ZooError(
            f"output_mean and output_std need 1 or {num_outputs} values (one per output). "
            f"Received: {len(output_mean)} and {len(output_std)}"
        )


def _sequence_model(
    cell,
    mode,
    input_shape,
    task,
    num_outputs,
    step_units,
    units,
    bidirectional,
    dropout,
    mask_value,
    vocabulary_size,
    embedding_dim,
    scaling,
    transform=("none", 0),
    members=1,
    linear_lags=0,
):
    tokens = vocabulary_size > 0
    expected = 1 if tokens else 2
    if len(input_shape) != expected:
        form = "(steps,) of token ids" if tokens else "(steps, features)"
        raise ZooError(
            f"input_shape for mode {mode} must be {form} (steps 0 = any length); an image reads as "
            f"(height, width * channels), one row per step. Received: input_shape={tuple(input_shape)!r}"
        )
    check_range("input_shape", input_shape, low=0)
    if not tokens:
        check_range("input_shape features", input_shape[1:], low=1)
    if tokens and mask_value is not None:
        raise ZooError(
            "mask_value applies to float sequences; token inputs already mask id 0 (padding). Leave mask_value unset."
        )
    _check_outputs(task, num_outputs)
    steps = input_shape[0] or None

    # === Inputs and masking ===
    if tokens:
        inputs = keras.Input(shape=(steps,), dtype="int32", name="tokens")
        x = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True, name="embedding")(inputs)
    else:
        inputs = keras.Input(shape=(steps, input_shape[1]), name="sequence")
        x = inputs
        if mask_value is not None:
            x = keras.layers.Masking(mask_value=mask_value, name="masking")(x)
        if transform[0] != "none":
            x = forecast_layers.TargetChanges(name="target_changes")(x)
        input_mean, input_std = scaling[0], scaling[1]
        if input_mean:
            # Fixed statistics (not adapted): the model takes raw values and saves them with itself.
            x = forecast_layers.FixedScaling(_values(input_mean), _values(input_std), name="scale_inputs")(x)

    scaled = x

    # === Step encoder: the same Dense layers read every step ===
    for index, width in enumerate(step_units, start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"step_dense{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"step_dropout{index}")(x)

    # === Recurrent layers and head, once per member ===
    heads = []
    for member in range(1, members + 1):
        prefix = f"member{member}_" if members > 1 else ""
        y = x
        for index, width in enumerate(units, start=1):
            last = index == len(units)
            layer = _CELLS[cell](
                width,
                dropout=dropout,
                return_sequences=(mode == "many_to_many" or not last),
                name=f"{prefix}{cell}{index}",
            )
            if bidirectional:
                layer = keras.layers.Bidirectional(layer, name=f"{prefix}bidirectional{index}")
            y = layer(y)
        if dropout:
            y = keras.layers.Dropout(dropout, name=f"{prefix}head_dropout")(y)
        head = _head(y, task, num_outputs, name=f"{prefix}predictions")
        if linear_lags:
            linear = keras.layers.Conv1D(
                num_outputs,
                linear_lags,
                padding="causal",
                kernel_initializer="zeros",
                name=f"{prefix}linear_ar",
                dtype="float32",
            )(scaled)
            head = keras.layers.Add(name=f"{prefix}add_linear_ar", dtype="float32")([head, linear])
        heads.append(head)
    if members > 1:
        outputs = forecast_layers.MemberMean(name="member_mean", dtype="float32")(heads)
    else:
        outputs = heads[0]
    output_mean, output_std = scaling[2], scaling[3]
    if output_mean:
        outputs = forecast_layers.FixedScaling(
            _values(output_mean), _values(output_std), invert=True, name="unscale_outputs", dtype="float32"
        )(outputs)
    if transform[0] != "none":
        season = transform[1] if transform[0] == "seasonal" else 0
        # The residual goes back onto persistence or the seasonal naive of the raw window: raw out.
        outputs = forecast_layers.AddReference(num_outputs, season, name="add_reference", dtype="float32")(
            [outputs, inputs]
        )
    return keras.Model(inputs, outputs, name=f"{cell}_{mode}")


def _values(values):
    """One value broadcasts to every feature; several are one per feature (the last axis)."""
    import numpy as np

    array = np.asarray(values, dtype="float32")
    return array[0] if len(array) == 1 else array


def _one_to_many(
    cell, input_shape, num_outputs, units, dropout, embedding_dim, encoder_units, output_steps, bidirectional, task
):
    if bidirectional:
        raise ZooError(
            "bidirectional applies to many_to_one and many_to_many: a one_to_many decoder "
            "writes left to right. Pass bidirectional=false."
        )
    if task != "multiclass":
        raise ZooError(f"one_to_many predicts tokens, so task must be multiclass. Received: task={task!r}")
    check_range("input_shape", input_shape, low=1)
    if not input_shape:
        raise ZooError("input_shape for one_to_many is the shape of the input image or vector, e.g. 8,8,1.")
    check_range("output_steps", output_steps, low=1)
    check_range("encoder_units", encoder_units, low=1)
    if num_outputs <= END + 1:
        raise ZooError(
            f"num_outputs for one_to_many is the vocabulary size: PAD, START, END and at least "
            f"one token, so 4 or more. Received: num_outputs={num_outputs}"
        )

    # === Inputs ===
    image = keras.Input(shape=tuple(input_shape), name="image")
    previous = keras.Input(shape=(output_steps,), dtype="int32", name="previous_tokens")

    # === Encoder: the image becomes each decoder layer's initial state ===
    states = _encode(image, cell, units, encoder_units)

    # === Decoder, teacher forced: step t reads the true token t-1 ===
    y = keras.layers.Embedding(num_outputs, embedding_dim, mask_zero=True, name="token_embedding")(previous)
    for index, width in enumerate(units, start=1):
        layer = _CELLS[cell](width, dropout=dropout, return_sequences=True, return_state=True, name=f"decoder{index}")
        y = layer(y, initial_state=states[index - 1])[0]
    probabilities = keras.layers.Dense(num_outputs, activation="softmax", name="predictions", dtype="float32")(y)
    return keras.Model([image, previous], probabilities, name=f"{cell}_one_to_many")


def _encode(image, cell, units, encoder_units, layers=None):
    """Map the image to one initial state per decoder layer ([h] or [h, c] for an LSTM)."""
    get = (lambda name, make: layers[name]) if layers else (lambda name, make: make())
    x = image
    if len(image.shape) > 2:
        x = get("flatten", lambda: keras.layers.Flatten(name="flatten"))(x)
    x = get("encoder", lambda: keras.layers.Dense(encoder_units, activation="relu", name="encoder"))(x)
    states = []
    for index, width in enumerate(units, start=1):
        names = ["h", "c"] if cell == "lstm" else ["h"]
        states.append(
            [
                get(
                    f"state{index}_{part}",
                    lambda part=part, width=width, index=index: keras.layers.Dense(
                        width, activation="tanh", name=f"state{index}_{part}"
                    ),
                )(x)
                for part in names
            ]
        )
    return states


def _check_outputs(task, num_outputs):
    check_range("num_outputs", num_outputs, low=1)
    if task == "multiclass" and num_outputs < 2:
        raise ZooError(f"multiclass needs num_outputs >= 2 classes. Received: num_outputs={num_outputs}")


def _head(x, task, num_outputs, name="predictions"):
    if task == "binary":
        return keras.layers.Dense(1, activation="sigmoid", name=name, dtype="float32")(x)
    if task == "multiclass":
        return keras.layers.Dense(num_outputs, activation="softmax", name=name, dtype="float32")(x)
    return keras.layers.Dense(num_outputs, name=name, dtype="float32")(x)


def _objective(task):
    """The loss and the metrics of a task (one_to_many is always multiclass over tokens)."""
    if task == "binary":
        return "binary_crossentropy", [keras.metrics.BinaryAccuracy(name="accuracy")]
    if task == "multiclass":
        return "sparse_categorical_crossentropy", [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return "mse", [keras.metrics.MeanAbsoluteError(name="mae"), keras.metrics.RootMeanSquaredError(name="rmse")]


# === Inference ===


def greedy_decoder(model, *, start_token=START):
    """Build the inference model of a trained one_to_many network: image in, tokens fed back.

    The decoder shares the trained layers (found by name, so a model loaded from `.keras` works
    too). It starts from `start_token` and, at each step, feeds the most probable token back in.

    Args:
        model: a one_to_many model from `zoo.get(cell, mode="one_to_many")`, trained or loaded.
        start_token: the id the captions start with (`START`).

    Returns:
        A `keras.Model` mapping images (batch, *input_shape) to token probabilities
        (batch, output_steps, vocabulary); take `argmax(-1)` for the tokens, cut at `END`.

    Raises:
        ZooError: if `model` is not a one_to_many recurrent model.

    Example:
        >>> model = zoo.get("lstm", mode="one_to_many", input_shape=(8, 8, 1), num_outputs=18)
        >>> decoder = greedy_decoder(model)
        >>> tokens = decoder.predict(images).argmax(-1)
    """
    layers = {layer.name: layer for layer in model.layers}
    if not {"previous_tokens", "token_embedding", "decoder1", "predictions"} <= set(layers):
        raise ZooError(
            f"greedy_decoder needs a one_to_many recurrent model; {model.name!r} is not one. "
            "Build it with zoo.get('lstm', mode='one_to_many')."
        )
    decoders = []
    while f"decoder{len(decoders) + 1}" in layers:
        decoders.append(layers[f"decoder{len(decoders) + 1}"])
    cell = "lstm" if "state1_c" in layers else "rnn"
    output_steps = int(model.get_layer("previous_tokens").output.shape[1])
    image_shape = tuple(model.get_layer("image").output.shape[1:])

    # === Layers: the trained ones ===
    image = keras.Input(shape=image_shape, name="image")
    states = _encode(image, cell, [d.units for d in decoders], None, layers=layers)
    embedding, head = layers["token_embedding"], layers["predictions"]

    # === Greedy loop, unrolled: one step per output token ===
    flat = ops.reshape(image, (-1, int(_prod(image_shape))))
    token = ops.cast(ops.zeros_like(flat[:, :1]), "int32") + start_token
    steps = []
    for _ in range(output_steps):
        y = embedding(token)
        for index, decoder in enumerate(decoders):
            y, *states[index] = decoder(y, initial_state=states[index])
        probabilities = head(y)
        steps.append(probabilities)
        token = ops.cast(ops.argmax(probabilities, axis=-1), "int32")
    outputs = ops.concatenate(steps, axis=1) if len(steps) > 1 else steps[0]
    return keras.Model(image, outputs, name=f"{model.name}_greedy_decoder")


def greedy_decode(model, inputs, *, batch_size=256):
    """Decode `inputs` greedily with a one_to_many model (or its `greedy_decoder`).

    Returns:
        int array (batch, output_steps) of token ids; what follows the first `END` is noise.
    """
    if "previous_tokens" in [layer.name for layer in model.layers]:
        model = greedy_decoder(model)
    return ops.convert_to_numpy(model.predict(inputs, batch_size=batch_size, verbose=0)).argmax(-1)


def _prod(values):
    result = 1
    for value in values:
        result *= int(value)
    return result
