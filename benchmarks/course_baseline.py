"""Benchmark: the course's two-layer sigmoid network in plain NumPy against the zoo's MLP of that shape.

The course's starting point trains a network with one hidden layer of 2 sigmoid units and a sigmoid
output on the graduate-admissions table (admit from gre, gpa, rank): plain NumPy, a Python loop over
the examples that accumulates the weight steps, one gradient-descent step per epoch, 900 epochs,
learning rate 0.005, no biases. Its preparation: standardize gre and gpa, one-hot rank, hold out 10%
of the rows for the test.

Here both models see the same split: the test rows are the 10% that `zoo train mlp --data
admissions.csv --target admit` holds out (seed 42); the NumPy network trains on the other 90% as the
course does, the zoo's MLP on 80% with 10% for early stopping. The zoo's MLP has the same shape
(`--set hidden_units=2 --set activation=sigmoid --set dropout=0`) and its recipe's defaults
otherwise (Adam, batch 32, up to 100 epochs). For reference it also prints the NumPy network on the
course's own split (numpy seed 21). It prints test accuracy and wall time of each; runs go to a
temporary MLflow store.

    python benchmarks/course_baseline.py          # the admissions table shipped in the package
    python benchmarks/course_baseline.py --data /path/to/admissions.csv --json out.json
    python benchmarks/course_baseline.py --quick        # 90 NumPy epochs, 1 zoo epoch: a smoke run
"""

import argparse
import json
import os
import sys
import tempfile
import time

import gate
import numpy as np
import pandas as pd

TARGET = "admit"
# The course's hyperparameters.
HIDDEN, EPOCHS, LEARNING_RATE, COURSE_SEED = 2, 900, 0.005, 21


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="admissions CSV (default: the copy shipped in zoo.datasets)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="NumPy epochs (default: the course's 900)")
    parser.add_argument("--zoo-epochs", type=int, default=None, help="zoo MLP epochs (default: the recipe's)")
    parser.add_argument("--quick", action="store_true", help="90 NumPy epochs and 1 zoo epoch")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.zoo_epochs = 90, 1
    if args.data is None:
        from zoo.datasets import tabular

        args.data = tabular.packaged_path("admissions")
    if not os.path.exists(args.data):
        parser.error(f"{args.data} not found; pass the admissions CSV with --data")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from zoo.datasets import tabular

    table = tabular.read_csv(args.data, TARGET)
    # The zoo's split, exactly as the MLP recipe makes it from its defaults (seed 42, 10% test).
    splits = tabular.prepare(table, seed=42, validation_fraction=0.1, test_fraction=0.1)
    features = course_features(table.frame)
    train_rows = np.concatenate([splits.train.index, splits.validation.index])
    results = {
        "data": os.path.abspath(args.data),
        "rows": len(table.frame),
        "test_rows": len(splits.test),
        "numpy_epochs": args.epochs,
        "learning_rate": LEARNING_RATE,
        "hidden_units": HIDDEN,
    }

    numpy_run = fit_numpy(features, table.frame[TARGET], train_rows, splits.test.index, args.epochs)
    results["numpy"] = numpy_run
    print(
        f"numpy  (course network, per-example loop, {args.epochs} epochs, zoo split): "
        f"test_accuracy={numpy_run['test_accuracy']:.4f} wall_seconds={numpy_run['wall_seconds']:.2f} "
        f"on {len(splits.test)} test rows",
        flush=True,
    )

    course_train, course_test = course_split(table.frame)
    course_run = fit_numpy(features, table.frame[TARGET], course_train, course_test, args.epochs)
    results["numpy_course_split"] = course_run
    print(
        f"numpy  (course network, course split, numpy seed {COURSE_SEED}): "
        f"test_accuracy={course_run['test_accuracy']:.4f} wall_seconds={course_run['wall_seconds']:.2f} "
        f"on {len(course_test)} test rows",
        flush=True,
    )

    results["zoo"] = fit_zoo(args.data, args.zoo_epochs)
    zoo_run = results["zoo"]
    print(
        f"zoo    (mlp recipe, hidden_units=2 sigmoid, {zoo_run['epochs']} epochs): "
        f"test_accuracy={zoo_run['test_accuracy']:.4f} wall_seconds={zoo_run['wall_seconds']:.2f} "
        f"train_seconds={zoo_run['train_seconds']:.2f} on {len(splits.test)} test rows",
        flush=True,
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    # The zoo's MLP of the same shape must do at least as well as the course's NumPy network on the same rows.
    return gate.exit_status(
        gate.check(
            "zoo MLP test accuracy over the course network's", zoo_run["test_accuracy"], numpy_run["test_accuracy"]
        )
    )


def course_features(frame):
    """The course's preparation: one-hot rank, gre and gpa standardized over the whole table."""
    data = pd.concat([frame, pd.get_dummies(frame["rank"], prefix="rank", dtype=float)], axis=1)
    data = data.drop(columns=["rank", TARGET])
    for field in ("gre", "gpa"):
        data[field] = (data[field] - data[field].mean()) / data[field].std()
    return data.astype(float)


def course_split(frame):
    """The course's own hold-out: 90% of the rows drawn with NumPy's legacy generator seeded 21."""
    rng = np.random.RandomState(COURSE_SEED)
    sample = rng.choice(frame.index, size=int(len(frame) * 0.9), replace=False)
    return sample, frame.index.drop(sample)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def fit_numpy(features, targets, train_rows, test_rows, epochs):
    """Train the course's network as the course writes it and score it on `test_rows`."""
    x_train, y_train = features.loc[train_rows].to_numpy(), targets.loc[train_rows].to_numpy()
    x_test, y_test = features.loc[test_rows].to_numpy(), targets.loc[test_rows].to_numpy()
    np.random.seed(COURSE_SEED)
    n_records, n_features = x_train.shape
    weights_input_hidden = np.random.normal(scale=1 / n_features**0.5, size=(n_features, HIDDEN))
    weights_hidden_output = np.random.normal(scale=1 / n_features**0.5, size=HIDDEN)

    started = time.perf_counter()
    for _ in range(epochs):
        del_w_input_hidden = np.zeros(weights_input_hidden.shape)
        del_w_hidden_output = np.zeros(weights_hidden_output.shape)
        for x, y in zip(x_train, y_train):
            hidden_output = sigmoid(np.dot(x, weights_input_hidden))
            output = sigmoid(np.dot(hidden_output, weights_hidden_output))
            output_error_term = (y - output) * output * (1 - output)
            hidden_error_term = np.dot(output_error_term, weights_hidden_output) * hidden_output * (1 - hidden_output)
            del_w_hidden_output += output_error_term * hidden_output
            del_w_input_hidden += hidden_error_term * x[:, None]
        weights_input_hidden += LEARNING_RATE * del_w_input_hidden / n_records
        weights_hidden_output += LEARNING_RATE * del_w_hidden_output / n_records
    wall = time.perf_counter() - started

    output = sigmoid(np.dot(sigmoid(np.dot(x_test, weights_input_hidden)), weights_hidden_output))
    accuracy = float(np.mean((output > 0.5) == y_test))
    train_output = sigmoid(np.dot(sigmoid(np.dot(x_train, weights_input_hidden)), weights_hidden_output))
    return {
        "test_accuracy": accuracy,
        "wall_seconds": wall,
        "epochs": epochs,
        "train_mse": float(np.mean((train_output - y_train) ** 2)),
        "train_rows": int(n_records),
        "test_rows": len(y_test),
        "majority_test_accuracy": float(max(y_test.mean(), 1 - y_test.mean())),
    }


def fit_zoo(data, epochs):
    """`zoo train mlp` on the same CSV with the course network's shape, in a throwaway store."""
    from zoo import training

    settings = {"hidden_units": str(HIDDEN), "activation": "sigmoid", "dropout": "0"}
    with tempfile.TemporaryDirectory(prefix="zoo-course-baseline-") as folder:
        options = {
            "data": data,
            "target": TARGET,
            "seed": 42,
            "validation_fraction": 0.1,
            "test_fraction": 0.1,
            "tracking_uri": f"sqlite:///{folder}/mlflow.db",
            "experiment": "course-baseline",
            "checkpoint_dir": os.path.join(folder, "checkpoints"),
        }
        if epochs:
            options["epochs"] = epochs
        cwd = os.getcwd()
        os.chdir(folder)  # MLflow puts run artifacts under ./mlruns of the working directory
        try:
            started = time.perf_counter()
            result = training.train("mlp", options, settings)
            wall = time.perf_counter() - started
        finally:
            os.chdir(cwd)
    metrics = result.metrics
    return {
        "test_accuracy": metrics["test_accuracy"],
        "wall_seconds": wall,
        "train_seconds": metrics["train_seconds"],
        "epochs": int(metrics["epochs_trained"]),
        "run_id": result.run_id,
        "settings": settings,
    }


if __name__ == "__main__":
    sys.exit(main())
