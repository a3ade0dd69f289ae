"""Benchmark: `zoo train cnn` in its default configuration on the offline digits.

Prints the test accuracy and wall time of each seed, then the mean. The runs go to a temporary
MLflow store, so the benchmark leaves nothing behind.

    python benchmarks/cnn_digits.py                      # seed 42: the figure the README quotes
    python benchmarks/cnn_digits.py --seeds 42,1,2,3,4   # spread over seeds
    python benchmarks/cnn_digits.py --model mlp_image    # the quickstart MLP on the same images
    python benchmarks/cnn_digits.py --quick              # 1 epoch: a smoke run of the script

Exit status 1 when the mean test accuracy misses the model's target (`TARGETS`, or --target).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import gate

# Mean test accuracy over the seeds that the default configuration must reach on the digits.
TARGETS = {"cnn": 0.98, "mlp_image": 0.95}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42", help="comma-separated seeds (default: 42, the recipe's)")
    parser.add_argument("--model", default="cnn", help="cnn (default) or mlp_image")
    parser.add_argument("--target", type=float, help="mean test accuracy to reach (default: TARGETS[model])")
    parser.add_argument("--quick", action="store_true", help="1 epoch per seed (the target still applies)")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from zoo import training

    seeds = [int(seed) for seed in args.seeds.split(",")]
    accuracies = []
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        for seed in seeds:
            started = time.perf_counter()
            result = training.train(
                "cnn",
                {"seed": seed, "model": args.model, "tracking_uri": f"sqlite:///{folder}/mlflow.db"}
                | ({"epochs": 1} if args.quick else {}),
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
    target = args.target if args.target is not None else TARGETS.get(args.model, TARGETS["cnn"])
    return gate.exit_status(gate.check(f"{args.model} mean test accuracy", statistics.mean(accuracies), target))


if __name__ == "__main__":
    sys.exit(main())
