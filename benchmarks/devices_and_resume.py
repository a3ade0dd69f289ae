"""Benchmark for issue 7: the cost of two logical devices, and the time lost to an interruption.

1. The MLP recipe trained for the same epochs on one device and under MirroredStrategy on two
   logical CPU devices (each in a fresh process, since the CPU split must precede TensorFlow's
   start), reported as a ratio of training seconds. On a CPU this is a slowdown: the point of the
   split is to exercise the multi-device code path, not speed.
2. A `zoo train mlp` process is sent SIGTERM after its third epoch and resumed with
   `zoo train --resume`: prints the seconds from the signal to the process exit, from the resume
   command to its first new epoch in MLflow, and their sum (the time lost).

    python benchmarks/devices_and_resume.py [--epochs 10]
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import gate

TRAIN = """
import json, sys
from zoo import training
r = training.train("mlp", {"epochs": int(sys.argv[1]), "patience": 0, "batch_size": 32, "devices": sys.argv[2],
                         "tracking_uri": sys.argv[3]}, {"dropout": "0"})
print(json.dumps(r.metrics))
"""


def _train_seconds(epochs, devices, logical_cpus, store):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "ZOO_LOGICAL_CPUS": str(logical_cpus)}
    result = subprocess.run(
        [sys.executable, "-c", TRAIN, str(epochs), devices, store], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])["train_seconds"]


def _last_step(client, run_id):
    steps = [m.step for m in client.get_metric_history(run_id, "loss")]
    return max(steps) if steps else -1


def measure_resume(folder, store):
    import mlflow

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MLFLOW_TRACKING_URI": store}
    client = mlflow.MlflowClient(store)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zoo",
            "train",
            "mlp",
            "--epochs",
            "200",
            "--patience",
            "0",
            "--experiment",
            "resume-bench",
        ],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run_id = None
    while True:
        experiment = client.get_experiment_by_name("resume-bench")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if runs and _last_step(client, runs[0].info.run_id) >= 3:
            run_id = runs[0].info.run_id
            break
        time.sleep(0.1)
    signalled = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    process.wait()
    exited = time.perf_counter()
    stopped_at = _last_step(client, run_id)
    resumed = subprocess.Popen(
        [sys.executable, "-m", "zoo", "train", "--resume", run_id],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.perf_counter()
    while _last_step(client, run_id) <= stopped_at:
        time.sleep(0.05)
    training_again = time.perf_counter()
    resumed.send_signal(signal.SIGTERM)
    resumed.wait()
    return exited - signalled, training_again - started


# Seconds an interruption may cost, from the signal to training again after `zoo train --resume`.
MAX_TIME_LOST = 30.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-time-lost", type=float, default=MAX_TIME_LOST, help="target, in seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        store = f"sqlite:///{folder}/mlflow.db"
        one = _train_seconds(args.epochs, "auto", 1, store)
        two = _train_seconds(args.epochs, "all", 2, store)
        print(
            f"mlp, {args.epochs} epochs: one device {one:.2f} s, two logical CPU devices {two:.2f} s, "
            f"ratio {two / one:.2f}x"
        )
        to_exit, to_training = measure_resume(folder, store)
        print(
            f"resume: signal to exit {to_exit:.2f} s, resume command to next epoch {to_training:.2f} s, "
            f"time lost {to_exit + to_training:.2f} s"
        )
    return gate.exit_status(
        gate.check("seconds lost to an interruption", to_exit + to_training, args.max_time_lost, above=False)
    )


if __name__ == "__main__":
    sys.exit(main())
