"""MLP on a table: binary or multi-class classification, or regression, from any CSV.

Technique: multilayer perceptron trained by backpropagation.
Dataset: scikit-learn's breast-cancer table (569 real biopsies, 30 numeric features) by default,
offline; the graduate-admissions table shipped with the package (`--dataset admissions`); any CSV
with `--data PATH.csv --target COLUMN`.
What it shows: preprocessing inside the model (normalization, one-hot categories), so the logged
model predicts on raw rows; the task is inferred from the target column.

    zoo train mlp
    zoo train mlp --dataset admissions --set hidden_units=8 --set activation=sigmoid
    zoo train mlp --data table.csv --target label --missing error
"""

import dataclasses
import functools
import sys
import typing

from zoo import tracking, training
from zoo.datasets import streaming, tabular


@dataclasses.dataclass
class MLPConfig(training.RecipeConfig):
    """Options of the MLP recipe.

    Args:
        data: CSV file to train on (default: the embedded `dataset`).
        target: the column to predict (required with --data).
        dataset: embedded table used without --data: breast_cancer, wine, iris, diabetes (scikit-learn's)
            or admissions (shipped with the package).
        task: auto (inferred from the target), binary, multiclass or regression.
        categorical: comma-separated columns to one-hot whatever their type.
        missing: empty feature cells: mean (numbers get the training mean; the run counts them) or
            error (refuse the table).
        validation_fraction: share of rows for early stopping.
        test_fraction: share of rows held out for the final test metrics.
    """

    epochs: int = 100
    patience: int = 15
    data: str | None = None
    target: str | None = None
    dataset: str = "breast_cancer"
    task: typing.Literal["auto", "binary", "multiclass", "regression"] = "auto"
    categorical: tuple[str, ...] = ()
    missing: typing.Literal["mean", "error"] = "mean"
    validation_fraction: float = 0.1
    test_fraction: float = 0.1


@training.register_recipe
class MLPRecipe(training.Recipe):
    name = "mlp"
    technique = "mlp"
    summary = "Tabular MLP on the breast-cancer table or any CSV."
    model = "mlp"
    Config = MLPConfig

    # === Data ===
    def check_data(self, config):
        # The table and its target, read with pandas before TensorFlow loads; a CSV too large to
        # read whole is checked by its streamed scan in `load_data`.
        if config.data and not streaming.should_stream(config.data):
            table = tabular.read_csv(config.data, config.target)
            tabular.prepare(
                table,
                task=config.task,
                categorical=config.categorical,
                seed=config.seed,
                validation_fraction=config.validation_fraction,
                test_fraction=config.test_fraction,
                missing=config.missing,
            )

    def unused_options(self, config):
        return ("dataset",) if config.data else ()

    def load_data(self, config):
        from zoo.errors import ZooError

        for name in ("validation_fraction", "test_fraction"):
            if not 0 < getattr(config, name) < 0.5:
                raise ZooError(f"--{name.replace('_', '-')} must be in (0, 0.5). Received: {getattr(config, name)}")
        options = {
            "task": config.task,
            "categorical": config.categorical,
            "seed": config.seed,
            "validation_fraction": config.validation_fraction,
            "test_fraction": config.test_fraction,
            "missing": config.missing,
            # Off TensorFlow, text categories reach the model as integer codes (no StringLookup there).
            "text_codes": not training.tensorflow_input(),
        }
        # A CSV above ZOO_STREAM_BYTES is read in chunks, never whole (zoo.datasets.streaming).
        streamed = bool(config.data) and streaming.should_stream(config.data)
        if streamed:
            splits = streaming.scan(config.data, config.target, **options)
            table = splits.table
        elif config.data:
            table = tabular.read_csv(config.data, config.target)
        else:
            if config.target:
                raise ZooError("`target` applies to `data=PATH.csv`; the embedded tables know their target.")
            table = tabular.load_embedded(config.dataset)
        if not streamed:
            splits = tabular.prepare(table, **options)
        if splits.dropped:
            print(tabular.dropped_message(table.name, splits.dropped), file=sys.stderr)
        if splits.empty_targets:
            print(
                f"zoo: left out {splits.empty_targets} row(s) of {table.name} whose target '{table.target}' is "
                "empty; --missing error refuses them instead.",
                file=sys.stderr,
            )
        if splits.filled:
            counts = ", ".join(f"{column} {count}" for column, count in splits.filled.items())
            print(
                f"zoo: {sum(splits.filled.values())} empty cell(s) of {table.name} filled with the training mean "
                f"({counts}); --missing error refuses them instead.",
                file=sys.stderr,
            )
        held = ("validation", "test") if streamed else ("train", "validation", "test")
        arrays = {name: splits.arrays(getattr(splits, name)) for name in held}
        if streamed and training.tensorflow_input():
            import tensorflow as tf

            # Streamed data comes in batches (the run rebatches, never caches, see training.Data).
            datasets = {
                name: tf.data.Dataset.from_tensor_slices(xy).batch(streaming.SLICE_ROWS) for name, xy in arrays.items()
            }
            datasets["train"] = splits.train_dataset(config.seed)
        elif streamed:
            # Off TensorFlow: the held-out rows sit in memory as NumPy; each epoch reads the file
            # again, pass e shuffled from (seed, e) as on tf.data.
            datasets = {name: training.from_arrays(*xy) for name, xy in arrays.items()}
            datasets["train"] = training.Stream(functools.partial(splits.batches, config.seed), splits.num_train)
        else:
            # In memory: tf.data on TensorFlow, NumPy batches on JAX and PyTorch (no TensorFlow import).
            datasets = {name: training.from_arrays(*xy) for name, xy in arrays.items()}
        # Raw cells, as a user sends them (text categories stay text where the model takes codes).
        example_inputs = {column: values[:5] for column, values in arrays["test"][0].items()}
        for column, feature in splits.features.items():
            if feature.get("codes"):
                example_inputs[column] = splits.test[column].astype(str).to_numpy()[:5].reshape(-1, 1)
            if feature["kind"] == "categorical":
                # The logged model's example is a request it answers: a category only the test rows
                # hold would be refused by the served model, after the whole training.
                example_inputs[column] = tabular.known_categories(example_inputs[column], feature["vocabulary"])
        spec = {
            "source": table.source,
            "name": table.name,
            "target": table.target,
            "task": splits.task,
            "num_classes": len(splits.class_names),
            "class_names": [str(c) for c in splits.class_names],
            "rows": {"train": splits.num_train, "validation": len(splits.validation), "test": len(splits.test)},
            "columns": {column: feature["kind"] for column, feature in splits.features.items()},
        }
        if splits.filled:
            spec["missing_filled"] = splits.filled
        if splits.dropped:
            spec["dropped_columns"] = splits.dropped
        if splits.empty_targets:
            spec["empty_target_rows"] = splits.empty_targets
        mlflow_datasets = [
            (
                streaming.mlflow_dataset(splits, f"{table.name}-{name}")
                if streamed
                else tracking.pandas_dataset(getattr(splits, name), table.source, table.target, f"{table.name}-{name}"),
                context,
            )
            for name, context in (("train", "training"), ("validation", "validation"), ("test", "testing"))
        ]
        if streamed:
            spec["streamed"] = {"chunk_rows": streaming.CHUNK_ROWS, "shuffle_rows": streaming.SHUFFLE_ROWS}
        return training.Data(
            train=datasets["train"],
            validation=datasets["validation"],
            test=datasets["test"],
            num_train=splits.num_train,
            example_inputs=example_inputs,
            spec=spec,
            mlflow_datasets=mlflow_datasets,
            loaded=splits,
            streamed=streamed,
        )

    # === Model ===
    def model_overrides(self, config, data):
        splits = data.loaded
        overrides = {"features": splits.features, "task": splits.task}
        if splits.task == "multiclass":
            overrides["num_classes"] = len(splits.class_names)
        return overrides

    # === Log ===
    def log_model(self, model, data):
        from zoo import serving, tracking

        # Served on table rows as a person has them (numbers and text categories), one column each.
        splits = data.loaded
        return tracking.log_model(
            model,
            serving.Table.example_frame(data.example_inputs),
            metadata={"class_names": data.spec["class_names"], "task": splits.task},
            adapter=serving.Table(features=splits.features),
        )
