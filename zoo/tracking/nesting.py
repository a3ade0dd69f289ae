"""Training inside the caller's own MLflow run: a notebook's `with mlflow.start_run(): zoo.train(...)`.

The zoo's run becomes a nested child of the caller's run, in the caller's experiment: the active
experiment is never switched (`mlflow.set_experiment` would change it for the rest of the
notebook) and the caller's run stays active and untouched afterwards (MLflow's run stack pops the
child when it ends). The caller's `mlflow.autolog()` is paused while the zoo trains and logs its
own run, so that autologging adds no second run or model of the same `fit`.
"""

import contextlib
import sys
import typing

from zoo.errors import ZooError
from zoo.tracking.lazy import mlflow

PARENT_TAG = "mlflow.parentRunId"


def user_run() -> typing.Any:
    """The caller's active MLflow run (`mlflow.active_run()`), or None.

    MLflow not imported yet means no run can be active: this never imports it.
    """
    if "mlflow" not in sys.modules:
        return None
    return mlflow.active_run()


def experiment_of(parent: typing.Any, experiment: str | None) -> str:
    """The experiment id a child of `parent` goes to: the parent's own.

    Raises:
        ZooError: when `experiment` names another experiment (a child run lives beside its parent).
    """
    experiment_id = parent.info.experiment_id
    if experiment is not None:
        name = mlflow.MlflowClient().get_experiment(experiment_id).name
        if experiment != name:
            raise ZooError(
                f"Inside your active MLflow run {parent.info.run_id} (experiment '{name}'), the zoo logs a "
                f"nested run in that experiment, not in `experiment={experiment}`: drop `experiment`, or end "
                "your run first."
            )
    return typing.cast(str, experiment_id)


def describe(parent: typing.Any) -> str:
    """`run `my-notebook-run` (b290f0d9...)`: how a child's description names its parent."""
    return f"run `{parent.info.run_name}` ({parent.info.run_id})"


@contextlib.contextmanager
def autolog_paused() -> typing.Iterator[None]:
    """Pause every MLflow autologging integration the caller switched on; restore it after.

    `mlflow.autolog()` patches Keras' `fit` (and scikit-learn's estimators): left on, it would log
    a second run (or a nested one) and a second model of the zoo's own training.
    """
    if "mlflow" not in sys.modules:
        yield
        return
    from mlflow.utils import autologging_utils

    if autologging_utils._AUTOLOGGING_GLOBALLY_DISABLED:
        yield
        return
    # MLflow's own scoped switch; it turns autologging back on when the block ends.
    with autologging_utils.disable_autologging():
        yield
