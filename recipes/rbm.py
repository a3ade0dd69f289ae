"""RBM on binary data: a Bernoulli restricted Boltzmann machine learns features without labels.

Technique: restricted Boltzmann machine trained by persistent contrastive divergence (scikit-learn's
`BernoulliRBM` algorithm; `--set persistent=false --set k=3` for CD-3), not by backpropagation.
Dataset: scikit-learn's 1,797 real 8x8 handwritten digits, binarized, by default, offline;
`--dataset mnist` (or another tensorflow-datasets image set) when its data are on disk; `--data
FILE.csv` for any table of binary columns, such as a user x item matrix for recommendation.
What it shows: per epoch, the pseudo-likelihood and the reconstruction error (training and
validation); at the end, the learned filters (one tile per hidden unit), Gibbs samples from the
model, reconstructions, and the classic downstream check: a logistic regression on the RBM's hidden
features against one on the raw binary pixels, test accuracy of each.

    zoo train rbm
    zoo train rbm --dataset mnist --epochs 10 --set hidden_units=256
    zoo train rbm --data ratings.csv --drop user_id --set hidden_units=32
"""

import dataclasses
import math
import os
import typing

import numpy as np

from zoo import tracking, training
from zoo.errors import ZooError

# Logistic-regression strengths tried on the validation split, for RBM features and raw pixels alike.
C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclasses.dataclass
class RBMConfig(training.RecipeConfig):
    """Options of the RBM recipe.

    Args:
        dataset: digits (offline default), mnist, fashion_mnist or another tensorflow-datasets image
            dataset (its data must already be on disk).
        data: a CSV file of numeric columns in [0, 1] (binary, e.g. user x item); overrides --dataset.
        data_dir: tensorflow-datasets data directory (default: TFDS_DATA_DIR or ~/tensorflow_datasets).
        download: download a tensorflow-datasets dataset that is not on disk when its servers answer
            (--no-download forbids it).
        target: with --data: a label column, left out of the RBM and used for the downstream classifier.
        drop: with --data: comma-separated columns to leave out (ids, names).
        binarize: threshold (value > --threshold gives 1), sample (Bernoulli draw with the value
            as probability, once) or none (keep values in [0, 1] as probabilities).
        threshold: the threshold of --binarize threshold.
        minibatch_size: rows per contrastive-divergence update (scikit-learn's batch_size); each
            --batch-size batch makes about batch_size / minibatch_size updates in one compiled step.
        samples: Gibbs samples drawn at the end for the samples grid.
        gibbs_steps: Gibbs steps per sample (from random binary states).
        classifier: train the downstream logistic regressions (needs labels).
        classifier_rows: at most this many training rows for the logistic regressions.
        validation_fraction: share of the rows held out for validation.
        test_fraction: share held out for the test metrics where the data has no test split.
    """

    epochs: int = 20
    batch_size: int = 500
    patience: int = 0
    jit: bool = True
    dataset: str = "digits"
    data: str | None = None
    data_dir: str | None = None
    download: bool = True
    target: str | None = None
    drop: tuple[str, ...] = ()
    binarize: typing.Literal["threshold", "sample", "none"] = "threshold"
    threshold: float = 0.5
    minibatch_size: int = 10
    samples: int = 64
    gibbs_steps: int = 1000
    classifier: bool = True
    classifier_rows: int = 10000
    validation_fraction: float = 0.1
    test_fraction: float = 0.2


@dataclasses.dataclass
class RBMData:
    """What the RBM's loader read, binarized.

    Attributes:
        splits: "train", "validation", "test" -> (x, labels or None).
        shape: the shape of one example (an image's, or (columns,) for a table).
        class_names: the label names, when the data has labels.
        columns: a table's column names; None for images.
    """

    splits: dict[str, tuple[np.ndarray, typing.Any]]
    shape: tuple[int, ...]
    class_names: typing.Any
    columns: list[str] | None

    @property
    def image(self):
        """Whether the rows are images (drawn as tiles) rather than table rows (heat maps)."""
        return self.columns is None


@training.register_recipe
class RBMRecipe(training.Recipe):
    name = "rbm"
    technique = "rbm"
    summary = "Bernoulli RBM (persistent CD) on binarized digits, MNIST or any binary CSV."
    model = "rbm"
    Config = RBMConfig
    # Pseudo-likelihood rises as the model learns; there is no loss to stop early on.
    monitor = None
    main_metric = "test_pseudo_likelihood"

    # === Data ===
    def check_data(self, config):
        if config.data:
            from zoo.datasets import tabular

            _check_options(config)
            tabular.read_binary_csv(config.data, target=config.target, drop=config.drop)

    def load_data(self, config):
        _check_options(config)
        if config.data:
            from zoo.datasets import splits as row_splits
            from zoo.datasets import tabular

            loaded = tabular.read_binary_csv(config.data, target=config.target, drop=config.drop)
            parts = row_splits.split_arrays(
                (loaded["x"], loaded["y"]),
                config.seed,
                config.validation_fraction,
                config.test_fraction,
                what=loaded["name"],
            )
            splits = dict(zip(row_splits.SPLITS, parts))
            shape, source, name = (loaded["x"].shape[1],), loaded["source"], loaded["name"]
            class_names, columns = loaded["class_names"], loaded["columns"]
        else:
            from zoo.datasets import images

            if config.target or config.drop:
                raise ZooError("`target` and `drop` apply to `data=FILE.csv`; image datasets know their labels.")
            loaded = images.load(
                config.dataset,
                seed=config.seed,
                data_dir=config.data_dir,
                download=config.download,
                validation_fraction=config.validation_fraction,
                test_fraction=config.test_fraction,
            )
            splits = {
                "train": (loaded.x_train, loaded.y_train),
                "validation": (loaded.x_val, loaded.y_val),
                "test": (loaded.x_test, loaded.y_test),
            }
            shape, source, name = loaded.shape, loaded.source, loaded.name
            class_names, columns = loaded.class_names, None
            if source.startswith("tensorflow-datasets:"):
                # MLflow reads `tensorflow-datasets:mnist` as a URI of an unknown scheme: give the folder.
                source = os.path.join(getattr(loaded, "details", {}).get("data_dir", ""), name)
        rng = np.random.default_rng(config.seed)
        splits = {split: (binarize(x, config.binarize, config.threshold, rng), y) for split, (x, y) in splits.items()}
        x_train = splits["train"][0]
        if len(x_train) < 2:
            raise ZooError(f"{name} has {len(x_train)} training row(s) after the split: too few to train an RBM.")

        # tf.data on TensorFlow, NumPy batches on JAX and PyTorch (no TensorFlow import).
        datasets = {split: training.from_arrays(x) for split, (x, _) in splits.items()}
        spec = {
            "name": name,
            "source": source,
            "shape": list(shape),
            "visible_units": int(np.prod(shape)),
            "binarize": config.binarize,
            "labels": splits["train"][1] is not None,
            "rows": {split: len(x) for split, (x, _) in splits.items()},
            "mean_activation": float(x_train.mean()),
        }
        return training.Data(
            train=datasets["train"],
            validation=datasets["validation"],
            test=datasets["test"],
            num_train=len(x_train),
            example_inputs=splits["test"][0][:5],
            spec=spec,
            mlflow_datasets=_mlflow_datasets(splits, source, name),
            loaded=RBMData(splits=splits, shape=tuple(shape), class_names=class_names, columns=columns),
        )

    # === Model ===
    def model_overrides(self, config, data):
        return {
            "input_shape": tuple(data.loaded.shape),
            "updates_per_batch": max(1, math.ceil(config.batch_size / config.minibatch_size)),
            "seed": config.seed,
        }

    # === Evaluate ===
    def evaluate(self, model, data, config, prepared=None):
        splits = data.loaded.splits
        x_test = splits["test"][0]
        metrics = {
            # Averaged over several random flips: one draw of the estimator is noisy.
            "test_pseudo_likelihood": float(
                np.mean([model.pseudo_likelihood(x_test, seed=config.seed + draw).mean() for draw in range(10)])
            ),
            "test_reconstruction_error": float(np.mean((model.reconstruct(x_test) - x_test) ** 2)),
            "test_free_energy": float(model.free_energy(x_test).mean()),
        }
        scores = None
        if config.classifier and splits["train"][1] is not None:
            scores = downstream_accuracy(model, splits, config.classifier_rows, config.seed)
            metrics["test_accuracy"] = scores["rbm_features"]["test_accuracy"]
            metrics["test_raw_accuracy"] = scores["raw_pixels"]["test_accuracy"]
        # The downstream classifiers' scores, when trained, are logged as an artifact.
        return training.Evaluation(metrics, scores)

    def baseline(self, model, data, config, evaluation, prepared=None):
        # An untrained RBM of the same size (its initial weights), scored as the trained one.
        x_test = data.loaded.splits["test"][0]
        untrained = type(model).from_config(model.get_config())
        if not untrained.built:
            untrained.build((None, *x_test.shape[1:]))
        value = float(
            np.mean([untrained.pseudo_likelihood(x_test, seed=config.seed + draw).mean() for draw in range(10)])
        )
        return training.Baseline(self.main_metric, value, "untrained network of the same size", "more --epochs")

    # === Log ===
    def log_artifacts(self, model, data, config, evaluation, prepared=None):
        import mlflow

        from zoo import plots

        loaded = data.loaded
        shape = loaded.shape
        weights = np.asarray(model.W)
        samples = model.sample(config.samples, steps=config.gibbs_steps, seed=config.seed)
        x_test = loaded.splits["test"][0][:16]
        reconstructions = model.reconstruct(x_test)
        if loaded.image:
            # One tile per hidden unit: its weights to the visible units, scaled to [0, 1] per tile.
            filters = _per_tile_scale(weights.T).reshape((-1,) + tuple(shape))
            tracking.log_figure(plots.image_grid(filters, size=0.8), "filters.png")
            tracking.log_figure(plots.image_grid(samples, size=0.8), "samples.png")
            pairs = np.concatenate([x_test, reconstructions]).reshape((-1,) + tuple(shape))
            tracking.log_figure(plots.image_grid(pairs, columns=len(x_test), size=0.8), "reconstructions.png")
        else:
            tracking.log_figure(_heatmap(weights.T, "hidden unit", "column", loaded.columns), "filters.png")
            tracking.log_figure(_heatmap(samples, "sample", "column", loaded.columns), "samples.png")
            tracking.log_figure(
                _heatmap(
                    np.concatenate([x_test, reconstructions]),
                    "row (top: data, bottom: reconstruction)",
                    "column",
                    loaded.columns,
                ),
                "reconstructions.png",
            )
        if evaluation.outputs is not None:
            mlflow.log_dict(evaluation.outputs, "downstream_classifier.json")

    def log_model(self, model, data):
        from zoo import serving

        # Served as a feature extractor: the answer's columns are hidden_1 ... P(h=1 given v).
        adapter = serving.Tensor(columns="hidden")
        return tracking.log_model(model, np.asarray(data.example_inputs, dtype="float32"), adapter=adapter)


# === Data helpers ===


def _check_options(config):
    if config.minibatch_size < 1:
        raise ZooError(f"`minibatch_size` must be at least 1. Received: {config.minibatch_size}")
    if config.minibatch_size > config.batch_size:
        raise ZooError(
            f"`minibatch_size` ({config.minibatch_size}) cannot exceed `batch_size` "
            f"({config.batch_size}): a batch holds whole minibatches."
        )
    if not 0.0 < config.threshold < 1.0:
        raise ZooError(f"`threshold` must be in (0, 1). Received: {config.threshold}")
    if config.samples < 1 or config.gibbs_steps < 1:
        raise ZooError(
            f"`samples` and `gibbs_steps` must be at least 1. Received: {config.samples}, {config.gibbs_steps}"
        )
    if config.classifier_rows < 10:
        raise ZooError(f"`classifier_rows` must be at least 10. Received: {config.classifier_rows}")
    for name in ("validation_fraction", "test_fraction"):
        if not 0 < getattr(config, name) < 0.5:
            raise ZooError(f"--{name.replace('_', '-')} must be in (0, 0.5). Received: {getattr(config, name)}")


def binarize(x, how, threshold, rng):
    """Binary visible values from values in [0, 1]: thresholded, sampled once, or kept as they are."""
    x = np.asarray(x, dtype="float32")
    if how == "threshold":
        return (x > threshold).astype("float32")
    if how == "sample":
        return (rng.random(x.shape) < x).astype("float32")
    return x


def _mlflow_datasets(splits, source, name):
    import mlflow

    contexts = {"train": "training", "validation": "validation", "test": "testing"}
    source = tracking.dataset_source(source)
    return [
        (mlflow.data.from_numpy(x, targets=y, source=source, name=f"{name}-{split}"), contexts[split])
        for split, (x, y) in splits.items()
    ]


# === Downstream classifier ===


def downstream_accuracy(model, splits, max_rows, seed):
    """Logistic regression on the RBM's hidden probabilities and on the raw binary inputs.

    Each gets its strength C chosen on the validation split from `C_GRID` (default tolerance 1e-4:
    scikit-learn's RBM example sets tol=1, which stops the solver at once and gives chance accuracy).

    Returns:
        {"rbm_features": {...}, "raw_pixels": {...}}, each with C, validation_accuracy, test_accuracy.
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x_train, y_train = splits["train"]
    if len(x_train) > max_rows:
        rows = np.random.default_rng(seed).choice(len(x_train), max_rows, replace=False)
        x_train, y_train = x_train[rows], y_train[rows]
    (x_val, y_val), (x_test, y_test) = splits["validation"], splits["test"]
    if len(np.unique(y_train)) < 2:
        raise ZooError(
            "The downstream classifier needs at least two classes in the training labels; pass `classifier=False`."
        )
    inputs = {
        "rbm_features": [model.transform(x) for x in (x_train, x_val, x_test)],
        "raw_pixels": [x.reshape(len(x), -1) for x in (x_train, x_val, x_test)],
    }
    scores = {}
    # One BLAS thread: beside TensorFlow's threads, a threaded solver on 2 busy cores ran 50x slower
    # (15 s instead of 0.2 s for one fit on the digits).
    with threadpool_limits(limits=1):
        for name, (train, val, test) in inputs.items():
            best = None
            for c in C_GRID:
                classifier = LogisticRegression(C=c, max_iter=2000).fit(train, y_train)
                accuracy = classifier.score(val, y_val)
                if best is None or accuracy > best[0]:
                    best = (accuracy, c, classifier)
            scores[name] = {
                "C": best[1],
                "validation_accuracy": float(best[0]),
                "test_accuracy": float(best[2].score(test, y_test)),
            }
    return scores


# === Figures ===


def _per_tile_scale(tiles):
    low = tiles.min(axis=1, keepdims=True)
    span = tiles.max(axis=1, keepdims=True) - low
    return (tiles - low) / np.where(span > 0, span, 1.0)


def _heatmap(matrix, ylabel, xlabel, columns):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    fig, axis = plt.subplots(figsize=(min(2 + 0.25 * matrix.shape[1], 16), min(2 + 0.15 * matrix.shape[0], 12)))
    image = axis.imshow(matrix, aspect="auto", cmap="RdBu_r" if matrix.min() < 0 else "Greys", interpolation="nearest")
    fig.colorbar(image, ax=axis)
    if columns and len(columns) <= 40:
        axis.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    fig.tight_layout()
    return fig
