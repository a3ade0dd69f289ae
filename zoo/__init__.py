"""A zoo of classic deep-learning techniques as ready-built Keras 3 models.

Example:
    >>> import zoo
    >>> model = zoo.get("mlp", hidden_units=(32,))
    >>> [card.name for card in zoo.list(technique="mlp")]
"""

import functools
import os
import typing

# TensorFlow unless KERAS_BACKEND names another (zoo.backends); Keras itself is imported lazily.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# PyTorch runs its CPU kernels on an OpenMP pool whose waiting threads spin (libgomp's default): on a
# machine whose cores are busy with other work, a spinning thread holds the core its sibling needs
# to finish the step, and the `mlp` recipe's epoch on PyTorch took 25x TensorFlow's. PASSIVE lets
# waiting threads sleep. OpenMP reads it once, when torch loads it: `import zoo` before torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from zoo import quiet as _quiet  # noqa: E402
from zoo import tuning as _tuning  # noqa: E402
from zoo.errors import ZooError  # noqa: E402
from zoo.registry import get, info, list_models, register  # noqa: E402

if typing.TYPE_CHECKING:
    from zoo.training import RunResult

__version__ = "0.1.0"

# TensorFlow's native start-up lines (cudart_stub.cc, cuInit) stay off a notebook's output too.
_quiet.quiet_tensorflow_import()


def train(
    recipe: str | None = None,
    *,
    config: str | None = None,
    like: str | None = None,
    verbose: int | str = "auto",
    backend: str | None = None,
    **options: typing.Any,
) -> "RunResult":
    """Train a recipe and log the run to MLflow: `zoo train RECIPE` from Python, on the same code path.

    Args:
        recipe: a recipe name (`zoo train --help` lists them): mlp, cnn, rnn, lstm, gru, gan, rbm, ...;
            may be left out with `config` or `like`, which name it.
        config: a run configuration YAML to run again: a run's logged `config.yaml` as it is, or the
            best trial's that `zoo tune` writes; `options` win over its values.
        like: a logged run to run again (`RUN_ID` or `runs:/RUN_ID`): its recipe, options and data
            source, in its experiment; `options` win (`like=RUN_ID, seed=3`). The new run is tagged
            `zoo.like` with that run's id.
        verbose: Keras `fit` verbosity: "auto" (a progress bar per epoch in Jupyter or a terminal,
            else one line per epoch, as `zoo train` prints), 0 silent, 1 bar, 2 line per epoch.
        backend: Keras backend, "tensorflow", "jax" or "torch" (default: `KERAS_BACKEND`, else
            tensorflow); only before this process imports Keras, which reads it once.
        **options: recipe options (`zoo train RECIPE --help`) and model hyperparameters
            (`zoo info MODEL`), as Python values: `epochs=3`, `filters=(32, 64)`, `data="t.csv"`.

    Returns:
        `zoo.training.RunResult`: the MLflow run id, the trained model, the test metrics, the history.

    Raises:
        ZooError: for an unknown recipe, option or hyperparameter, a bad value, or bad data; for
            a backend that is not installed, or another than the one Keras already runs on.

    Example:
        >>> result = zoo.train("cnn", epochs=3, dataset="digits", filters=(32, 64))
        >>> result.metrics["test_accuracy"]
    """
    from zoo import backends

    backends.choose(backend)
    if verbose == "auto":
        verbose = _quiet.progress_verbosity()
    # MLflow's INFO lines stay off from here on, the loading included: a caller's `mlflow.autolog()`
    # announces each library it hooks ("Autologging successfully enabled for keras") as the zoo
    # imports it, on a notebook's stderr (in a script, the silenced descriptor 2 swallowed them).
    with _quiet.mlflow_info_hidden():
        # Before Keras, as the `zoo` command does: TensorFlow loads quietly, and fully before Keras
        # imports it (MLflow's autolog hook for TensorFlow fails on a half-imported Keras otherwise).
        _quiet.load_tensorflow()
        from zoo import training

        tags = {}
        if config is not None or like is not None:
            from zoo.training import reproduce

            if config is not None and like is not None:
                raise ZooError("Give `config` or `like`, not both.")
            source = (
                reproduce.from_file(config)
                if config is not None
                else reproduce.from_run(like or "", options.get("tracking_uri"))
            )
            options, recipe, tags = reproduce.merge(source, options, recipe), source.recipe, source.tags
        if recipe is None:
            raise ZooError("Name a recipe (zoo.train('mlp', ...)), or give `config` or `like`.")
        return training.train(recipe, settings=options, verbose=int(verbose), tags=tags)


@functools.wraps(_tuning.tune)
def tune(*args: typing.Any, **kwargs: typing.Any) -> typing.Any:
    with _quiet.mlflow_info_hidden():
        _quiet.load_tensorflow()
        return _tuning.tune(*args, **kwargs)


# `zoo.list` mirrors timm.list_models; the builtin stays reachable as builtins.list.
list = list_models  # noqa: A001

__all__ = ["ZooError", "get", "info", "list", "list_models", "register", "train", "tune", "__version__"]
