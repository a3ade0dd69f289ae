"""Layers that put a forecast's target transform inside the model (`zoo.forecast_transforms`).

`TargetChanges` turns the raw window's target (feature 0) into its step-to-step changes before the
network reads it; `AddReference` adds the network's residual to the reference read from the same
raw window (persistence or seasonal naive), so the model takes raw values and returns raw forecasts.
`FixedScaling` scales raw values in and out of the network with statistics saved as weights.
"""

import keras
import numpy as np
from keras import ops

from zoo import forecast_transforms


@keras.saving.register_keras_serializable(package="zoo")
class TargetChanges(keras.layers.Layer):
    """The target channel (feature 0) of a raw window as its changes from step to step, 0 at the first."""

    def call(self, x):
        target = x[..., :1]
        change = ops.concatenate([ops.zeros_like(target[:, :1]), target[:, 1:] - target[:, :-1]], axis=1)
        return ops.concatenate([change, x[..., 1:]], axis=-1)


@keras.saving.register_keras_serializable(package="zoo")
class AddReference(keras.layers.Layer):
    """Residual (batch, steps, horizon) plus the reference read from the raw window (batch, steps, features).

    Args:
        horizon: steps ahead per window step.
        season: 0: the reference is persistence (the step's own value); above 0: the seasonal-naive
            value (persistence where it lies before the window).
    """

    def __init__(self, horizon, season=0, **kwargs):
        super().__init__(**kwargs)
        self.horizon = int(horizon)
        self.season = int(season)

    def call(self, inputs):
        residual, raw = inputs
        target = raw[..., 0]
        steps = raw.shape[1]
        if not self.season:
            return residual + ops.expand_dims(target, -1)
        index = forecast_transforms.reference_index(steps, self.horizon, self.season).reshape(-1)
        picked = ops.take(target, np.asarray(index, dtype="int32"), axis=1)
        return residual + ops.reshape(picked, (-1, steps, self.horizon))

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return super().get_config() | {"horizon": self.horizon, "season": self.season}


@keras.saving.register_keras_serializable(package="zoo")
class MemberMean(keras.layers.Layer):
    """The mean of several members' outputs, trained as if each member trained on its own.

    The model's loss is the squared error of the mean; this layer adds the members' mean squared
    spread around it, and the two sum to the average of the members' own squared errors (for each
    value, mean((y_k - t)^2) = (mean_k y_k - t)^2 + mean((y_k - mean_k y_k)^2)). So each member's
    gradient is that of its own error, as in an ensemble of networks trained apart (N-BEATS averages
    such members), while serving sees one model and one output.
    """

    def call(self, members):
        stacked = ops.stack(members, axis=0)
        mean = ops.mean(stacked, axis=0)
        self.add_loss(ops.mean(ops.square(stacked - mean)))
        return mean

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@keras.saving.register_keras_serializable(package="zoo")
class FixedScaling(keras.layers.Layer):
    """`(x - mean) / std`, or with `invert` `x * std + mean`, with fixed per-feature statistics.

    The same computation as `keras.layers.Normalization(mean=, variance=)` (std floored at Keras'
    epsilon), but the statistics are non-trainable weights, not constant tensors: tf2onnx turned
    Normalization's constants into graph inputs that onnxruntime then asked for, so a scaled
    forecast could not be exported to ONNX. Weights are frozen into the file.

    Args:
        mean: one value for every feature, or one per feature (the last axis).
        std: as `mean`.
        invert: undo the scaling instead (network outputs back to raw values).
    """

    def __init__(self, mean, std, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.mean_values = np.asarray(mean, dtype="float32")
        self.std_values = np.asarray(std, dtype="float32")
        self.invert = bool(invert)

    def build(self, input_shape):
        def fixed(name, values):
            weight = self.add_weight(
                name=name, shape=values.shape, initializer="zeros", trainable=False, dtype="float32"
            )
            weight.assign(values)
            return weight

        self.mean = fixed("mean", self.mean_values)
        self.std = fixed("std", np.maximum(self.std_values, keras.config.epsilon()))

    def call(self, x):
        mean, std = ops.cast(self.mean, x.dtype), ops.cast(self.std, x.dtype)
        return x * std + mean if self.invert else (x - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config() | {
            "mean": self.mean_values.tolist(),
            "std": self.std_values.tolist(),
            "invert": self.invert,
        }
