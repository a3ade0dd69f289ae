"""Benchmark: the quality score of `zoo train gan` in its default configuration, on the digits.

Runs the recipe exactly as `zoo train gan` does (conditional DCGAN on scikit-learn's 8x8 digits,
default epochs and hyperparameters), logging to a throwaway MLflow store unless --tracking-uri is
given, and prints the score per epoch and at the end. The final score is computed on generated
images the epochs never saw, with the Frechet distance against the held-out test digits.

Targets: >= 80% of generated digits labelled with confidence >= 0.9 by the judging classifier, and
an entropy of the predicted-class histogram >= 0.95 * ln(10) = 2.187 (all ten digits drawn).
Exit status 0 when both are met, 1 otherwise.

    python benchmarks/gan_digits.py
    python benchmarks/gan_digits.py --seed 1
    python benchmarks/gan_digits.py --no-conditional      # the unconditional GAN, for comparison
"""

import argparse
import math
import os
import sys
import tempfile
import time

TARGET_CONFIDENT = 0.80
TARGET_ENTROPY = 0.95 * math.log(10)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="recipe seed (default: the recipe's)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    parser.add_argument("--no-conditional", action="store_true", help="train the unconditional GAN")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: a temporary one)")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from zoo import training

    folder = tempfile.mkdtemp(prefix="zoo-gan-benchmark-")
    options = {"tracking_uri": args.tracking_uri or f"sqlite:///{folder}/mlflow.db", "experiment": "gan-benchmark"}
    if args.seed is not None:
        options["seed"] = args.seed
    if args.epochs is not None:
        options["epochs"] = args.epochs
    if args.no_conditional:
        options["conditional"] = False
    # Artifacts of the throwaway store go to its folder, not to ./mlruns.
    os.chdir(folder)
    started = time.perf_counter()
    result = training.train("gan", options)
    elapsed = time.perf_counter() - started

    history = result.history
    print(
        f"{'epoch':>5} {'g_loss':>7} {'d_loss':>7} {'confident':>9} {'entropy':>7} {'diversity':>9} "
        f"{'frechet':>8} {'label_acc':>9}"
    )
    for epoch in range(len(history["generator_loss"])):
        label = history.get("label_accuracy", [math.nan] * (epoch + 1))[epoch]
        print(
            f"{epoch:>5} {history['generator_loss'][epoch]:>7.3f} {history['discriminator_loss'][epoch]:>7.3f} "
            f"{history['confident_share'][epoch]:>9.3f} {history['class_entropy'][epoch]:>7.3f} "
            f"{history['within_class_diversity'][epoch]:>9.3f} {history['frechet_distance'][epoch]:>8.2f} "
            f"{label:>9.3f}"
        )
    metrics = result.metrics
    confident, entropy = metrics["test_confident_share"], metrics["test_class_entropy"]
    print(f"config: {result.config}")
    print(f"judge test accuracy on the real test split: {metrics['judge_test_accuracy']:.4f}")
    print(
        f"final quality on {result.config.samples} new samples: confident share {confident:.3f} "
        f"(target >= {TARGET_CONFIDENT}), class entropy {entropy:.3f} (target >= {TARGET_ENTROPY:.3f}), "
        f"within-class diversity {metrics['test_within_class_diversity']:.3f} (real test digits: about 1), "
        f"Frechet distance {metrics['test_frechet_distance']:.2f}"
        + (f", label accuracy {metrics['test_label_accuracy']:.3f}" if "test_label_accuracy" in metrics else "")
    )
    print(
        f"training {metrics['train_seconds']:.0f} s, whole run {elapsed:.0f} s, MLflow run {result.run_id} "
        f"in {options['tracking_uri']}"
    )
    print(f"real test digits scored the same way (the ceiling): {_real_reference(result.config)}")
    met = confident >= TARGET_CONFIDENT and entropy >= TARGET_ENTROPY
    print("target met" if met else "target NOT met")
    return 0 if met else 1


def _real_reference(config):
    """The quality score of the real test digits against the training digits, with the same judge."""
    import numpy as np

    from zoo.datasets import images
    from zoo.recipes import gan

    loaded = images.load(config.dataset, seed=config.seed)
    judge = gan.load_judge(loaded, gan._dataset_key(loaded, config), config.judge_epochs)
    reference = judge.reference(np.concatenate([loaded.x_train, loaded.x_val]))
    scores = judge.score(loaded.x_test, reference)
    return ", ".join(f"{name} {value:.3f}" for name, value in scores.items())


if __name__ == "__main__":
    sys.exit(main())
