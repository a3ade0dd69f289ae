"""How the MLflow UI opens on the zoo's experiments: model-training mode and the recipes' main metrics.

MLflow 3's UI chooses its mode from the experiment tag `mlflow.experimentKind`: without it a new
experiment opens in GenAI mode (traces, the assistant panel, no metric columns). The runs table
shows Source, Models and Dataset until a user picks more columns, and keeps those choices in the
browser; the one way a logging client chooses what the table shows is a shared view: an
experiment tag `mlflow.sharedViewState.KEY` holding the view as JSON, opened by the link
`#/experiments/ID/runs?viewStateShareKey=KEY` (what the UI's own "Share" button writes). The zoo
keeps one such view per experiment, under the key `zoo`, with the main test metric of every recipe
that ran in it as visible columns, sorted by the first; `zoo ui` prints its link. The experiment's
`mlflow.experiment.primaryMetric.name` tag (MLflow's own) puts that metric's chart first.
"""

import json

from zoo.tracking.lazy import mlflow

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_EXPERIMENT = "custom_model_development"
PRIMARY_METRIC_TAG = "mlflow.experiment.primaryMetric.name"
PRIMARY_GREATER_TAG = "mlflow.experiment.primaryMetric.greaterIsBetter"
SHARE_KEY = "zoo"
SHARED_VIEW_TAG = "mlflow.sharedViewState." + SHARE_KEY
# The columns the view shows besides the metrics (MLflow's canonical keys, as its UI writes them).
_VIEW_COLUMNS = ("tags.`zoo.recipe`",)


def column(kind, name):
    """MLflow UI's key of a column: metrics.`test_accuracy`."""
    return f"{kind}.`{name}`"


def shared_view(metrics):
    """The shared view (as the UI reads it) that shows `metrics` first, sorted by the first one."""
    from zoo.tracking.models import greater_is_better

    view = {"selectedColumns": [column("metrics", m) for m in metrics] + list(_VIEW_COLUMNS)}
    if metrics:
        view.update(orderByKey=column("metrics", metrics[0]), orderByAsc=not greater_is_better(metrics[0]))
    return view


def view_url(base_url, experiment_id):
    """The link that opens the experiment's runs table on the zoo's view."""
    # workflowType: MLflow 3.18 keeps its GenAI / Model training switch in the browser (GenAI by
    # default) unless the link names it.
    return (
        f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs"
        f"?viewStateShareKey={SHARE_KEY}&workflowType=machine_learning"
    )


def show_metric(experiment_id, metric, client=None):
    """Make `metric` a visible column of the experiment's zoo view; the first one ranks and is primary.

    Only the UI's presentation: a failure here is not worth failing a training for.
    """
    from mlflow.exceptions import MlflowException

    from zoo.tracking.models import greater_is_better

    if not metric:
        return
    client = client or mlflow.MlflowClient()
    try:
        tags = client.get_experiment(experiment_id).tags
        metrics = _view_metrics(tags.get(SHARED_VIEW_TAG))
        if metric not in metrics:
            metrics.append(metric)
            client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG, json.dumps(shared_view(metrics)))
        if PRIMARY_METRIC_TAG not in tags:
            client.set_experiment_tag(experiment_id, PRIMARY_METRIC_TAG, metric)
            client.set_experiment_tag(experiment_id, PRIMARY_GREATER_TAG, str(greater_is_better(metric)))
    except MlflowException:
        pass


def _view_metrics(value):
    try:
        columns = json.loads(value or "{}").get("selectedColumns", [])
    except (ValueError, AttributeError):
        return []
    prefix = "metrics.`"
    return [c[len(prefix) : -1] for c in columns if isinstance(c, str) and c.startswith(prefix)]


def mark_training_experiments(client):
    """Give every experiment that holds zoo runs the model-training kind it lacks (older stores);
    return [(experiment id, name)] of the zoo's experiments."""
    from mlflow.exceptions import MlflowException

    marked = []
    for experiment in client.search_experiments():
        runs = client.search_runs(
            [experiment.experiment_id],
            "tags.`zoo.recipe` != ''",
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
        if not runs:
            continue
        marked.append((experiment.experiment_id, experiment.name))
        try:
            if EXPERIMENT_KIND_TAG not in experiment.tags:
                client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_EXPERIMENT)
            if SHARED_VIEW_TAG not in experiment.tags:
                logged = [name for name in runs[0].data.metrics if name.startswith("test_")]
                from zoo.tracking.models import main_metric

                show_metric(
                    experiment.experiment_id, runs[0].data.tags.get("zoo.main_metric") or main_metric(logged), client
                )
        except MlflowException:
            pass
    return marked
