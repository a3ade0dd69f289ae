"""Benchmark: every recipe's default on each Keras backend (TensorFlow, JAX, PyTorch).

For each recipe and each installed backend, one child process (`KERAS_BACKEND=B`, as
`zoo train RECIPE` runs it, through `zoo.training.train`) trains the recipe's default for at most
`--epochs` epochs and reports: the median epoch time (the first, which traces and compiles, left
out), the test metric the recipe ranks runs by, the time to first result (process start to the end
of the first epoch: imports, data, building, compiling and one epoch) and the child's peak RSS.

Then, per backend, `overhead.py --variants keras+pipeline` on the `cnn` recipe (`--overhead-rounds`
alternated rounds of `--overhead-epochs` epochs, the median of the ratios within each round): the zoo against a
hand-written Keras `fit` on the same backend with the same input pipeline (tf.data on TensorFlow,
the NumPy `PyDataset` of `zoo.training.pipelines` on JAX and PyTorch). Target: zoo/keras+pipeline
>= 0.97 in examples per second of the median epoch.

Target: the default backend's median epoch on each recipe at most 0.7x TensorFlow's (the default
is what `zoo train` uses when KERAS_BACKEND is unset). The table says which backend is fastest.

    python benchmarks/backends.py                                   # every recipe, 3 epochs each
    python benchmarks/backends.py --recipes mlp,cnn --epochs 3 --backends tensorflow,jax
    python benchmarks/backends.py --recipes cnn --no-overhead --json backends.json
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import gate

BACKENDS = ("tensorflow", "jax", "torch")
EPOCH_TARGET = 0.7
OVERHEAD_TARGET = 0.97
HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = """
import json, os, sys, time

started = float(sys.argv[1])
# zoo first, as `zoo train` imports it: it sets the environment torch reads once (OMP_WAIT_POLICY).
from zoo import training

import keras

epochs = []


class Clock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.begun, self.begun_at = time.perf_counter(), time.time()

    def on_epoch_end(self, epoch, logs=None):
        epochs.append((time.perf_counter() - self.begun, time.time() - started, self.begun_at, time.time()))


recipe = training.get_recipe(sys.argv[2])
result = training.train(
    sys.argv[2], {"epochs": int(sys.argv[3]), "patience": 0, "tracking_uri": sys.argv[4]}, callbacks=[Clock()]
)
metric = recipe.main_metric or ("test_accuracy" if "test_accuracy" in result.metrics else "test_loss")
if keras.backend.backend() == "jax":
    import jax

    platform = jax.devices()[0].platform
else:
    platform = None
print("RESULT " + json.dumps({
    "backend": keras.backend.backend(),
    "platform": platform,
    "epoch_seconds": [e[0] for e in epochs],
    # Wall-clock (begin, end) of each epoch, for samplers outside the process (benchmarks/gpu.py).
    "windows": [e[2:] for e in epochs],
    "first_result_seconds": epochs[0][1] if epochs else None,
    "metric": metric,
    "value": result.metrics.get(metric),
    "tensorflow_imported": "tensorflow" in sys.modules,
}))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=None, help="comma-separated recipes (default: every recipe)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated (default: all installed)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run, at most (default: 3)")
    parser.add_argument("--no-overhead", action="store_true", help="skip the zoo/keras+pipeline comparison")
    # Several rounds of several epochs: one round of 3 epochs put the zoo at 0.86-0.99 of the same
    # script, where rounds on a 2-core machine differ by several percent (TensorFlow's by far more).
    parser.add_argument("--overhead-epochs", type=int, default=8, help="epochs of each overhead run (default: 8)")
    parser.add_argument("--overhead-rounds", type=int, default=5, help="alternated overhead rounds (default: 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the median epoch leaves the first (compiling) one out")

    from zoo import training

    recipes = args.recipes.split(",") if args.recipes else list(training.recipe_names())
    wanted = args.backends.split(",")
    backends = [b for b in wanted if importlib.util.find_spec(b) is not None]
    for missing in sorted(set(wanted) - set(backends)):
        print(f"{missing}: not installed, left out", flush=True)
    default = _default_backend()
    report = {"epochs": args.epochs, "default_backend": default, "runs": {}, "overhead": {}}
    with tempfile.TemporaryDirectory(prefix="zoo-backends-") as folder:
        for recipe in recipes:
            for backend in backends:
                # The epoch windows serve gpu.py's sampler; the table needs the durations only.
                row = train_in_child(recipe, backend, args.epochs, folder)
                row.pop("windows", None)
                report["runs"].setdefault(recipe, {})[backend] = row
                print(f"{recipe} on {backend}: {json.dumps(row)}", flush=True)
        if not args.no_overhead:
            for backend in backends:
                report["overhead"][backend] = _overhead(backend, args.overhead_epochs, args.overhead_rounds, folder)
                print(f"cnn overhead on {backend}: {json.dumps(report['overhead'][backend])}", flush=True)

    print()
    print(_table(report, backends))
    verdicts = []
    for recipe, rows in report["runs"].items():
        if "tensorflow" in rows and default in rows and rows["tensorflow"].get("epoch_seconds"):
            ratio = rows[default]["epoch_seconds"] / rows["tensorflow"]["epoch_seconds"]
            verdicts.append(
                gate.check(f"{recipe}: {default} epoch / tensorflow epoch", ratio, EPOCH_TARGET, above=False)
            )
    for backend, overhead in report["overhead"].items():
        if overhead.get("ratio") is not None:
            verdicts.append(gate.check(f"cnn on {backend}: zoo / keras+pipeline", overhead["ratio"], OVERHEAD_TARGET))
        else:
            verdicts.append(gate.check(f"cnn on {backend}: zoo / keras+pipeline (failed)", 0.0, OVERHEAD_TARGET))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return gate.exit_status(*verdicts)


def train_in_child(recipe, backend, epochs, folder, env=None):
    """Train `recipe`'s default for `epochs` in a fresh process on `backend` (`env`: more variables).

    Returns:
        Its median epoch (the first left out), epochs, time to first result, wall time, test
        metric, peak RSS, device platform (JAX) and epoch windows, or {"error", "wall_seconds"}.
    """
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    uri = f"sqlite:///{folder}/mlflow-{backend}.db"
    started = time.time()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(started), recipe, str(epochs), uri],
            env=env,
            cwd=folder,
            stdout=out,
            stderr=err,
        )
        # wait4 gives this child's own peak RSS (getrusage(RUSAGE_CHILDREN) keeps the largest of all).
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    wall = time.time() - started
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if child.returncode or not lines:
        return {"error": (stderr.strip().splitlines() or ["no output"])[-1][:200], "wall_seconds": wall}
    result = json.loads(lines[-1][len("RESULT ") :])
    steady = result["epoch_seconds"][1:] or result["epoch_seconds"]
    return {
        "epoch_seconds": statistics.median(steady),
        "epochs": len(result["epoch_seconds"]),
        "first_result_seconds": result["first_result_seconds"],
        "wall_seconds": wall,
        "metric": result["metric"],
        "value": result["value"],
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux reports kilobytes
        "tensorflow_imported": result["tensorflow_imported"],
        "platform": result["platform"],
        "windows": result["windows"],
    }


def _default_backend():
    """The backend `zoo train` uses when KERAS_BACKEND is unset, asked of a fresh process."""
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    code = "import os, zoo; print(os.environ['KERAS_BACKEND'])"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def _overhead(backend, epochs, rounds, folder):
    path = os.path.join(folder, f"overhead-{backend}.json")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [
        sys.executable,
        os.path.join(HERE, "overhead.py"),
        "--recipes",
        "cnn",
        "--rounds",
        str(rounds),
        "--epochs",
        str(epochs),
        "--variants",
        "keras+pipeline",
        "--json",
        path,
    ]
    done = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True)
    if done.returncode not in (0, 1) or not os.path.exists(path):
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    with open(path) as handle:
        cnn = json.load(handle)["recipes"]["cnn"]
    rounds = cnn["rounds"]
    ratios = [
        z["examples_per_second"] / p["examples_per_second"] for z, p in zip(rounds["zoo"], rounds["keras+pipeline"])
    ]
    return {
        "ratio": statistics.median(ratios),
        "round_ratios": ratios,
        "zoo_over_keras_numpy": cnn["ratio"],
        "checkpoint_ms_per_epoch": cnn["checkpoint_ms_per_epoch"],
        "early_stopping_ms_per_epoch": cnn["early_stopping_ms_per_epoch"],
        "nan_guard_ms_per_epoch": cnn["nan_guard_ms_per_epoch"],
    }


def _table(report, backends):
    lines = [
        "| recipe | backend | median epoch (s) | vs TensorFlow | test metric | first result (s) | peak RSS (MB) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    fastest = {}
    for recipe, rows in report["runs"].items():
        reference = rows.get("tensorflow", {}).get("epoch_seconds")
        timed = {b: r["epoch_seconds"] for b, r in rows.items() if r.get("epoch_seconds")}
        if timed:
            fastest[recipe] = min(timed, key=timed.get)
        for backend in backends:
            row = rows.get(backend, {})
            if "error" in row:
                lines.append(f"| {recipe} | {backend} | failed: {row['error']} | | | | |")
                continue
            versus = f"{row['epoch_seconds'] / reference:.2f}x" if reference else "-"
            lines.append(
                f"| {recipe} | {backend} | {row['epoch_seconds']:.3f} | {versus} | {row['metric']} "
                f"{row['value']:.4f} | {row['first_result_seconds']:.1f} | {row['peak_rss_mb']:.0f} |"
            )
    lines.append("")
    lines.append("Fastest backend per recipe: " + ", ".join(f"{r} {b}" for r, b in fastest.items()))
    if report["overhead"]:
        lines.append("")
        lines.append(
            "| cnn, zoo / keras+pipeline | median ratio | rounds | checkpoint ms/epoch | early stopping ms/epoch "
            "| NaN guard ms/epoch |"
        )
        lines.append("| --- | --- | --- | --- | --- | --- |")
        for backend, o in report["overhead"].items():
            if "error" in o:
                lines.append(f"| {backend} | failed: {o['error']} | | | | |")
            else:
                lines.append(
                    f"| {backend} | {o['ratio']:.3f} | {_spread(o.get('round_ratios'))} | "
                    f"{o['checkpoint_ms_per_epoch']:.1f} | "
                    f"{o['early_stopping_ms_per_epoch']:.1f} | {o['nan_guard_ms_per_epoch']:.1f} |"
                )
    return "\n".join(lines)


def _spread(ratios):
    if not ratios:
        return "-"
    return f"{len(ratios)}: {min(ratios):.3f}-{max(ratios):.3f}"


if __name__ == "__main__":
    sys.exit(main())
