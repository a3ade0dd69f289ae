"""The recipe base class: the hooks a recipe fills in (data, model, evaluation, artifacts), `Data`,
what its loader hands the run, and `Evaluation`, what its evaluation hands the artifacts.

Hooks pass values, never a shared bag: each takes what it needs as arguments and returns what it
made, and the run loop (`zoo.training.run`) hands one hook's result to the next, in this order:
`load_data` -> `Data` (its typed `loaded` field: what the recipe's loader read), `prepare` -> what
several later hooks share (computed once), `callbacks`, `evaluate` -> `Evaluation`, then
`log_artifacts` and `log_model`. No hook relies on another having run except through those values,
and no hook writes an attribute of the recipe.

A new hook every recipe may override goes here, with a default that keeps the existing recipes
working; the run loop calls it.
"""

import dataclasses
import typing

from zoo import tracking
from zoo.errors import ZooError
from zoo.training import baselines, devices
from zoo.training.budgets import Budget
from zoo.training.config import RecipeConfig
from zoo.training.pipelines import batch

# What a recipe's loader read (its typed dataset object), and what its evaluation computed for its
# artifacts (test predictions, decoded texts, ...): each recipe names its own types.
Loaded = typing.TypeVar("Loaded")
Outputs = typing.TypeVar("Outputs")


@dataclasses.dataclass
class Data(typing.Generic[Loaded]):
    """What a recipe's loader hands the run.

    Attributes:
        train, validation, test: unbatched `tf.data.Dataset`s of (inputs, targets);
            validation and test may be None.
        num_train: number of training examples (sizes the shuffle buffer).
        example_inputs: a few raw inputs (numpy array or dict of arrays) for the model signature.
        spec: facts about the data logged as `data.*` params (shape, classes, task, ...).
        mlflow_datasets: (mlflow.data dataset, context) pairs logged as the run's inputs.
        loaded: what the recipe's loader read, typed by the recipe (`ImageData`, `SequenceData`, a
            recipe's own dataclass): the later hooks read it, none writes it.
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
    loaded: Loaded | None = None
    streamed: bool = False


@dataclasses.dataclass
class Evaluation(typing.Generic[Outputs]):
    """What `Recipe.evaluate` returns; the run loop logs `metrics` and hands it to `log_artifacts`.

    Attributes:
        metrics: the final `test_*` metrics, computed once on the held-out split.
        outputs: what the evaluation computed that the artifacts show (predictions, decoded texts,
            generated samples), typed by the recipe; None when it keeps nothing.
    """

    metrics: dict[str, float]
    outputs: Outputs | None = None


class Recipe:
    """Base class of the recipes; subclasses live in `zoo.recipes` and use `@register_recipe`."""

    name = ""
    technique = ""
    summary = ""
    model = ""
    Config: type[RecipeConfig] = RecipeConfig
    # Early stopping watches this validation metric; None trains for all epochs. "val_loss" (the
    # default) means: the validation twin of the ranking metric when the epochs log it (`monitors`).
    monitor: str | None = "val_loss"
    # A value of each epoch's logs that is 0 while the technique passes through a phase training must
    # not stop in (CTC's all-blank start): such epochs neither count toward patience nor become the best.
    warm_up: str | None = None
    # Default epochs and patience in optimizer steps, scaled to the training rows (`zoo.training.budgets`);
    # None: the config's epochs and patience, whatever the data.
    budget: Budget | None = None
    # What to try when a run does not beat its trivial baseline (the terminal line says it).
    baseline_hint: str = baselines.DEFAULT_HINT
    # The test metric that ranks runs (`--register`, `zoo compare`); None: test_accuracy, else test_loss.
    # A recipe whose metric depends on its data overrides `ranking_metric` instead; never assign it.
    main_metric: str | None = None
    # TensorFlow graph optimizer (grappler) passes switched off while this recipe runs: for a pass
    # that logs an error line on the recipe's graph and then skips it anyway (say which, and why).
    graph_passes_off: tuple[str, ...] = ()

    def load_data(self, config: typing.Any) -> Data[typing.Any]:
        """Return a `Data`. Raise `ZooError` for bad input, before any MLflow run exists."""
        raise NotImplementedError

    def check_data(self, config: typing.Any) -> None:
        """Read and check the user's files (a CSV, a labels file, a folder) without TensorFlow, Keras or MLflow.

        `zoo train` calls it before those imports (seconds on a busy machine), so that a bad file fails
        at once with the `ZooError` `load_data` would raise later. Import only NumPy, pandas and Pillow
        here. Nothing by default (embedded data needs no check).

        Raises:
            ZooError: for bad input.
        """

    def unused_options(self, config: typing.Any) -> tuple[str, ...]:
        """Options that do not apply to the data `config` names (not logged as params); none by default."""
        return ()

    def monitors(self, data: Data[typing.Any]) -> list[str]:
        """Validation metrics early stopping watches, in order of preference (`zoo.training.stopping`).

        Returns:
            [] when the recipe has no `monitor`; its `monitor` when it names another than val_loss;
            else the validation twin of the ranking metric (`val_mae` for `test_mae`; for
            `test_accuracy`, `val_auc` where the model logs it, else `val_accuracy`), then val_loss
            for epochs that log none of them.
        """
        if self.monitor is None:
            return []
        if self.monitor != "val_loss":
            return [self.monitor]
        # No ranking metric: runs rank by test_accuracy where there is one (`tracking.main_metric`).
        metric = self.ranking_metric(data) or "test_accuracy"
        if not metric.startswith("test_") or metric == "test_loss":
            return ["val_loss"]
        if metric == "test_accuracy":
            # A binary classifier's AUC first: on a small validation split accuracy moves in steps of
            # one row (admissions, 40 rows: stopping on it cost one test row of 40; on AUC, none).
            return ["val_auc", "val_accuracy", "val_loss"]
        return ["val_" + metric.removeprefix("test_"), "val_loss"]

    def baseline(
        self,
        model: typing.Any,
        data: Data[typing.Any],
        config: typing.Any,
        evaluation: "Evaluation[typing.Any]",
        prepared: typing.Any = None,
    ) -> baselines.Baseline | None:
        """The trivial baseline of the run's main test metric (`zoo.training.baselines`).

        The default finds it from the metrics and the in-memory targets (majority class, training
        mean, most frequent target, persistence, a `test_baseline_*` twin the recipe logs); a recipe
        whose baseline needs more (an untrained network of the same size) overrides this.

        Returns:
            A `Baseline`, or None when the recipe has none.
        """
        return baselines.default(data, evaluation.metrics, self.ranking_metric(data), self.baseline_hint)

    def model_name(self, config: typing.Any) -> str:
        """The registered model `config` trains; raise `ZooError` for one this recipe cannot train."""
        return self.model

    def ranking_metric(self, data: Data[typing.Any] | None = None) -> str | None:
        """The test metric that ranks runs of this recipe on `data` (`--register`, `zoo compare`).

        Args:
            data: the loaded data, for a recipe whose metric depends on it (the recurrent recipes:
                exact match for captions, MAE for regression); None before any data is loaded.

        Returns:
            The class's `main_metric` unless a recipe overrides this; None means test_accuracy,
            else test_loss.
        """
        return self.main_metric

    def model_overrides(self, config: typing.Any, data: Data[typing.Any]) -> dict[str, typing.Any]:
        """Hyperparameters that come from the data (input shape, classes, feature spec)."""
        return {}

    def check_overrides(self, config: typing.Any, data: Data[typing.Any], overrides: dict[str, typing.Any]) -> None:
        """Raise `ZooError` for a `--set` value that this data rules out (before any MLflow run)."""

    def prepare(self, model: typing.Any, data: Data[typing.Any], config: typing.Any) -> typing.Any:
        """Compute once what several later hooks share, inside the run, before `callbacks`.

        The run loop passes what this returns to `callbacks`, `evaluate` and `log_artifacts`
        (the GAN's judge and its reference features). A recipe types it with a dataclass of its own.

        Returns:
            None unless a recipe overrides this.
        """
        return None

    def callbacks(
        self, model: typing.Any, data: Data[typing.Any], config: typing.Any, prepared: typing.Any = None
    ) -> list[typing.Any]:
        """Extra Keras callbacks for `fit`; they run before the MLflow metrics callback, so values
        they add to an epoch's `logs` are logged with that epoch as step."""
        return []

    def evaluate(
        self, model: typing.Any, data: Data[typing.Any], config: typing.Any, prepared: typing.Any = None
    ) -> Evaluation[typing.Any]:
        """Return the final `test_*` metrics, computed once on the held-out split, and the outputs
        `log_artifacts` shows (none here)."""
        if data.test is None:
            return Evaluation({})
        test = batch(data.test, config.batch_size, devices.replicas(model), streamed=data.streamed)
        results = model.evaluate(test, return_dict=True, verbose=0)
        return Evaluation({f"test_{name}": float(value) for name, value in results.items()})

    def log_artifacts(
        self,
        model: typing.Any,
        data: Data[typing.Any],
        config: typing.Any,
        evaluation: Evaluation[typing.Any],
        prepared: typing.Any = None,
    ) -> None:
        """Log what this technique adds to the common set (plots, examples, reports), from what
        `evaluate` returned."""

    def log_model(self, model: typing.Any, data: Data[typing.Any]) -> typing.Any:
        return tracking.log_model(model, data.example_inputs)

    def explain_input_error(self, data: Data[typing.Any], error: BaseException) -> ZooError | None:
        """The one-line error for a failure of `fit` or `evaluate` that bad data caused, or None.

        Streamed data is read during training, so a file that turned unreadable after loading fails
        inside the input pipeline, where TensorFlow's error names no file: a recipe that streams
        files finds the culprit here (the run fails with this error instead of TensorFlow's).
        """
        return None

    def epoch_metrics(self, model: typing.Any, data: Data[typing.Any], config: typing.Any) -> list[str]:
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
