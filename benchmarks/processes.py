"""Benchmark for issue 16: one process against two (`zoo launch`, JAX's keras.distribution on loopback).

For the mlp and cnn recipes' defaults (KERAS_BACKEND=jax, a few epochs), three trainings, each in
fresh processes:

- `1 process, batch B`: the recipe's global batch B on one process;
- `1 process, batch B/2`: what each of two processes computes per step;
- `2 processes, batch B`: `zoo launch --processes 2 -- train RECIPE`, B/2 rows per process.

Each prints Keras' own step time of its last epoch (the first traces and compiles). The
all-reduce cost per step is measured as the 2-process step time minus the 1-process one at the
same per-process batch (B/2): the same arithmetic per process, plus the gradient exchange and the
lock-step wait. On a 2-core machine two processes share the cores, so expect no speed-up: the
figures report the cost, not a gain. Its one target is a bound, not a speed-up: the all-reduce
cost per step stays under `ALL_REDUCE_TARGET_MS` on loopback (about 65 ms measured on 2 busy
cores; a change that exchanged more than once per step, or that left one process waiting on the
other for its data, would show here). Exit 1 when it is missed, as every benchmark's gate.

Then, on paper, the traffic per step of each registered model at its defaults: a ring all-reduce
moves about 2 x (N-1)/N x the gradient bytes per process per step (float32 gradients, 4 bytes per
trainable parameter), for N = 2 and N = 8 processes.

    python benchmarks/processes.py [--recipes mlp,cnn] [--epochs 3]
"""

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time

import gate

ALL_REDUCE_TARGET_MS = 250.0

# Keras' verbose=2 epoch line: "23/23 - 3s - 120ms/step - loss: ...".
STEP = re.compile(r"^\s*\d+/\d+ - \S+ - (\d+(?:\.\d+)?)(us|ms|s)/step", re.MULTILINE)
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def last_step_seconds(output):
    """Keras' step time of the last epoch line in `output`, in seconds."""
    found = STEP.findall(output)
    if not found:
        raise RuntimeError(f"no epoch line in the output:\n{output[-2000:]}")
    value, unit = found[-1]
    return float(value) * UNITS[unit]


def train(recipe, epochs, batch_size, processes, folder):
    """Train one default in fresh processes; return (step seconds of the last epoch, wall seconds)."""
    store = f"sqlite:///{folder}/mlflow.db"
    command = ["train", recipe, "--epochs", str(epochs), "--batch-size", str(batch_size), "--patience", "0"]
    command += ["--tracking-uri", store]
    if processes > 1:
        command = ["launch", "--processes", str(processes), "--", *command]
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "zoo", *command], capture_output=True, text=True, env=env, cwd=folder, timeout=1800
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"`zoo {' '.join(command)}` failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return last_step_seconds(result.stdout), wall


def default_batch(recipe):
    from zoo import training

    config, _ = training.make_config(training.get_recipe(recipe), {}, {})
    return int(config.batch_size)


def measured(recipes, epochs):
    """Print the step times of each recipe; return the all-reduce cost per step of each, in ms."""
    costs = {}
    print("| recipe | run | global batch | per-process batch | step (ms) | wall (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for recipe in recipes:
        batch = default_batch(recipe)
        steps = {}
        for label, size, processes in (
            ("1 process", batch, 1),
            ("1 process", batch // 2, 1),
            ("2 processes", batch, 2),
        ):
            with tempfile.TemporaryDirectory() as folder:
                step, wall = train(recipe, epochs, size, processes, folder)
            steps[(size, processes)] = step
            print(f"| {recipe} | {label} | {size} | {size // processes} | {step * 1e3:.1f} | {wall:.1f} |", flush=True)
        cost = steps[(batch, 2)] - steps[(batch // 2, 1)]
        costs[recipe] = cost * 1e3
        ratio = steps[(batch, 2)] / steps[(batch, 1)]
        print(
            f"{recipe}: all-reduce cost per step {cost * 1e3:.1f} ms (2 processes at batch {batch} minus 1 process "
            f"at batch {batch // 2}); 2 processes take {ratio:.2f}x the step time of 1 process at batch {batch}"
        )
    return costs


def trainable_parameters():
    """{model name: trainable parameters at its defaults, or the reason it could not be built}."""
    import zoo
    from zoo import registry

    counts = {}
    for name in registry.names():
        try:
            model = zoo.get(name)
            counts[name] = int(sum(math.prod(v.shape) for v in model.trainable_variables))
        except Exception as error:  # a model that needs arguments its card has no default for
            counts[name] = f"not built at its defaults ({type(error).__name__})"
    return counts


def on_paper():
    print("\nOn paper: a ring all-reduce moves about 2 x (N-1)/N x the gradient bytes per process per step.")
    print("| model | trainable parameters | gradient (KiB) | ring, N=2 (KiB) | ring, N=8 (KiB) |")
    print("| --- | --- | --- | --- | --- |")
    for name, count in trainable_parameters().items():
        if isinstance(count, str):
            print(f"| {name} | {count} | | | |")
            continue
        gradient = 4 * count / 1024
        ring = [2 * (n - 1) / n * gradient for n in (2, 8)]
        print(f"| {name} | {count} | {gradient:.1f} | {ring[0]:.1f} | {ring[1]:.1f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default="mlp,cnn", help="comma-separated recipes (default: mlp,cnn)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per training (default: 3)")
    args = parser.parse_args(argv)
    # Before zoo is imported: the multi-process path is JAX's.
    os.environ.setdefault("KERAS_BACKEND", "jax")
    costs = measured([name for name in args.recipes.split(",") if name], args.epochs)
    on_paper()
    print()
    verdicts = [
        gate.check(f"{recipe} all-reduce cost per step (ms)", cost, ALL_REDUCE_TARGET_MS, above=False)
        for recipe, cost in costs.items()
    ]
    return gate.exit_status(*verdicts)


if __name__ == "__main__":
    sys.exit(main())
