"""Benchmark: what the zoo costs over a hand-written Keras script, for the MLP and the CNN recipes.

For each recipe, in one process, alternately:

- `zoo`: `training.train(RECIPE, {"epochs": N})`, the recipe as `zoo train` runs it: the engine's
  input pipeline, early stopping, the NaN guard, a checkpoint every epoch and the MLflow logging,
  plus the wait for the epoch metrics still being written when `fit` returns.
- `keras`: the hand-written script: the same compiled model (built by the same builder with the
  same hyperparameters), the same training and validation examples as NumPy arrays, the same batch
  size and epochs, `model.fit(x, y, batch_size=..., epochs=..., validation_data=...)`, no callbacks.

Every `fit` in the process goes through the same wrapper around `keras.Model.fit`, which adds a
last callback that clocks each epoch from the end of the one before (steps, validation and every
other callback included) in wall time and in the process's CPU time. Throughput: training examples
per second of the median epoch, the first (graph tracing) left out; per CPU second too, which a
machine shared with other work disturbs much less than wall time; and over the whole `fit`. A ratio
zoo/keras is the median over the rounds of the ratio within each round, so load on the machine
hits both sides of a ratio alike. Target: >= 0.97.

Between the two, steps that say where a difference comes from (`--variants`; all by default):
`keras+pipeline` (the engine's `training_batches`: cache, shuffle, `repeat()` with
`steps_per_epoch` on TensorFlow, its NumPy `PyDataset` with the same seeded order on JAX and
PyTorch (`KERAS_BACKEND=jax python benchmarks/overhead.py`); validation through `training.batch`),
`+guards` (that plus `StopOnNaN` and the early stopping with best weights),
`+checkpoints` (that plus the engine's per-epoch `EpochCheckpoint`: every variable in one `.npz`,
logging nothing). The zoo's own callbacks are timed from the inside too, and the work they hand to
threads (the checkpoint's file write, the MLflow metrics writer), which still takes CPU on a small machine.

    python benchmarks/overhead.py
    python benchmarks/overhead.py --recipes mlp --rounds 5 --json overhead.json
    python benchmarks/overhead.py --variants keras,+checkpoints,zoo
    python benchmarks/overhead.py --quick          # 1 round of 2 epochs, keras and zoo: a smoke run
"""

import argparse
import collections
import functools
import json
import os
import statistics
import sys
import tempfile
import threading
import time

import gate

# Epochs per run: enough epochs for a median, few enough for the 20-minute runner.
EPOCHS = {"mlp": 12, "cnn": 5}
TARGET = 0.97
VARIANTS = ("keras", "keras+pipeline", "+guards", "+checkpoints", "zoo")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="mlp,cnn", help="comma-separated recipes (default: mlp,cnn)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds per recipe (default: 3)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"epochs per run (default: {', '.join(f'{k} {v}' for k, v in EPOCHS.items())})",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, from {', '.join(VARIANTS)} (keras and zoo always run)",
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 2 epochs, keras and zoo only")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    variants = tuple(v for v in VARIANTS if v in args.variants.split(",") or v in ("keras", "zoo"))
    if args.quick:
        args.rounds, args.epochs, variants = 1, 2, ("keras", "zoo")
    if args.json:
        args.json = os.path.abspath(args.json)  # the benchmark works in a temporary folder

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="zoo-overhead-") as folder:
        # MLflow writes run artifacts under ./mlruns; checkpoints go to the throwaway folder too.
        os.chdir(folder)
        try:
            report = _measure(args, variants, folder)
        finally:
            os.chdir(cwd)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return gate.exit_status(
        *(gate.check(f"{name} zoo/keras examples/s", r["ratio"], TARGET) for name, r in report["recipes"].items())
    )


def _measure(args, variants, folder):
    # zoo before Keras, as `zoo train` imports them: the hand-written script gets the same environment
    # (OMP_WAIT_POLICY, read once when torch loads) as the zoo.
    import zoo  # noqa: F401, I001
    import keras

    from zoo import faults, tracking, training

    timers = _instrument(keras, faults, tracking)
    uri = tracking.configure(f"sqlite:///{folder}/mlflow.db")
    report = {"target": TARGET, "rounds": args.rounds, "variants": list(variants), "recipes": {}}
    for name in args.recipes.split(","):
        epochs = args.epochs or EPOCHS.get(name, 10)
        bench = _Bench(training, faults, keras, name, epochs, uri, folder, timers)
        print(
            f"{name}: {bench.num_train} training examples, batch {bench.config.batch_size}, {epochs} epochs, "
            f"model {bench.model_name}",
            flush=True,
        )
        bench.run("keras", warmup=True)  # first traces and kernel loads of this model in the process
        bench.run("zoo", warmup=True)  # and the store's first run of the recipe
        rows = collections.defaultdict(list)
        for index in range(args.rounds):
            # Rotate the order so that no variant always runs first or last in a round.
            order = variants[index % len(variants) :] + variants[: index % len(variants)]
            results = {variant: bench.run(variant) for variant in order}
            for variant, result in results.items():
                rows[variant].append(result)
            print(
                f"  round {index + 1}, examples per second of the median epoch (per CPU second): "
                + ", ".join(
                    f"{v} {results[v]['examples_per_second']:.0f} ({results[v]['examples_per_cpu_second']:.0f})"
                    for v in variants
                ),
                flush=True,
            )
        report["recipes"][name] = _summarize(name, rows, variants, epochs, bench)
    report["met"] = all(r["ratio"] >= TARGET for r in report["recipes"].values())
    report["cpu_met"] = all(r["cpu_ratio"] >= TARGET for r in report["recipes"].values())
    return report


class _Bench:
    """One recipe's data, model and the ways to train it."""

    def __init__(self, training, faults, keras, name, epochs, uri, folder, timers):
        import numpy as np

        self.training, self.faults, self.keras = training, faults, keras
        self.name, self.epochs, self.uri, self.folder, self.timers = name, epochs, uri, folder, timers
        self.recipe = training.get_recipe(name)
        self.config, overrides = training.make_config(self.recipe, {"epochs": epochs})
        self.data = self.recipe.load_data(self.config)
        self.model_name = self.recipe.model_name(self.config)
        self.hyperparameters = {**self.recipe.model_overrides(self.config, self.data), **overrides}
        self.num_train = self.data.num_train

        def arrays(dataset):
            if isinstance(dataset, training.Arrays):
                return dataset.elements  # off TensorFlow the splits are NumPy already
            # One batch holding the whole split: exactly the examples the engine trains on.
            import tensorflow as tf

            whole = next(iter(dataset.batch(1 << 30)))
            return tf.nest.map_structure(lambda t: np.asarray(t), whole)

        self.x_train, self.y_train = arrays(self.data.train)
        self.validation = arrays(self.data.validation) if self.data.validation is not None else None

    def run(self, variant, warmup=False):
        epochs = 1 if warmup else self.epochs
        for timer in self.timers.values():
            timer.clear()
        extra = {}
        if variant == "zoo":
            options = {
                "epochs": epochs,
                "tracking_uri": self.uri,
                "experiment": "overhead",
                "checkpoint_dir": os.path.join(self.folder, "checkpoints"),
            }
            started = time.perf_counter()
            result = self.training.train(self.name, options)
            wall = time.perf_counter() - started
            done = int(result.metrics["epochs_trained"])
            per_epoch = {
                name: 1000 * sum(self.timers[name]) / max(1, done)
                for name in ("checkpoint", "checkpoint_write", "metrics_write", "early_stopping", "nan_guard")
            }
            extra = {
                "run_seconds": wall,
                "flush_seconds": sum(w for w, _ in self.timers["flush"]),
                **{f"{name}_ms_per_epoch": value for name, value in per_epoch.items()},
            }
        else:
            self._fit(variant, epochs)
        ((seconds, cpu, epoch_walls, epoch_cpus),) = self.timers["fit"]
        flush_wall = sum(w for w, _ in self.timers["flush"])
        flush_cpu = sum(c for _, c in self.timers["flush"])
        done = len(epoch_walls)
        # The median epoch without the first (tracing); the final flush spread over the epochs.
        steady = epoch_walls[1:] or epoch_walls
        steady_cpu = epoch_cpus[1:] or epoch_cpus
        epoch_wall = statistics.median(steady) + flush_wall / done
        epoch_cpu = statistics.median(steady_cpu) + flush_cpu / done
        return {
            "epochs": done,
            "fit_seconds": seconds + flush_wall,
            "fit_cpu_seconds": cpu + flush_cpu,
            "epoch_seconds": epoch_wall,
            "epoch_cpu_seconds": epoch_cpu,
            "examples_per_second": self.num_train / epoch_wall,
            "examples_per_cpu_second": self.num_train / epoch_cpu,
            "fit_examples_per_second": self.num_train * done / (seconds + flush_wall),
            **extra,
        }

    def _fit(self, variant, epochs):
        from zoo import registry

        keras, training, faults, config = self.keras, self.training, self.faults, self.config
        keras.utils.set_random_seed(config.seed)
        model = registry.get(self.model_name, **self.hyperparameters)
        if variant == "keras":
            model.fit(
                self.x_train,
                self.y_train,
                batch_size=config.batch_size,
                epochs=epochs,
                validation_data=self.validation,
                shuffle=True,
                verbose=0,
            )
            return
        batches, steps = training.training_batches(self.data.train, self.num_train, config.batch_size, config.seed)
        validation = training.batch(self.data.validation, config.batch_size)
        callbacks, stopper = [], None
        if variant != "keras+pipeline":
            callbacks.append(faults.StopOnNaN())
            if self.recipe.monitor and config.patience:
                stopper = faults.ResumableEarlyStopping(
                    monitor=self.recipe.monitor, patience=config.patience, restore_best_weights=True
                )
                callbacks.append(stopper)
        folder = os.path.join(self.folder, "checkpoints", f"bench-{self.name}")
        if variant == "+checkpoints":
            callbacks.append(faults.EpochCheckpoint(folder, lambda epoch, logs: None, stopper))
        model.fit(
            batches, steps_per_epoch=steps, validation_data=validation, epochs=epochs, callbacks=callbacks, verbose=0
        )
        faults.remove(folder)


def _instrument(keras, faults, tracking):
    """Clock every `fit` and its epochs, the zoo's callbacks and its final metrics flush, from the inside.

    The same wrapper times the zoo's `fit` and the script's; the wrappers cost microseconds per call.
    """
    timers = {
        "fit": [],
        "flush": [],
        "checkpoint": [],
        "checkpoint_write": [],
        "metrics_write": [],
        "early_stopping": [],
        "nan_guard": [],
    }

    class EpochClock(keras.callbacks.Callback):
        """Wall and CPU time of each epoch, from the end of the previous one (or from `fit`'s start)."""

        def __init__(self):
            super().__init__()
            self.walls, self.cpus = [], []
            self.last = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            now = (time.perf_counter(), time.process_time())
            self.walls.append(now[0] - self.last[0])
            self.cpus.append(now[1] - self.last[1])
            self.last = now

    original_fit = keras.Model.fit

    @functools.wraps(original_fit)
    def fit(self, *args, **kwargs):
        clock = EpochClock()
        # Last, so that an epoch's time includes every other callback's work at its end.
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), clock]
        started, started_cpu = time.perf_counter(), time.process_time()
        try:
            return original_fit(self, *args, **kwargs)
        finally:
            timers["fit"].append(
                (time.perf_counter() - started, time.process_time() - started_cpu, clock.walls, clock.cpus)
            )

    def timed(function, spent, cpu=False):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            started, started_cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                wall = time.perf_counter() - started
                spent.append((wall, time.process_time() - started_cpu) if cpu else wall)

        return wrapper

    keras.Model.fit = fit
    # A run flushes its `tracking.EpochMetrics` once before its final metrics: wrapping the method times it.
    tracking.EpochMetrics.flush = timed(tracking.EpochMetrics.flush, timers["flush"], cpu=True)
    faults.EpochCheckpoint.on_epoch_end = timed(faults.EpochCheckpoint.on_epoch_end, timers["checkpoint"])
    # Off the training thread: the checkpoint's file write and rename, and the epoch metrics' MLflow writes.
    faults.EpochCheckpoint._write = timed(faults.EpochCheckpoint._write, timers["checkpoint_write"])
    import mlflow

    log_batch = mlflow.MlflowClient.log_batch

    @functools.wraps(log_batch)
    def epoch_log_batch(self, *args, **kwargs):
        if threading.current_thread().name != "zoo-epoch-metrics":
            return log_batch(self, *args, **kwargs)
        return timed(log_batch, timers["metrics_write"])(self, *args, **kwargs)

    mlflow.MlflowClient.log_batch = epoch_log_batch
    faults.ResumableEarlyStopping.on_epoch_end = timed(
        faults.ResumableEarlyStopping.on_epoch_end, timers["early_stopping"]
    )
    faults.StopOnNaN.on_train_batch_end = timed(faults.StopOnNaN.on_train_batch_end, timers["nan_guard"])
    return timers


def _summarize(name, rows, variants, epochs, bench):
    def median_of(key, variant):
        return statistics.median(r[key] for r in rows[variant])

    def ratios(key):
        # Within-round ratios against the hand-written script, then their median.
        return {v: statistics.median(z[key] / k[key] for z, k in zip(rows[v], rows["keras"])) for v in variants}

    wall, cpu, whole = (
        ratios("examples_per_second"),
        ratios("examples_per_cpu_second"),
        ratios("fit_examples_per_second"),
    )
    summary = {
        "epochs": epochs,
        "batch_size": bench.config.batch_size,
        "num_train": bench.num_train,
        "model": bench.model_name,
        "examples_per_second": {v: median_of("examples_per_second", v) for v in variants},
        "examples_per_cpu_second": {v: median_of("examples_per_cpu_second", v) for v in variants},
        "ratio_to_keras": wall,
        "cpu_ratio_to_keras": cpu,
        "fit_ratio_to_keras": whole,
        "ratio": wall["zoo"],
        "cpu_ratio": cpu["zoo"],
        "fit_ratio": whole["zoo"],
        "keras_epoch_ms": 1000 * median_of("epoch_seconds", "keras"),
        "keras_epoch_cpu_ms": 1000 * median_of("epoch_cpu_seconds", "keras"),
        "zoo_run_seconds": median_of("run_seconds", "zoo"),
        "zoo_fit_seconds": median_of("fit_seconds", "zoo"),
        "flush_seconds": median_of("flush_seconds", "zoo"),
        "checkpoint_ms_per_epoch": median_of("checkpoint_ms_per_epoch", "zoo"),
        "checkpoint_write_ms_per_epoch": median_of("checkpoint_write_ms_per_epoch", "zoo"),
        "metrics_write_ms_per_epoch": median_of("metrics_write_ms_per_epoch", "zoo"),
        "early_stopping_ms_per_epoch": median_of("early_stopping_ms_per_epoch", "zoo"),
        "nan_guard_ms_per_epoch": median_of("nan_guard_ms_per_epoch", "zoo"),
        "rounds": {v: rows[v] for v in variants},
    }
    eps = summary["examples_per_second"]
    print(
        f"{name}: keras {eps['keras']:.0f} examples/s, zoo {eps['zoo']:.0f} examples/s; ratio zoo/keras "
        f"{wall['zoo']:.3f} (target >= {TARGET}: {'met' if wall['zoo'] >= TARGET else 'MISSED'}); in CPU time "
        f"{cpu['zoo']:.3f}; over the whole fit {whole['zoo']:.3f}"
    )
    if len(variants) > 2:
        print(
            f"{name}: steps, ratio to keras in wall (CPU) time: "
            + ", ".join(f"{v} {wall[v]:.3f} ({cpu[v]:.3f})" for v in variants)
        )
    print(
        f"{name}: inside the zoo per epoch: checkpoint {summary['checkpoint_ms_per_epoch']:.1f} ms on the training "
        f"thread ({summary['checkpoint_write_ms_per_epoch']:.1f} ms writing, off it), MLflow metrics writer "
        f"{summary['metrics_write_ms_per_epoch']:.1f} ms (off it), "
        f"early stopping {summary['early_stopping_ms_per_epoch']:.1f} ms, NaN guard "
        f"{summary['nan_guard_ms_per_epoch']:.1f} ms (a keras epoch: {summary['keras_epoch_ms']:.0f} ms, "
        f"{summary['keras_epoch_cpu_ms']:.0f} ms CPU); final flush {1000 * summary['flush_seconds']:.0f} ms; "
        f"whole zoo run {summary['zoo_run_seconds']:.1f} s for a {summary['zoo_fit_seconds']:.1f} s fit",
        flush=True,
    )
    return summary


if __name__ == "__main__":
    sys.exit(main())
