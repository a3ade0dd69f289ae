"""Benchmark: training on data larger than memory, streamed from disk (tables and image folders).

Tables: statsmodels' Fair data (6,366 real survey answers, 8 numbers and a label: had an affair)
resampled with replacement to each size in `--rows`, written to a CSV chunk by chunk. Each size
trains `zoo train mlp --data FILE.csv --target affair --epochs E --batch-size 256 --patience 0`
in a subprocess twice: streamed (`ZOO_STREAM_BYTES=0`) and, up to `--in-memory-max` rows, loaded
whole (`ZOO_STREAM_BYTES` above the file's size). Images: scikit-learn's 1,797 digit scans upscaled
to 32x32 PNGs with a little noise, `--images` of them in ten class folders, trained by
`zoo train cnn --data FOLDER --epochs E --batch-size 128 --patience 0 --worst-images 0`, streamed
(`ZOO_STREAM_BYTES=0`) and, up to `--in-memory-images-max` images, read whole.

Printed per run: wall time of the subprocess, training seconds per epoch (the run's
`train_seconds` over its epochs), microseconds per training row and epoch, and the peak RSS of the
process (`wait4`'s ru_maxrss). Targets: every streamed run peaks under 2 GB; at the largest size
trained both ways, the streamed path's time per row is within 20 % of the in-memory path's.

    python benchmarks/streaming.py                                   # 10k and 100k rows, 2,000 images
    python benchmarks/streaming.py --rows 10000,1000000,10000000 --images 10000,50000
    python benchmarks/streaming.py --json figures.json               # also write the figures as JSON
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import gate
import numpy as np

# Peak RSS of a streamed run, at most (MB); streamed time per row over in-memory, at most.
RSS_TARGET_MB = 2048
SLOWDOWN_TARGET = 1.2
WRITE_ROWS = 500_000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000", help="table sizes, comma-separated (default: 10000,100000)")
    parser.add_argument("--images", default="2000", help="image-folder sizes, comma-separated; 0 for none")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--in-memory-max", type=int, default=1_000_000, help="largest table also trained in memory (default: 1e6)"
    )
    parser.add_argument(
        "--in-memory-images-max", type=int, default=10_000, help="largest folder also read whole (default: 1e4)"
    )
    parser.add_argument("--work", help="folder for the generated data and runs (default: a temporary one)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="zoo-streaming-")
    os.makedirs(work, exist_ok=True)
    figures = {"tables": {}, "images": {}}
    verdicts = []
    compared = None
    for rows in _sizes(args.rows):
        path = os.path.join(work, f"fair_{rows}.csv")
        if not os.path.exists(path):
            write_table(path, rows)
        entry = figures["tables"][rows] = {"file_mb": round(os.path.getsize(path) / 2**20, 1)}
        ways = ["streamed"] + (["in_memory"] if rows <= args.in_memory_max else [])
        for way in ways:
            threshold = "0" if way == "streamed" else str(10**15)
            command = [
                *["train", "mlp", "--data", path, "--target", "affair", "--epochs", str(args.epochs)],
                *["--batch-size", "256", "--patience", "0"],
            ]
            entry[way] = run_zoo(command, work, {"ZOO_STREAM_BYTES": threshold}, rows_trained=0.8 * rows)
            _show(f"mlp, {rows:,} rows, {way}", entry[way])
            verdicts.append(entry[way]["returncode"] == 0)
            if way == "streamed":
                verdicts.append(
                    gate.check(
                        f"peak RSS (MB), {rows:,} rows streamed", entry[way]["peak_rss_mb"], RSS_TARGET_MB, above=False
                    )
                )
        if len(ways) == 2:
            compared = rows
    if compared:
        entry = figures["tables"][compared]
        ratio = entry["streamed"]["us_per_row"] / entry["in_memory"]["us_per_row"]
        entry["slowdown"] = round(ratio, 3)
        verdicts.append(
            gate.check(f"streamed / in-memory time per row at {compared:,} rows", ratio, SLOWDOWN_TARGET, above=False)
        )
    for count in _sizes(args.images):
        folder = os.path.join(work, f"digits_{count}")
        if not os.path.isdir(folder):
            write_images(folder, count)
        entry = figures["images"][count] = {}
        command = [
            *["train", "cnn", "--data", folder, "--epochs", str(args.epochs)],
            *["--batch-size", "128", "--patience", "0", "--worst-images", "0"],
        ]
        ways = ["streamed"] + (["in_memory"] if count <= args.in_memory_images_max else [])
        for way in ways:
            threshold = "0" if way == "streamed" else str(10**15)
            entry[way] = run_zoo(command, work, {"ZOO_STREAM_BYTES": threshold}, rows_trained=0.72 * count)
            _show(f"cnn, {count:,} images, {way}", entry[way])
            verdicts.append(entry[way]["returncode"] == 0)
            if way == "streamed":
                verdicts.append(
                    gate.check(
                        f"peak RSS (MB), {count:,} images streamed",
                        entry[way]["peak_rss_mb"],
                        RSS_TARGET_MB,
                        above=False,
                    )
                )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    return gate.exit_status(*verdicts)


def _sizes(text):
    return [int(float(size)) for size in str(text).split(",") if size.strip() and int(float(size)) > 0]


def write_table(path, rows, seed=0):
    """Fair's rows resampled with replacement to `rows` rows, written in chunks (memory stays small)."""
    import statsmodels.datasets.fair

    fair = statsmodels.datasets.fair.load_pandas().data
    fair["affair"] = (fair.pop("affairs") > 0).astype(int)
    rng = np.random.default_rng(seed)
    with open(path + ".part", "w") as handle:
        for start in range(0, rows, WRITE_ROWS):
            picked = fair.iloc[rng.integers(0, len(fair), min(WRITE_ROWS, rows - start))]
            picked.to_csv(handle, index=False, header=start == 0, float_format="%.6g")
    os.replace(path + ".part", path)


def write_images(folder, count, size=32, seed=0):
    """`count` PNGs of scikit-learn's digits upscaled to `size` x `size`, noisy, one folder per digit."""
    import sklearn.datasets
    from PIL import Image

    digits = sklearn.datasets.load_digits()
    rng = np.random.default_rng(seed)
    scale = size // 8
    for name in range(10):
        os.makedirs(os.path.join(folder + ".part", str(name)), exist_ok=True)
    for i in range(count):
        pick = i % len(digits.images)
        pixels = np.kron(digits.images[pick] / 16.0 * 255.0, np.ones((scale, scale)))
        pixels = np.clip(pixels + rng.normal(0, 12, pixels.shape), 0, 255).astype("uint8")
        Image.fromarray(pixels).save(os.path.join(folder + ".part", str(digits.target[pick]), f"{i}.png"))
    os.replace(folder + ".part", folder)


def run_zoo(command, work, env, rows_trained):
    """Run `zoo COMMAND` in a subprocess; its wall time, peak RSS and training time per epoch and row."""
    environ = {
        **os.environ,
        **env,
        "MLFLOW_TRACKING_URI": f"sqlite:///{os.path.join(work, 'mlflow.db')}",
        "ZOO_CHECKPOINT_DIR": os.path.join(work, "checkpoints"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    log = os.path.join(work, "last_run")
    started = time.perf_counter()
    with open(log + ".out", "wb") as out, open(log + ".err", "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "zoo", *command], cwd=work, env=environ, stdout=out, stderr=err
        )
        # wait4, not Popen.wait: it also returns the child's own resource use, peak RSS included.
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    result = {
        "command": "zoo " + " ".join(command),
        "env": env,
        "returncode": process.returncode,
        "wall_seconds": round(wall, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KB on Linux
    }
    with open(log + ".out", encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    with open(log + ".err", encoding="utf-8", errors="replace") as handle:
        errors = handle.read()
    seconds = re.search(r"train_seconds=([\d.]+)", text)
    epochs = re.search(r"epochs_trained=(\d+)", text)
    if process.returncode or not seconds:
        result["error"] = (errors.strip().splitlines() or ["no output"])[-1]
        result.update(seconds_per_epoch=float("nan"), us_per_row=float("nan"))
        return result
    per_epoch = float(seconds.group(1)) / int(epochs.group(1))
    result.update(seconds_per_epoch=round(per_epoch, 2), us_per_row=round(per_epoch / rows_trained * 1e6, 3))
    accuracy = re.search(r"test_accuracy=([\d.]+)", text)
    if accuracy:
        result["test_accuracy"] = float(accuracy.group(1))
    return result


def _show(what, result):
    shown = ", ".join(f"{k} {v}" for k, v in result.items() if k not in ("command", "env"))
    print(
        f"{what}: {shown}\n   {' '.join(f'{k}={v}' for k, v in result['env'].items())} {result['command']}", flush=True
    )


if __name__ == "__main__":
    sys.exit(main())
