"""The run's model in MLflow: logging it for serving, registering it, and the champion/challenger
policy that ranks registered versions by the main test metric.

Anything about which metric ranks runs or how registered versions are aliased belongs here.
"""

from zoo.errors import ZooError
from zoo.tracking.lazy import mlflow

CHAMPION, CHALLENGER = "champion", "challenger"
# Substrings of metric names where a smaller value is better; any other metric: larger is better.
LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "rmse", "fid", "perplexity", "distance")


def log_model(model, example_inputs, metadata=None, adapter=None):
    """Log a Keras model that MLflow serves on raw inputs, with a signature from `example_inputs`.

    The logged model has MLflow's `keras` flavor and a `python_function` flavor that predicts
    through `adapter` (`zoo.serving`; default: one array in, the model's output back).
    `metadata` (e.g. class names) is stored in the MLmodel file and travels with the model.
    """
    from zoo import serving

    return serving.log_model(model, adapter or serving.Tensor(), example_inputs, metadata=metadata)


def greater_is_better(metric):
    """True when a larger value of `metric` is better (accuracy), False for losses and errors."""
    return not any(word in metric.lower() for word in LOWER_IS_BETTER)


def main_metric(metrics, preferred=None):
    """Return the name of the test metric that ranks runs, or None when there is none.

    Args:
        metrics: names (or a dict keyed by names) of the metrics at hand.
        preferred: a recipe's `main_metric`; used when present in `metrics`.
    """
    names = list(metrics)
    for name in (preferred, "test_accuracy", "test_loss"):
        if name and name in names:
            return name
    return next((name for name in sorted(names) if name.startswith("test_")), None)


def register_model(model_info, name, metrics, preferred_metric=None):
    """Register the run's logged model as a new version of `name` and give it an alias.

    The new version becomes `champion` when there is no champion yet or when it beats the champion
    on the main test metric (strictly); otherwise it becomes `challenger`. Aliases, not the
    deprecated stages. The run gets the tags `zoo.registered_model` and `zoo.model_alias`.

    Args:
        model_info: what `log_model` returned (None: the model last logged in this run).
        name: registered model name.
        metrics: the run's final metrics.
        preferred_metric: the recipe's `main_metric` (see `main_metric`).

    Returns:
        (version number, alias).
    """
    import sys

    client = mlflow.MlflowClient()
    run_id = mlflow.active_run().info.run_id
    model_uri = getattr(model_info, "model_uri", None)
    if model_uri is None:
        logged = mlflow.last_logged_model()
        if logged is None or logged.source_run_id != run_id:
            raise ZooError("`register` found no model logged by this run: the recipe's log_model logged none.")
        model_uri = logged.model_uri
    metric = main_metric(metrics, preferred_metric)
    value = metrics.get(metric) if metric else None
    tags = {"zoo.main_metric": metric, "zoo.main_metric_value": repr(value)} if metric else {}
    version = mlflow.register_model(model_uri, name, tags=tags)

    champion = _version_by_alias(client, name, CHAMPION)
    if champion is None:
        alias, why = CHAMPION, "first champion"
    else:
        best = _version_metric(client, champion, metric)
        if value is None or best is None:
            alias, why = CHALLENGER, f"no {metric or 'test metric'} to compare with champion v{champion.version}"
        elif (value > best) if greater_is_better(metric) else (value < best):
            alias, why = CHAMPION, f"{metric} {value:.4g} beats champion v{champion.version}'s {best:.4g}"
        else:
            alias, why = CHALLENGER, f"{metric} {value:.4g} does not beat champion v{champion.version}'s {best:.4g}"
    client.set_registered_model_alias(name, alias, version.version)
    mlflow.set_tags({"zoo.registered_model": f"{name}/{version.version}", "zoo.model_alias": alias})
    print(f"zoo: registered {name} version {version.version} as @{alias} ({why})", file=sys.stderr)
    return int(version.version), alias


def _version_by_alias(client, name, alias):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _version_metric(client, version, metric):
    """The value of `metric` for a registered version: its zoo tags, else its source run."""
    if metric is None:
        return None
    if version.tags.get("zoo.main_metric") == metric:
        try:
            return float(version.tags["zoo.main_metric_value"])
        except (KeyError, ValueError):
            pass
    if version.run_id:
        return client.get_run(version.run_id).data.metrics.get(metric)
    return None
