"""The datasets a run logs as its inputs (`mlflow.data`), with their source type and schema declared."""

import os

from zoo.tracking.lazy import mlflow


def dataset_source(source):
    """The MLflow `DatasetSource` for a loader's source: a local file, a URL, or code.

    Given a plain string, MLflow guesses the source type, and every string matches two local
    sources (the '' and 'file' schemes), which makes it warn that the source "can be interpreted
    in multiple ways". Saying which type it is leaves nothing to guess.

    Args:
        source: a path to a file or folder, an http(s) URL, or what produced the data in code
            (e.g. `sklearn.datasets.load_digits`).
    """
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import get_registered_sources
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    source = str(source)
    if source.startswith(("http://", "https://")):
        return HTTPDatasetSource(source)
    if os.path.isabs(source) and os.path.exists(source):
        local = [kind for kind in get_registered_sources() if kind._get_source_type() == "local"]
        if local:
            return local[-1](source)
    return CodeDatasetSource(tags={"source": source})


def pandas_dataset(frame, source, targets, name):
    """An `mlflow.data` dataset of a DataFrame, with its source type and its schema declared.

    Left to infer the schema, MLflow hints at every integer column that it "cannot represent
    missing values", advice meant for model signatures; the column types are known here.
    """
    from mlflow.types import DataType
    from mlflow.types.schema import ColSpec, Schema

    def column_type(dtype):
        if dtype.kind == "b":
            return DataType.boolean
        if dtype.kind in "iu":
            return DataType.long if dtype.itemsize > 4 else DataType.integer
        if dtype.kind == "f":
            return DataType.double if dtype.itemsize > 4 else DataType.float
        return DataType.string

    dataset = mlflow.data.from_pandas(frame, source=dataset_source(source), targets=targets, name=name)
    # `schema` is a cached property that MLflow fills by inference on first use: set it first.
    dataset.schema = Schema([ColSpec(column_type(frame[column].dtype), str(column)) for column in frame.columns])
    return dataset
