"""A zoo of classic deep-learning techniques as ready-built Keras 3 models.

Example:
    >>> import zoo
    >>> model = zoo.get("mlp", hidden_units=(32,))
    >>> [card.name for card in zoo.list(technique="mlp")]
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from zoo.errors import ZooError  # noqa: E402
from zoo.registry import get, info, list_models, register  # noqa: E402
from zoo.tuning import tune  # noqa: E402

__version__ = "0.1.0"

# `zoo.list` mirrors timm.list_models; the builtin stays reachable as builtins.list.
list = list_models  # noqa: A001

__all__ = ["ZooError", "get", "info", "list", "list_models", "register", "tune", "__version__"]
