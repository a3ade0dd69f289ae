"""Did the network learn? Every run compares its test figure with the trivial baseline of its task.

scikit-learn's `DummyClassifier` / `DummyRegressor` are how practitioners check that a model learned
at all; a run does the same check itself. The baseline of a task is what a model with no inputs
scores on the same test rows: the majority training class (accuracy), the training mean (MAE, MSE),
the most frequent training target row (exact match of sequences), persistence or seasonal naive
(forecasts, read from the `test_*_mae` metrics the forecast logs), the most frequent character
(OCR) and an untrained network of the same size (GAN, RBM: their recipes build it).

A recipe declares its baseline with `Recipe.baseline`, which returns a `Baseline` or None; the
default (`default`) covers recipes whose test metric is accuracy, exact match, MAE or MSE on
in-memory targets, and recipes that log a `test_baseline_*` twin of their main metric. The run logs
the baseline as `test_baseline_<metric>`, tags the run `zoo.learned=true|false` (and
`zoo.baseline`), adds a sentence to its description and, when the network did not beat it, prints
one line on the terminal with what to try. `zoo compare` shows the tag, `zoo predict` and
`zoo serve` warn about a model whose run did not learn (`loaded_model_warning`).

This module imports neither TensorFlow, Keras nor MLflow at import time.
"""

import dataclasses
import sys
import typing

import numpy as np

LEARNED_TAG = "zoo.learned"
BASELINE_TAG = "zoo.baseline"
# The hint when a recipe gives none.
DEFAULT_HINT = "more --epochs or a larger --patience"


@dataclasses.dataclass
class Baseline:
    """What the trivial baseline scores on the run's main test metric.

    Attributes:
        metric: the test metric compared (`test_accuracy`, `test_char_error_rate`, ...).
        value: the baseline's value of it on the same test rows.
        name: what the baseline is, for people ("majority class", "persistence", ...).
        hint: what to try when the network does not beat it ("more --epochs, a larger --patience").
        logged_as: the metric the value is logged as (default `test_baseline_<metric>`), for a
            recipe that logs another figure under that name itself.
    """

    metric: str
    value: float
    name: str
    hint: str = DEFAULT_HINT
    logged_as: str | None = None

    @property
    def logged_name(self) -> str:
        """`test_baseline_accuracy` for `test_accuracy`: the metric the baseline is logged as."""
        return self.logged_as or "test_baseline_" + self.metric.removeprefix("test_")

    def greater_is_better(self) -> bool:
        from zoo.tracking.models import greater_is_better

        return greater_is_better(self.metric)

    def beaten_by(self, value: float) -> bool:
        """True when the network's `value` is strictly better than the baseline's."""
        if not np.isfinite(value) or np.isclose(value, self.value, rtol=1e-5, atol=1e-7):
            # A tie is no win; Keras' float32 metrics differ from NumPy's float64 in the 8th digit.
            return False
        return value > self.value if self.greater_is_better() else value < self.value

    def verdict(self, metrics: dict[str, float]) -> str:
        """One sentence for the run's description."""
        value = metrics[self.metric]
        beaten = self.beaten_by(value)
        return (
            f"{'Learned' if beaten else 'Did not learn'}: {self.metric} = {value:.4g} against "
            f"{self.value:.4g} for the trivial baseline ({self.name})."
        )

    def warning(self, metrics: dict[str, float]) -> str:
        """The one terminal line of a run that did not beat its baseline."""
        return (
            f"zoo: warning: the network did not beat the trivial baseline ({self.name}): {self.metric} "
            f"{metrics[self.metric]:.4g} against {self.value:.4g}; try {self.hint}."
        )


# === Baselines from targets ===


def majority_accuracy(train_labels: typing.Any, test_labels: typing.Any) -> float:
    """Accuracy on `test_labels` of always answering the most frequent training class.

    Labels may be class ids of any shape (one per row, or one per step), or one-hot rows.
    """
    train, test = _class_ids(train_labels), _class_ids(test_labels)
    values, counts = np.unique(train, return_counts=True)
    return float(np.mean(test == values[np.argmax(counts)])) if test.size else 0.0


def mean_error(train_targets: typing.Any, test_targets: typing.Any, squared: bool = False) -> float:
    """MAE (or MSE) on `test_targets` of always answering the training mean (per output)."""
    train = np.asarray(train_targets, dtype="float64")
    test = np.asarray(test_targets, dtype="float64")
    error = test - train.mean(axis=0)
    return float(np.mean(error**2 if squared else np.abs(error)))


def most_frequent_row_match(train_targets: typing.Any, test_targets: typing.Any) -> float:
    """Share of test rows equal to the most frequent training row (exact match of sequences)."""
    train = np.asarray(train_targets).reshape(len(train_targets), -1)
    test = np.asarray(test_targets).reshape(len(test_targets), -1)
    rows, counts = np.unique(train, axis=0, return_counts=True)
    best = rows[np.argmax(counts)]
    return float(np.mean(np.all(test == best, axis=1))) if len(test) else 0.0


def _class_ids(labels: typing.Any) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim >= 2 and labels.shape[-1] > 1 and np.issubdtype(labels.dtype, np.floating):
        return labels.argmax(axis=-1).ravel()
    return np.rint(labels.astype("float64")).astype("int64").ravel()


def targets(dataset: typing.Any) -> np.ndarray | None:
    """The targets of an unbatched in-memory dataset of (inputs, targets), or None.

    None for a streamed dataset, one without targets, or targets that are not one array.
    """
    from zoo.training.pipelines import Arrays, Stream

    if dataset is None or isinstance(dataset, Stream):
        return None
    if isinstance(dataset, Arrays):
        elements = dataset.elements
        if isinstance(elements, tuple) and len(elements) == 2 and not isinstance(elements[1], (dict, tuple)):
            return np.asarray(elements[1])
        return None
    spec = getattr(dataset, "element_spec", None)
    if not isinstance(spec, tuple) or len(spec) != 2 or isinstance(spec[1], (dict, tuple)):
        return None
    parts = [np.asarray(y) for y in dataset.map(lambda x, y: y).batch(4096).as_numpy_iterator()]
    return np.concatenate(parts) if parts else None


def default(
    data: typing.Any, metrics: dict[str, float], main_metric: str | None, hint: str = DEFAULT_HINT
) -> Baseline | None:
    """The baseline most recipes need, found from their metrics and targets; None when none applies.

    In this order: a `test_baseline_*` twin of the main metric the recipe logged itself; the best of
    persistence and seasonal naive for a forecast's `test_mae`; else from the in-memory targets: the
    majority class (accuracy), the most frequent target row (exact match), the training mean (MAE,
    and MSE for a regression ranked by its loss).

    Args:
        data: the run's `training.Data` (its train and test splits).
        metrics: the run's test metrics.
        main_metric: the metric that ranks the recipe's runs (`Recipe.ranking_metric`).
        hint: what to try when the network does not beat the baseline.
    """
    from zoo import tracking

    metric = tracking.main_metric([name for name in metrics if not name.startswith("test_baseline_")], main_metric)
    if metric == "test_loss" and "test_mae" in metrics:
        # A regression ranked by its loss: the MAE says the same in the target's units.
        metric = "test_mae"
    if metric is None:
        return None
    twin = "test_baseline_" + metric.removeprefix("test_")
    if twin in metrics:
        return Baseline(metric, metrics[twin], "trivial baseline", hint)
    if metric == "test_mae":
        naive = {
            name: metrics[key]
            for name, key in (("persistence", "test_persistence_mae"), ("seasonal naive", "test_seasonal_naive_mae"))
            if key in metrics
        }
        if naive:
            name = min(naive, key=naive.__getitem__)
            return Baseline(metric, naive[name], name, hint)
    if metric not in ("test_accuracy", "test_exact_match", "test_mae", "test_loss"):
        return None
    if data is None or getattr(data, "streamed", False):
        return None
    train, test = targets(data.train), targets(data.test)
    if train is None or test is None or not len(train) or not len(test):
        return None
    if metric == "test_accuracy":
        return Baseline(metric, majority_accuracy(train, test), "majority class", hint)
    if metric == "test_exact_match":
        return Baseline(metric, most_frequent_row_match(train, test), "most frequent target", hint)
    if metric == "test_mae":
        return Baseline(metric, mean_error(train, test), "training mean", hint)
    if (data.spec or {}).get("task") == "regression":
        return Baseline(metric, mean_error(train, test, squared=True), "training mean", hint)
    return None


# === The verdict, logged and said ===


def report(baseline: Baseline | None, metrics: dict[str, float], run_id: str) -> bool | None:
    """Log the verdict on the run; print one line on the terminal when the network did not learn.

    Args:
        baseline: what `Recipe.baseline` returned (None: the run has no baseline; nothing happens).
        metrics: the run's final metrics (the baseline's value is added to them).
        run_id: the run, whose description (as the recipe left it) gets the verdict appended.

    Returns:
        True when the network beat the baseline, False when not, None without a baseline.
    """
    from zoo import tracking
    from zoo.tracking import mlflow

    if baseline is None or baseline.metric not in metrics:
        return None
    metrics[baseline.logged_name] = float(baseline.value)
    learned = baseline.beaten_by(metrics[baseline.metric])
    mlflow.log_metric(baseline.logged_name, float(baseline.value))
    description = mlflow.MlflowClient().get_run(run_id).data.tags.get(tracking.DESCRIPTION_TAG, "")
    mlflow.set_tags(
        {
            LEARNED_TAG: str(learned).lower(),
            BASELINE_TAG: baseline.name,
            tracking.DESCRIPTION_TAG: f"{description} {baseline.verdict(metrics)}".strip(),
        }
    )
    if not learned:
        print(baseline.warning(metrics), file=sys.stderr, flush=True)
    return learned


def loaded_model_warning(run_id: str | None, tracking_uri: str | None = None) -> str | None:
    """The line `zoo predict` and `zoo serve` print for a model whose run did not beat its baseline.

    Args:
        run_id: the run that logged the model (None: nothing to say).
        tracking_uri: the store that holds it (default: the configured one).

    Returns:
        The warning, or None when the run learned, has no verdict, or cannot be read.
    """
    if not run_id:
        return None
    from zoo.tracking import mlflow

    try:
        run = mlflow.MlflowClient(tracking_uri).get_run(run_id)
    except Exception:  # noqa: BLE001 - only a warning: a run that cannot be read says nothing
        return None
    return not_learned_warning(run.data.tags, run_id)


def not_learned_warning(tags: typing.Mapping[str, str], where: str) -> str | None:
    """The warning for a model from a run tagged `zoo.learned=false`; None otherwise."""
    if tags.get(LEARNED_TAG) != "false":
        return None
    name = tags.get(BASELINE_TAG) or "its trivial baseline"
    return (
        f"zoo: warning: the model of run {where} did not beat the trivial baseline ({name}) on its test "
        "data; its answers may be no better than that baseline's."
    )
