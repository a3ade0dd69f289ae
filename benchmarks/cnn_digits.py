"""Benchmark: `zoo train cnn` in its default configuration on the offline digits.

Prints the test accuracy and wall time of each seed, then the mean. The runs go to a temporary
MLflow store, so the benchmark leaves nothing behind.

    python benchmarks/cnn_digits.py                      # seed 42: the figure the README quotes
    python benchmarks/cnn_digits.py --seeds 42,1,2,3,4   # spread over seeds
    python benchmarks/cnn_digits.py --model mlp_image    # the quickstart MLP on the same images
"""

import argparse
import os
import statistics
import sys
import tempfile
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42", help="comma-separated seeds (default: 42, the recipe's)")
    parser.add_argument("--model", default="cnn", help="cnn (default) or mlp_image")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from zoo import engine

    seeds = [int(seed) for seed in args.seeds.split(",")]
    accuracies = []
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        for seed in seeds:
            started = time.perf_counter()
            result = engine.train(
                "cnn", {"seed": seed, "model": args.model, "tracking_uri": f"sqlite:///{folder}/mlflow.db"}
            )
            wall = time.perf_counter() - started
            accuracy = result.metrics["test_accuracy"]
            accuracies.append(accuracy)
            print(
                f"model={args.model} seed={seed} test_accuracy={accuracy:.4f} "
                f"epochs={result.metrics['epochs_trained']} train_seconds={result.metrics['train_seconds']:.1f} "
                f"wall_seconds={wall:.1f}",
                flush=True,
            )
    if len(accuracies) > 1:
        print(
            f"model={args.model} seeds={len(seeds)} mean_test_accuracy={statistics.mean(accuracies):.4f} "
            f"min={min(accuracies):.4f} max={max(accuracies):.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
