"""Early stopping on the metric a recipe exists for, with the best epoch's weights restored.

fastai's `fit_one_cycle` and Lightning's callbacks stop on the metric that matters; a validation
loss that rises while the network is still learning what it is judged on (CTC's all-blank start,
an accuracy that keeps rising while the loss grows more confident) ends a run too early. So a run
watches, in order of preference, the validation twins of its recipe's monitors (`Recipe.monitors`:
the validation character error rate for OCR, accuracy for classifiers, MAE for forecasts) and falls
back to the validation loss when an epoch's logs hold none of them.

Two more rules, both stateless per epoch so that a resumed run behaves as an uninterrupted one
(`zoo.faults` saves the callback's wait, best and best epoch):

- a warm-up guard: an epoch whose `Recipe.warm_up` log value is 0 (OCR: no validation line read as
  anything) neither counts toward the patience nor becomes the best epoch;
- ties: an epoch that equals the best value of a coarse metric (accuracy on a small validation
  split) is better when its validation loss is lower (the loss nudges the value compared by 1e-7
  of itself, so one number holds both and a checkpoint's saved best restores the tie-break).

`PlateauLearningRate` (`lr_patience`) halves the learning rate on the same count of epochs without
a better score. It is off by default: tried as every recipe's default (a third of its patience) on
the embedded defaults and the outside datasets, it left the tables and image folders as they were
or worse, cost the OCR digit lines and the LSTM's row digits accuracy (the LSTM below its target),
and moved forecasts both ways; only the row and text sequences gained (README: "On data we did
not make").
"""

import math
import typing

import keras

from zoo import faults


class MetricEarlyStopping(faults.ResumableEarlyStopping):
    """`EarlyStopping` on the first of `monitors` the epoch's logs hold, with a warm-up guard.

    Args:
        monitors: log names in order of preference (`val_char_error_rate`, `val_accuracy`, ...);
            `val_loss` is tried last.
        patience: epochs without improvement before stopping.
        warm_up: a log name whose value is 0 while the technique is in a phase training must not
            stop in, or None.
    """

    monitor: str

    def __init__(self, monitors: typing.Sequence[str], patience: int, warm_up: str | None = None):
        from zoo.tracking.models import greater_is_better

        self.candidates = [*dict.fromkeys([*monitors, "val_loss"])]
        first = self.candidates[0]
        super().__init__(
            monitor=first,
            patience=patience,
            restore_best_weights=True,
            mode="max" if greater_is_better(first) else "min",
        )
        self.warm_up = warm_up

    def _choose(self, logs: dict[str, typing.Any]) -> None:
        from zoo.tracking.models import greater_is_better

        current = self.monitor
        if current in logs:
            return
        chosen = next((name for name in self.candidates if name in logs), None)
        if chosen is not None and chosen != current:
            self.monitor = chosen
            self.mode = "max" if greater_is_better(chosen) else "min"
            self.monitor_op = None  # Keras sets it again from `mode` on the next epoch end

    def on_epoch_end(self, epoch: int, logs: dict[str, typing.Any] | None = None) -> None:
        logs = logs or {}
        self._choose(logs)
        if self.warm_up and self.warm_up in logs and not float(logs[self.warm_up]) > 0:
            return
        value, loss = _number(logs.get(self.monitor)), _number(logs.get("val_loss"))
        if value is not None and loss is not None and self.monitor != "val_loss":
            # Ties on a coarse metric go to the lower loss: a nudge far below one validation row's
            # share of an accuracy. One number, so the checkpoint's saved best holds the tie-break too.
            sign = 1.0 if self.mode == "min" else -1.0
            logs = {**logs, self.monitor: value + sign * TIE_BREAK * min(loss, 1e3)}
        super().on_epoch_end(epoch, logs)

    def _is_improvement(self, monitor_value: typing.Any, reference_value: typing.Any) -> bool:
        # In Python floats: Keras compares in float32, which would lose the tie-break's nudge.
        if reference_value is None:
            return True
        value, reference = float(monitor_value), float(reference_value)
        return value < reference if self.mode == "min" else value > reference


# How much of the validation loss decides between epochs equal on the monitor.
TIE_BREAK = 1e-7
# What a plateau multiplies the learning rate by (Keras' ReduceLROnPlateau's default factor is 0.1;
# halving keeps more of the step size a still-improving run needs).
PLATEAU_FACTOR = 0.5


class PlateauLearningRate(keras.callbacks.Callback):
    """Halve the learning rate after every `patience` epochs in which early stopping saw no better score.

    It reads the early-stopping callback's own count of epochs without improvement (placed after
    it), so it follows the same monitor, warm-up guard and tie-break, and holds no state of its
    own: a resumed run, whose early-stopping state and optimizer (learning rate included) come
    from the checkpoint, goes on exactly as an uninterrupted one. Each epoch's learning rate is
    added to its logs (the `learning_rate` metric).
    """

    def __init__(self, early_stopping: typing.Any, patience: int, factor: float = PLATEAU_FACTOR):
        super().__init__()
        self.early_stopping = early_stopping
        self.patience = patience
        self.factor = factor

    def on_epoch_end(self, epoch: int, logs: dict[str, typing.Any] | None = None) -> None:
        rate = getattr(getattr(self.model, "optimizer", None), "learning_rate", None)
        if not isinstance(rate, keras.Variable):
            return  # a schedule of the user's, or a model with several optimizers (the GAN's)
        wait = int(getattr(self.early_stopping, "wait", 0))
        if wait and wait % self.patience == 0 and not self.model.stop_training:
            rate.assign(float(rate.numpy()) * self.factor)
        if logs is not None:
            logs["learning_rate"] = float(rate.numpy())


def _number(value: typing.Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
