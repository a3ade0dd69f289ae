"""Benchmark: `zoo train cnn` and `zoo train gan` on JAX, on the GPU against the CPU (issue 15).

For each recipe, two child processes train the recipe's default for `--epochs` epochs on
KERAS_BACKEND=jax, one with `JAX_PLATFORMS=cpu` and one on the GPU (`JAX_PLATFORMS=cuda`), and
report the median epoch (the first, which compiles, left out), the time to first result and the
test metric. While the GPU child trains, `nvidia-smi` is sampled every 0.2 s; the GPU's busy share
during an epoch is the mean utilization over the samples inside the epochs after the first.

Runs on a machine with JAX (with CUDA) and no TensorFlow: in memory, the `cnn` and `gan` recipes
read the digits as NumPy batches and never import TensorFlow (README, "Input pipelines on every
backend"). Install there with the keras and mlflow wheels and the zoo without its TensorFlow
dependency, e.g. `pip install keras mlflow scikit-learn statsmodels && pip install --no-deps -e .`.
About 5 minutes with the default 5 epochs. Where JAX sees no GPU, it says so, reports the CPU
figures alone and checks no target.

Target, on a GPU: its median epoch at most the CPU's (`GPU_TARGET`). On the digits (8x8 images,
batches of 32) the GPU mostly waits for the host, so the busy share says how much of the GPU these
defaults use.

    python benchmarks/gpu.py                       # cnn and gan, 5 epochs each, CPU and GPU
    python benchmarks/gpu.py --recipes cnn --epochs 3 --json gpu.json
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import backends
import gate

GPU_TARGET = 1.0  # GPU epoch / CPU epoch, at most
SAMPLE_SECONDS = 0.2


def gpu_visible():
    """Whether JAX, in a fresh process, sees a GPU."""
    code = "import jax; print(any(d.platform == 'gpu' for d in jax.devices()))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return found.returncode == 0 and found.stdout.strip().endswith("True")


class Utilization(threading.Thread):
    """(time, percent) samples of the first GPU's utilization from `nvidia-smi`, until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples, self.done = [], threading.Event()

    def run(self):
        command = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"]
        while not self.done.wait(SAMPLE_SECONDS):
            read = subprocess.run(command, capture_output=True, text=True)
            if read.returncode == 0 and read.stdout.strip():
                self.samples.append((time.time(), float(read.stdout.split()[0])))


def busy_share(samples, windows):
    """Mean utilization (%) over the samples inside the epochs after the first."""
    inside = [p for t, p in samples if any(begin <= t <= end for begin, end in windows[1:] or windows)]
    return statistics.mean(inside) if inside else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="cnn,gan", help="comma-separated recipes (default: cnn,gan)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (default: 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the median epoch leaves the first (compiling) one out")
    gpu = gpu_visible()
    if not gpu:
        print("No GPU visible to JAX here: CPU figures only, no target checked.")
    sampler = shutil.which("nvidia-smi") if gpu else None
    report = {"gpu": gpu, "epochs": args.epochs, "runs": {}}
    print("| recipe | device | median epoch (s) | first result (s) | test metric | GPU busy during an epoch |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="zoo-gpu-") as folder:
        for recipe in args.recipes.split(","):
            for platform in ("cpu", "cuda") if gpu else ("cpu",):
                utilization = Utilization() if platform == "cuda" and sampler else None
                if utilization:
                    utilization.start()
                row = backends.train_in_child(recipe, "jax", args.epochs, folder, env={"JAX_PLATFORMS": platform})
                if utilization:
                    utilization.done.set()
                    utilization.join()
                    if "windows" in row:
                        row["gpu_busy_percent"] = busy_share(utilization.samples, row["windows"])
                report["runs"].setdefault(recipe, {})[platform] = row
                if "error" in row:
                    print(f"| {recipe} | {platform} | failed: {row['error']} | | | |", flush=True)
                    continue
                busy = row.get("gpu_busy_percent")
                shown = "-" if busy is None else f"{busy:.0f} %"
                print(
                    f"| {recipe} | {row['platform']} | {row['epoch_seconds']:.3f} | "
                    f"{row['first_result_seconds']:.1f} | {row['metric']} {row['value']:.4f} | {shown} |",
                    flush=True,
                )
    verdicts = []
    for recipe, rows in report["runs"].items():
        if "cuda" in rows and "epoch_seconds" in rows.get("cuda", {}) and "epoch_seconds" in rows.get("cpu", {}):
            ratio = rows["cuda"]["epoch_seconds"] / rows["cpu"]["epoch_seconds"]
            verdicts.append(gate.check(f"{recipe} GPU epoch / CPU epoch", ratio, GPU_TARGET, above=False))
        verdicts.append(all("error" not in row for row in rows.values()))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return gate.exit_status(*verdicts)


if __name__ == "__main__":
    sys.exit(main())
