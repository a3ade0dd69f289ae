"""Benchmark: how long each `zoo` command leaves the terminal silent, and how long the quick ones take.

Each command runs as a user types it, in a fresh process in a scratch folder (its own SQLite
store, filled first by one `zoo train mlp --epochs 1`), with stdout and stderr read as they come.
For each: seconds from the start of the process to its first line, and to its end.

Targets (issue 34): first line under 1 s for every command; `zoo list`, `zoo info` and
`zoo compare` finished under 2 s. On a machine that other jobs share the figures grow with the
load: the load average is printed beside them, and `--rounds` takes the median of several runs.

    python benchmarks/first_line.py
    python benchmarks/first_line.py --rounds 3 --json first_line.json
    python benchmarks/first_line.py --quick       # list, info, compare and train only
"""

import argparse
import json
import os
import re
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import gate

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIRST_LINE_TARGET = 1.0
QUICK_TARGET = 2.0
QUICK = ("list", "info", "compare")


def run(argv, folder, env, until=None, timeout=900):
    """(seconds to the first line, seconds to the end, CPU seconds) of `zoo ARGV`; `until`: stop at a
    line matching it. The CPU seconds (the process and its children) are about what the command
    takes on a quiet machine, where the wall-clock figures of a loaded one are not."""
    import resource

    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", *argv],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    first, lines = None, []
    selector = selectors.DefaultSelector()
    assert process.stdout is not None
    selector.register(process.stdout, selectors.EVENT_READ)
    try:
        while time.perf_counter() - started < timeout:
            if not selector.select(timeout=1):
                continue
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            first = first if first is not None else time.perf_counter() - started
            if until and re.search(until, line):
                break
        else:
            raise RuntimeError(f"zoo {' '.join(argv)} ran past {timeout} s")
    finally:
        if process.poll() is None and until:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    if until is None and process.returncode != 0:
        raise RuntimeError(f"zoo {' '.join(argv)} exited {process.returncode}:\n{''.join(lines)[-2000:]}")
    ended = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return first, ended, "".join(lines), cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="runs of each command; the median is kept")
    parser.add_argument("--quick", action="store_true", help="list, info, compare and train only")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="zoo-first-line-") as folder:
        # ZOO_STATUS=1: the status lines a terminal gets (the output is a pipe here).
        env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{folder}/mlflow.db", PYTHONPATH=REPO, ZOO_STATUS="1")
        for name in ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_LOGGING_LEVEL"):
            env.pop(name, None)
        out = run(["train", "mlp", "--epochs", "1"], folder, env)[2]
        run_id = re.search(r"run ([0-9a-f]{32}) finished", out).group(1)
        commands = {
            "list": ["list"],
            "info": ["info", "cnn"],
            "compare": ["compare"],
            "train": ["train", "mlp", "--epochs", "1"],
        }
        if not args.quick:
            commands.update(
                {
                    "tune": ["tune", "mlp", "--trials", "1", "--epochs", "1"],
                    "export": ["export", run_id, "--format", "tf_saved_model", "--out", f"{folder}/exported"],
                    "predict-help": ["predict", "--help"],
                    "serve": ["serve", run_id, "--port", str(_free_port())],
                }
            )
        figures = {}
        for name, command in commands.items():
            samples = []
            for _ in range(args.rounds):
                if name == "export":
                    subprocess.run(["rm", "-rf", f"{folder}/exported"], check=True)
                if name == "serve":
                    command[-1] = str(_free_port())
                until = r"zoo: ready" if name == "serve" else None
                first, end, _, cpu = run(command, folder, env, until=until)
                samples.append((first, end, cpu))
            first = statistics.median(s[0] for s in samples)
            end = statistics.median(s[1] for s in samples)
            cpu = statistics.median(s[2] for s in samples)
            figures[name] = {"first_line_s": round(first, 2), "finished_s": round(end, 2), "cpu_s": round(cpu, 2)}
            label = "ready" if name == "serve" else "finished"
            print(
                f"zoo {' '.join(command)[:44]:<44} first line {first:5.2f} s  {label} {end:6.2f} s  (CPU {cpu:6.2f} s)",
                flush=True,
            )
    load = os.getloadavg()[0]
    print(f"load average (1 min) while measuring: {load:.1f} on {os.cpu_count()} cores")
    verdicts = [
        gate.check(f"{name} first line (s)", f["first_line_s"], FIRST_LINE_TARGET, above=False)
        for name, f in figures.items()
    ]
    verdicts += [
        gate.check(f"{name} finished (s)", figures[name]["finished_s"], QUICK_TARGET, above=False) for name in QUICK
    ]
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"figures": figures, "load_average": load, "cpus": os.cpu_count()}, handle, indent=2)
    return gate.exit_status(*verdicts)


def _free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
