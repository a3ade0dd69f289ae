"""A zoo of classic deep-learning techniques as ready-built Keras 3 models.

Example:
    >>> import zoo
    >>> model = zoo.get("mlp", hidden_units=(32,))
    >>> [card.name for card in zoo.list(technique="mlp")]
"""

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

from zoo.errors import ZooError  # noqa: E402
from zoo.registry import get, info, list_models, register  # noqa: E402
from zoo.tuning import tune  # noqa: E402

if typing.TYPE_CHECKING:
    from zoo.training import RunResult

__version__ = "0.1.0"


def train(recipe: str, *, verbose: int = 0, backend: str | None = None, **options: typing.Any) -> "RunResult":
    """Train a recipe and log the run to MLflow: `zoo train RECIPE` from Python, on the same code path.

    Args:
        recipe: a recipe name (`zoo train --help` lists them): mlp, cnn, rnn, lstm, gru, gan, rbm, ...
        verbose: Keras `fit` verbosity (0 silent, 2 one line per epoch, as `zoo train` prints).
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
    from zoo import training

    return training.train(recipe, settings=options, verbose=verbose)


# `zoo.list` mirrors timm.list_models; the builtin stays reachable as builtins.list.
list = list_models  # noqa: A001

__all__ = ["ZooError", "get", "info", "list", "list_models", "register", "train", "tune", "__version__"]
