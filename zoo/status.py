"""One status line per step of a long command, so that no wait over a second passes without a word.

`zoo train` prints, on stdout beside Keras' epoch lines, `zoo: loading data`, `zoo: building the
model`, `zoo: evaluating on the test split`, `zoo: logging the model`, ...; stderr stays for
warnings and the one-line error. The lines are printed by the CLI in a terminal (or anywhere with
ZOO_STATUS=1): a program that reads the output (`zoo export ... | ...`) gets what it got before,
and `zoo.train(...)` from Python stays as quiet as before.

This module imports nothing heavy: the first line of a command is printed before TensorFlow,
Keras or MLflow load.
"""

import os
import sys
import time

_enabled = False
_started = time.perf_counter()


def enable(on: bool = True) -> None:
    """Print status lines from now on (the CLI calls this once it has parsed the command)."""
    global _enabled
    _enabled = on


def enabled() -> bool:
    """On for the CLI in a terminal; ZOO_STATUS=1 turns the lines on anywhere (a pipe, a log file,
    `zoo.train` from Python), ZOO_STATUS=0 off. Output read by a program stays as it was."""
    setting = os.environ.get("ZOO_STATUS", "")
    if setting:
        return setting != "0"
    try:
        return _enabled and sys.stdout.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stdout
        return False


def step(message: str) -> None:
    """Print `zoo: MESSAGE` when status lines are on: what the command is doing now, in one line."""
    if enabled():
        print(f"zoo: {message}", flush=True)


def since_start() -> float:
    """Seconds since this module was imported (about the start of the process)."""
    return time.perf_counter() - _started
