"""What a run logs besides metrics: params (flattened, long values to a file) and figures."""

import re

from zoo.tracking.lazy import mlflow


def flatten(values, prefix=""):
    """Flatten nested dicts into {'a.b': value} with values as MLflow param strings."""
    flat = {}
    for key, value in values.items():
        # MLflow keys allow only alphanumerics and _ - . space : / (column names may hold more).
        name = prefix + re.sub(r"[^\w\-. :/]", "_", str(key))
        if isinstance(value, dict):
            flat.update(flatten(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(str(v) for v in value)
        else:
            flat[name] = str(value)
    return flat


def log_params(params, max_length=500):
    """Log params; values too long for a readable param go to `params_long.json` instead."""
    short = {k: v for k, v in params.items() if len(v) <= max_length}
    long = {k: v for k, v in params.items() if len(v) > max_length}
    mlflow.log_params(short)
    if long:
        mlflow.log_dict(long, "params_long.json")


def log_figure(figure, artifact_file):
    """Log a matplotlib figure as an image artifact of the active run, then close it.

    pyplot keeps every figure it made until closed: a process that trains many runs (a notebook,
    the tests) would otherwise hold all of them.
    """
    import matplotlib.pyplot as plt

    try:
        mlflow.log_figure(figure, artifact_file)
    finally:
        plt.close(figure)
