"""Everything the training code says to MLflow, one module per concern.

- `lazy`: the `mlflow` module, imported on first use (`from zoo.tracking import mlflow`).
- `store`: the tracking URI, its checks, and a SQLite store safe for concurrent starts.
- `database`: a database server (PostgreSQL) as the store: login checks, advisory locks.
- `run`: the run's life (start, name, end FINISHED/KILLED/FAILED, never left RUNNING).
- `git`: the commit a run comes from.
- `artifacts`: params and figures of the active run.
- `data`: the datasets a run logs as inputs.
- `metrics`: per-epoch metrics, written off the training thread by a writer each run owns.
- `nesting`: a run inside the caller's own active run (nested, in its experiment, autolog paused).
- `models`: logging the model, registering it, champion/challenger, which metric ranks runs.

The names the rest of the package uses are re-exported here, so call sites read `tracking.configure(...)`.
"""

from zoo.tracking.artifacts import flatten, log_figure, log_params
from zoo.tracking.data import dataset_source, pandas_dataset
from zoo.tracking.git import git_commit
from zoo.tracking.lazy import mlflow
from zoo.tracking.metrics import EpochMetrics, metric_histories, metrics_callback
from zoo.tracking.models import (
    CHALLENGER,
    CHAMPION,
    LOWER_IS_BETTER,
    greater_is_better,
    log_model,
    main_metric,
    register_model,
)
from zoo.tracking.nesting import autolog_paused, experiment_of, user_run
from zoo.tracking.nesting import describe as describe_parent
from zoo.tracking.run import (
    DEFAULT_EXPERIMENT,
    DESCRIPTION_TAG,
    EXPERIMENT_KIND_TAG,
    FAILURE_TAG,
    TRAINING_EXPERIMENT,
    active_run,
    check_run_options,
    mark_training_experiment,
    start_run,
    unique_run_name,
)
from zoo.tracking.store import TRACKING_SCHEMES, check_scheme, check_server, configure, prepare_sqlite

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "DEFAULT_EXPERIMENT",
    "DESCRIPTION_TAG",
    "EXPERIMENT_KIND_TAG",
    "FAILURE_TAG",
    "LOWER_IS_BETTER",
    "TRACKING_SCHEMES",
    "TRAINING_EXPERIMENT",
    "EpochMetrics",
    "active_run",
    "autolog_paused",
    "describe_parent",
    "user_run",
    "check_run_options",
    "check_scheme",
    "check_server",
    "configure",
    "dataset_source",
    "experiment_of",
    "flatten",
    "git_commit",
    "greater_is_better",
    "log_figure",
    "log_model",
    "log_params",
    "main_metric",
    "mark_training_experiment",
    "metric_histories",
    "metrics_callback",
    "mlflow",
    "pandas_dataset",
    "prepare_sqlite",
    "register_model",
    "start_run",
    "unique_run_name",
]
