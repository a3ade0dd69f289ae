"""The lazy `mlflow` module that the tracking modules (and a few others) reach MLflow through."""

import importlib
import typing


class LazyModule:
    """A module imported on first attribute access.

    Importing MLflow costs seconds and about 150 MB; the recipes import `zoo.tracking` to describe
    their options, so `zoo --help` would pay that for nothing. Every function that talks to MLflow
    reaches it through `mlflow.X`, which imports it the first time.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> typing.Any:
        return getattr(importlib.import_module(self._name), attribute)


# Holds no state of its own: every attribute is looked up in the real module.
mlflow: typing.Any = LazyModule("mlflow")
