"""Benchmark: `zoo tune` against each recipe's default configuration, with and without pruning.

For each recipe: the default configuration (`zoo train RECIPE`), the search with the median pruner
(`zoo tune RECIPE --trials N`), and the same search without pruning (same sampler seed, same split),
each with its best validation metric, the test metric of its tested configuration, its wall time
and the epochs it trained. Pruning's share of epochs saved is 1 - epochs(pruned) / epochs(unpruned).
Targets (exit status 1 when one is missed): pruning saves at least 5 % of the epochs, its best
validation metric is within 0.01 of the unpruned search's, and the search's best validation metric
is at least the default configuration's. Runs go to a temporary store; nothing is left behind.

    python benchmarks/tune.py                                  # cnn 20 trials, mlp 30 trials
    python benchmarks/tune.py --recipes mlp --trials 30
    python benchmarks/tune.py --recipes cnn --trials 10 --epochs 20   # shorter, on a busy machine
"""

import argparse
import os
import sys
import tempfile
import time

DEFAULT_TRIALS = {"cnn": 20, "mlp": 30}
# The issue asks for a measurable cut: with the same sampler seed both searches propose the same
# trials, so every epoch saved is the pruner's, not noise; 5 % is a cut a user notices on a long search.
MIN_SAVED = 0.05
QUALITY_TOLERANCE = 0.01


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="cnn,mlp", help="comma-separated recipes (default: cnn,mlp)")
    parser.add_argument("--trials", type=int, help="trials per search (default: cnn 20, mlp 30)")
    parser.add_argument("--epochs", type=int, help="cap every run's epochs (default: the recipe's)")
    parser.add_argument("--sampler-seed", type=int, default=0, help="TPE seed shared by both searches")
    parser.add_argument("--no-unpruned", action="store_true", help="skip the search without pruning")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import zoo
    from zoo import tracking, training, tuning

    rows, missed = [], []
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        options = {"tracking_uri": f"sqlite:///{folder}/mlflow.db"}
        if args.epochs:
            options["epochs"] = args.epochs
        for recipe in args.recipes.split(","):
            trials = args.trials or DEFAULT_TRIALS.get(recipe, 20)
            # The default configuration, on the same split (the recipe's seed).
            started = time.perf_counter()
            default = training.train(recipe, options)
            wall = time.perf_counter() - started
            recipe_obj = training.get_recipe(recipe)
            metric = tuning.default_metric(recipe_obj, default.history)
            test = tracking.main_metric(default.metrics, recipe_obj.ranking_metric())
            early = bool(recipe_obj.monitor and default.config.patience)
            value = tuning.objective_value(default.history, metric, recipe_obj.monitor, early)
            epochs = int(default.metrics["epochs_trained"])
            rows.append([f"{recipe} ({metric})", "default", "1", value, default.metrics[test], wall, epochs, ""])
            print(f"{recipe} default: {metric}={value:.4f} {test}={default.metrics[test]:.4f} {wall:.0f}s", flush=True)

            searches = {}
            for pruner in ("median",) + (() if args.no_unpruned else ("none",)):
                started = time.perf_counter()
                result = zoo.tune(
                    recipe,
                    trials,
                    study=f"{recipe}-{pruner}",
                    storage=f"sqlite:///{folder}/optuna.db",
                    pruner=pruner,
                    sampler_seed=args.sampler_seed,
                    options=options,
                )
                wall = time.perf_counter() - started
                searches[pruner] = result
                pruned = result.states.get("PRUNED", 0)
                label = "tune, median pruner" if pruner == "median" else "tune, no pruning"
                rows.append(
                    [
                        f"{recipe} ({metric})",
                        label,
                        f"{trials} ({pruned} pruned)",
                        result.best_value,
                        result.test_metrics.get(test),
                    ]
                    + [wall, result.epochs, ""]
                )
                print(f"{recipe} {label}: best {metric}={result.best_value:.4f} {wall:.0f}s", flush=True)
            if "none" in searches:
                saved = 1 - searches["median"].epochs / searches["none"].epochs
                rows[-2][-1] = f"{saved:.0%}"
                if saved < MIN_SAVED:
                    missed.append(f"{recipe}: pruning saved {saved:.0%} of the epochs (target >= {MIN_SAVED:.0%})")
                better = max if searches["median"].direction == "max" else min
                floor = searches["none"].best_value + (-1 if better is max else 1) * QUALITY_TOLERANCE
                if better(searches["median"].best_value, floor) != searches["median"].best_value:
                    missed.append(
                        f"{recipe}: pruning lost quality ({searches['median'].best_value:.4f} vs {floor:.4f})"
                    )
            best = searches["median"].best_value
            if (best < value) if searches["median"].direction == "max" else (best > value):
                missed.append(f"{recipe}: the search's best {metric} {best:.4f} is below the default's {value:.4f}")

    header = ["recipe", "configuration", "trials", "best validation", "test", "wall s", "epochs", "epochs saved"]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        cells = [f"{c:.4f}" if isinstance(c, float) and i in (3, 4) else c for i, c in enumerate(row)]
        cells[5] = f"{row[5]:.0f}"
        print("| " + " | ".join(str(c) for c in cells) + " |")
    for line in missed:
        print(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
