"""The recipe base class: the hooks a recipe fills in (data, model, evaluation, artifacts), and `Data`,
what its loader hands the run.

A new hook every recipe may override goes here, with a default that keeps the existing recipes
working; the run loop (`zoo.training.run`) calls it.
"""

import dataclasses
import typing

from zoo import tracking
from zoo.training import devices
from zoo.training.config import RecipeConfig
from zoo.training.pipelines import batch


@dataclasses.dataclass
class Data:
    """What a recipe's loader hands the run.

    Attributes:
        train, validation, test: unbatched `tf.data.Dataset`s of (inputs, targets);
            validation and test may be None.
        num_train: number of training examples (sizes the shuffle buffer).
        example_inputs: a few raw inputs (numpy array or dict of arrays) for the model signature.
        spec: facts about the data logged as `data.*` params (shape, classes, task, ...).
        mlflow_datasets: (mlflow.data dataset, context) pairs logged as the run's inputs.
        extras: anything else the recipe keeps for its own evaluation and artifacts.
        streamed: the data does not fit in memory: all three datasets yield batches of rows (any
            size), `train` read from disk on every pass and shuffled by itself (seeded); the run
            neither caches nor shuffles them, only rebatches them (`zoo.datasets.streaming`).
    """

    train: typing.Any
    validation: typing.Any
    test: typing.Any
    num_train: int
    example_inputs: typing.Any
    spec: dict[str, typing.Any]
    mlflow_datasets: list[typing.Any] = dataclasses.field(default_factory=list)
    extras: dict[str, typing.Any] = dataclasses.field(default_factory=dict)
    streamed: bool = False


class Recipe:
    """Base class of the recipes; subclasses live in `zoo.recipes` and use `@register_recipe`."""

    name = ""
    technique = ""
    summary = ""
    model = ""
    Config: type[RecipeConfig] = RecipeConfig
    # Early stopping watches this validation metric; None trains for all epochs.
    monitor: str | None = "val_loss"
    # The test metric that ranks runs (`--register`, `zoo compare`); None: test_accuracy, else test_loss.
    main_metric: str | None = None
    # TensorFlow graph optimizer (grappler) passes switched off while this recipe runs: for a pass
    # that logs an error line on the recipe's graph and then skips it anyway (say which, and why).
    graph_passes_off: tuple[str, ...] = ()

    def load_data(self, config: typing.Any) -> Data:
        """Return a `Data`. Raise `ZooError` for bad input, before any MLflow run exists."""
        raise NotImplementedError

    def model_name(self, config: typing.Any) -> str:
        return self.model

    def model_overrides(self, config: typing.Any, data: Data) -> dict[str, typing.Any]:
        """Hyperparameters that come from the data (input shape, classes, feature spec)."""
        return {}

    def check_overrides(self, config: typing.Any, data: Data, overrides: dict[str, typing.Any]) -> None:
        """Raise `ZooError` for a `--set` value that this data rules out (before any MLflow run)."""

    def evaluate(self, model: typing.Any, data: Data, config: typing.Any) -> dict[str, float]:
        """Return the final `test_*` metrics, computed once on the held-out split."""
        if data.test is None:
            return {}
        test = batch(data.test, config.batch_size, devices.replicas(model), streamed=data.streamed)
        results = model.evaluate(test, return_dict=True, verbose=0)
        return {f"test_{name}": float(value) for name, value in results.items()}

    def log_artifacts(self, model: typing.Any, data: Data, config: typing.Any) -> None:
        """Log what this technique adds to the common set (plots, examples, reports)."""

    def callbacks(self, model: typing.Any, data: Data, config: typing.Any) -> list[typing.Any]:
        """Extra Keras callbacks for `fit`; they run before the MLflow metrics callback, so values
        they add to an epoch's `logs` are logged with that epoch as step."""
        return []

    def log_model(self, model: typing.Any, data: Data) -> typing.Any:
        return tracking.log_model(model, data.example_inputs)

    def epoch_metrics(self, model: typing.Any, data: Data, config: typing.Any) -> list[str]:
        """Names of the values every epoch logs: what `zoo tune --metric` may optimize.

        Read from the compiled model by evaluating it on a few validation rows, so a recipe whose
        model Keras compiles needs nothing here; one whose callbacks add values to the epoch's
        logs (the GAN's quality score) adds their names.
        """
        names = {metric.name for metric in model.metrics} - {"compile_metrics"}
        if data.validation is not None:
            replicas = devices.replicas(model)
            rows = data.validation.take(max(1, replicas))
            rows = batch(rows, config.batch_size, replicas, streamed=data.streamed)
            logged = model.evaluate(rows, return_dict=True, verbose=0)
            names |= set(logged)
            names |= {f"val_{name}" for name in logged}
        return sorted(names)
