"""`zoo launch`: N identical `zoo` processes on this machine that train one model together (JAX).

    zoo launch --processes 2 -- train mlp --epochs 2
    zoo launch --processes 2 -- train --resume RUN_ID   (a run that failed or was stopped)

Each process gets Keras' own variables (`KERAS_DISTRIBUTION_JOB_ADDRESSES`, a free port on
127.0.0.1; `KERAS_DISTRIBUTION_NUM_PROCESSES`; `KERAS_DISTRIBUTION_PROCESS_ID`) and KERAS_BACKEND=jax,
exactly what a cluster sets for the same command (README: More than one machine). Process 0's
output is shown; the others' is kept and shown when they fail. Ctrl-C and SIGTERM go to every
process. When one process ends with an error or a signal, the others are sent SIGTERM, then SIGKILL
after `--grace` seconds (a process waiting in a collective for a dead peer never returns on its
own), and the launcher exits with the first failure's status.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from zoo.errors import ZooError
from zoo.training import processes

# How often the launcher looks at its processes.
_POLL_SECONDS = 0.2


def add_parser(commands):
    launch = commands.add_parser(
        "launch",
        help="train over several processes on this machine (JAX's keras.distribution)",
        description=__doc__.split("\n\n")[0] + " " + " ".join(__doc__.split("\n\n")[2:]).replace("\n", " "),
    )
    launch.add_argument("--processes", type=int, default=2, help="how many processes (default: 2)")
    launch.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="seconds the others get to end after one process fails, before SIGKILL (default: 10)",
    )
    launch.add_argument("command", nargs="...", help="the zoo command each process runs, after `--`: train RECIPE ...")
    launch.set_defaults(handler=run, loads_tensorflow=False)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(args) -> int:
    """Start the processes, wait for them, return the exit status (0 only when all succeeded)."""
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command or command[0] != "train":
        raise ZooError("zoo launch runs a training: zoo launch --processes 2 -- train RECIPE [OPTIONS].")
    if args.processes < 1:
        raise ZooError(f"--processes must be at least 1. Received: {args.processes}")
    address = f"127.0.0.1:{free_port()}"
    children: list[subprocess.Popen] = []
    logs = []
    for index in range(args.processes):
        env = {
            **os.environ,
            "KERAS_BACKEND": "jax",
            processes.ADDRESSES: address,
            processes.COUNT: str(args.processes),
            processes.INDEX: str(index),
        }
        log = None if index == 0 else tempfile.TemporaryFile()
        logs.append(log)
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "zoo", *command],
                env=env,
                stdout=None if index == 0 else subprocess.DEVNULL,
                stderr=None if index == 0 else log,
            )
        )
    received: list[int] = []

    def forward(signum, _frame):
        received.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = _wait(children, args.grace, received)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for index, (child, log) in enumerate(zip(children, logs)):
        if log is not None and child.returncode not in (0, None):
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
            for line in tail:
                print(f"[process {index}] {line}", file=sys.stderr)
        if log is not None:
            log.close()
    return status


def _wait(children: list[subprocess.Popen], grace: float, received: list[int]) -> int:
    first_failure = None
    deadline = None
    while True:
        codes = [child.poll() for child in children]
        if all(code is not None for code in codes):
            break
        for index, code in enumerate(codes):
            if code not in (0, None) and first_failure is None:
                first_failure = (index, code)
                print(
                    f"zoo: launch: process {index} ended with {_describe(code)}; stopping the others "
                    f"(SIGKILL after {grace:g} s)",
                    file=sys.stderr,
                )
                for other in children:
                    if other.poll() is None:
                        other.send_signal(signal.SIGTERM)
        if (first_failure is not None or received) and deadline is None:
            deadline = time.monotonic() + grace
        if deadline is not None and time.monotonic() > deadline:
            for child in children:
                if child.poll() is None:
                    child.kill()
        time.sleep(_POLL_SECONDS)
    if first_failure is None:
        failed = [(i, c) for i, c in enumerate(codes) if c is not None and c != 0]
        first_failure = failed[0] if failed else None
    if first_failure is None:
        return 0
    code = first_failure[1]
    # A signal's death is -N from Popen; a shell reports it as 128 + N.
    return code if code > 0 else 128 - code


def _describe(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
