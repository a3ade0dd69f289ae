"""Benchmark: what MLflow logging costs the training of a run.

A 20-epoch run of the default MLP recipe (breast-cancer table, default model), trained on the
engine's own input pipeline with and without the per-epoch MLflow logging
(`tracking.metrics_callback`, inside an active run, flushed before the clock stops), in one
process, the two alternated pair by pair so that load on the machine hits both alike. Early
stopping is off (`patience=0`) so both do the same 20 epochs. It prints:

- the fit times and the median ratio with/without (target: at most 1.02). On a busy machine the
  spread between two identical fits is larger than 2%: read it with the next line;
- the direct cost: time the training thread spends inside the logging callback plus the final
  wait for the writes (`tracking.EpochMetrics.flush`), as a share of the fit without logging. This
  figure does not depend on the load of the machine.

It then times one whole `training.train` run and prints how much of its wall time is the fit, for
the fixed end-of-run logging (params, datasets, figure, model) that does not grow with epochs.

    python benchmarks/mlflow_overhead.py
    python benchmarks/mlflow_overhead.py --pairs 9 --tracking-uri http://127.0.0.1:5000
    python benchmarks/mlflow_overhead.py --json figures.json     # also write the figures as JSON
"""

import argparse
import json
import os
import statistics
import tempfile
import time

import gate

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# Fit time with per-epoch MLflow logging over without, at most.
TARGET = 1.02


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=5, help="alternated with/without pairs (default: 5)")
    parser.add_argument("--tracking-uri", help="default: a new SQLite store in a temporary folder")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    import keras
    import mlflow

    from zoo import registry, tracking, training

    folder = tempfile.mkdtemp(prefix="zoo-overhead-")
    os.environ.setdefault("ZOO_CHECKPOINT_DIR", os.path.join(folder, "checkpoints"))
    uri = tracking.configure(args.tracking_uri or f"sqlite:///{folder}/mlflow.db")
    mlflow.set_experiment("mlflow-overhead")

    recipe = training.get_recipe("mlp")
    config, overrides = training.make_config(recipe, {"epochs": args.epochs, "patience": 0})
    data = recipe.load_data(config)
    model_name = recipe.model_name(config)
    hyperparameters = {**recipe.model_overrides(config, data), **overrides}
    validation = training.batch(data.validation, config.batch_size)
    inside_callback, flushes = [], []

    def fit(log):
        keras.utils.set_random_seed(config.seed)
        model = registry.get(model_name, **hyperparameters)
        batches, steps = training.training_batches(data.train, data.num_train, config.batch_size, config.seed)
        epoch_metrics = tracking.EpochMetrics()
        callbacks = [_timed(tracking.metrics_callback(epoch_metrics), inside_callback)] if log else []
        run = mlflow.start_run() if log else None
        started = time.perf_counter()
        model.fit(
            batches,
            steps_per_epoch=steps,
            validation_data=validation,
            epochs=config.epochs,
            callbacks=callbacks,
            verbose=0,
        )
        if log:
            flushing = time.perf_counter()
            epoch_metrics.flush()
            flushes.append(time.perf_counter() - flushing)
        seconds = time.perf_counter() - started
        epoch_metrics.close()
        if run:
            mlflow.end_run()
        return seconds

    print(
        f"MLflow logging overhead: MLP recipe on {data.spec['name']}, {config.epochs} epochs, "
        f"{args.pairs} alternated pairs, store {uri}"
    )
    fit(log=False)  # warm-up: TensorFlow's first graph traces and kernel loads
    times = {True: [], False: []}
    for pair in range(args.pairs):
        for log in (True, False) if pair % 2 == 0 else (False, True):
            times[log].append(fit(log))
        print(f"  pair {pair + 1}: without {times[False][-1]:.3f} s, with {times[True][-1]:.3f} s")

    without, with_ = statistics.median(times[False]), statistics.median(times[True])
    pair_ratio = statistics.median(w / wo for w, wo in zip(times[True], times[False]))
    callback = sum(inside_callback) / len(times[True])
    flush = statistics.median(flushes)
    print(f"fit without MLflow: median {without:.3f} s")
    print(f"fit with MLflow logging: median {with_:.3f} s")
    print(f"ratio with/without: {with_ / without:.4f} (median of pair ratios {pair_ratio:.4f}; target <= 1.02)")
    print(
        f"direct cost per run: {1000 * callback:.1f} ms in the callback ({1000 * callback / config.epochs:.2f} ms "
        f"per epoch) + {1000 * flush:.1f} ms final flush = {100 * (callback + flush) / without:.2f}% of the fit"
    )

    started = time.perf_counter()
    result = training.train("mlp", {"epochs": config.epochs, "patience": 0, "experiment": "mlflow-overhead"})
    wall = time.perf_counter() - started
    print(
        f"one whole training.train run: {wall:.2f} s wall, fit {result.metrics['train_seconds']:.2f} s; the rest "
        "is data loading, model building and the end-of-run logging (params, datasets, figure, model)"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {
                    "epochs": config.epochs,
                    "pairs": args.pairs,
                    "without_seconds": without,
                    "with_seconds": with_,
                    "ratio": with_ / without,
                    "pair_ratio": pair_ratio,
                    "callback_ms": 1000 * callback,
                    "flush_ms": 1000 * flush,
                    "direct_cost_percent": 100 * (callback + flush) / without,
                    "whole_run_seconds": wall,
                    "whole_run_fit_seconds": result.metrics["train_seconds"],
                },
                handle,
                indent=2,
            )
    return gate.exit_status(gate.check("fit with/without MLflow", pair_ratio, TARGET, above=False))


def _timed(callback, spent):
    """Wrap a callback's `on_epoch_end` to add the seconds it takes to `spent`."""
    on_epoch_end = callback.on_epoch_end

    def timed(epoch, logs=None):
        started = time.perf_counter()
        on_epoch_end(epoch, logs)
        spent.append(time.perf_counter() - started)

    callback.on_epoch_end = timed
    return callback


if __name__ == "__main__":
    raise SystemExit(main())
