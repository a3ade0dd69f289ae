"""Benchmark: `zoo train rnn|lstm|gru --mode MODE` in their default configurations, offline data.

Prints one line per (cell, mode, seed) with the test figure each configuration is judged by and
its target, then whether every run met its target. The runs go to a temporary MLflow store, so the
benchmark leaves nothing behind.

- many_to_one: digit scans read row by row, test accuracy (target >= 0.97).
- many_to_many: digit videos, test accuracy per frame (target >= 0.97).
- one_to_many: digit captions, exact-match rate of the greedily decoded captions (target >= 0.95).
- forecast (opt-in, --modes forecast): Google share price one day ahead, test MAE against the
  persistence forecast (target: no worse than 1.1 x persistence; prices are close to a random walk).

    python benchmarks/recurrent.py                                  # 3 cells x 3 modes, seed 42
    python benchmarks/recurrent.py --cells lstm --modes one_to_many --seeds 42,1,2
    python benchmarks/recurrent.py --modes forecast
    python benchmarks/recurrent.py --json figures.json               # also write the figures as JSON
"""

import argparse
import json
import os
import sys
import tempfile
import time

# mode -> (recipe options, the metric it is judged by, its target; None: beat persistence)
CONFIGURATIONS = {
    "many_to_one": ({"mode": "many_to_one"}, "test_accuracy", 0.97),
    "many_to_many": ({"mode": "many_to_many"}, "test_accuracy", 0.97),
    "one_to_many": ({"mode": "one_to_many"}, "test_exact_match", 0.95),
    "forecast": ({"mode": "many_to_many", "dataset": "goog"}, "test_mae", None),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="rnn,lstm,gru", help="comma-separated recipes (default: rnn,lstm,gru)")
    parser.add_argument(
        "--modes",
        default="many_to_one,many_to_many,one_to_many",
        help=f"comma-separated, from {', '.join(CONFIGURATIONS)}",
    )
    parser.add_argument("--seeds", default="42", help="comma-separated seeds (default: 42, the recipes')")
    parser.add_argument("--json", metavar="PATH", help="also write one record per run to this JSON file")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    unknown = [mode for mode in modes if mode not in CONFIGURATIONS]
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(CONFIGURATIONS)}")

    if args.json:
        args.json = os.path.abspath(args.json)  # the runs below change the working directory
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from zoo import training

    failures = 0
    records = []
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        for mode in modes:
            options, metric, target = CONFIGURATIONS[mode]
            for cell in args.cells.split(","):
                for seed in (int(s) for s in args.seeds.split(",")):
                    started = time.perf_counter()
                    result = training.train(
                        cell, {**options, "seed": seed, "tracking_uri": f"sqlite:///{folder}/mlflow.db"}
                    )
                    wall = time.perf_counter() - started
                    value = result.metrics[metric]
                    if target is None:
                        # Forecast: compare with the persistence forecast on the same windows.
                        naive = result.metrics["test_naive_mae"]
                        target_text = f"<= {1.1 * naive:.4f} (1.1 x persistence {naive:.4f})"
                        met = value <= 1.1 * naive
                    else:
                        target_text = f">= {target}"
                        met = value >= target
                    failures += not met
                    print(
                        f"{cell:<4} {mode:<12} seed={seed:<3} {metric}={value:.4f} target {target_text} "
                        f"{'met' if met else 'MISSED'}  epochs={result.metrics['epochs_trained']} "
                        f"train_seconds={result.metrics['train_seconds']:.0f} wall_seconds={wall:.0f}",
                        flush=True,
                    )
                    records.append(
                        {
                            "cell": cell,
                            "mode": mode,
                            "seed": seed,
                            "metric": metric,
                            "value": value,
                            "target": target_text,
                            "met": bool(met),
                            "epochs": int(result.metrics["epochs_trained"]),
                            "train_seconds": result.metrics["train_seconds"],
                            "wall_seconds": wall,
                        }
                    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"runs": records, "failures": failures}, handle, indent=2)
    print("all targets met" if not failures else f"{failures} run(s) missed their target")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
