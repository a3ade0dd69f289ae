"""`zoo serve`'s terminal: the model server runs as a child whose start-up chatter is filtered, and a
line says when it answers.

`mlflow models serve` prints MLflow's INFO lines, uvicorn's start-up lines, artifact-download
progress bars, and each worker loads TensorFlow (CUDA and oneDNN lines). What a user can act on
(a warning, an error, a traceback) is passed on to stderr; the rest is dropped, and
`zoo: ready: ...` is printed once `/health` answers. Ctrl-C or SIGTERM stops the whole server.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

# Lines that only narrate the start (uvicorn, MLflow's INFO, TensorFlow's native INFO, progress bars).
_CHATTER = re.compile(
    r"^(INFO[: ]|\d{4}/\d\d/\d\d \d\d:\d\d:\d\d INFO |I\d{4} |WARNING: All log messages before absl|"
    r"To enable the following instructions|Downloading artifacts|\s*$)"
)


def quiet_env(env):
    """The server's environment without progress bars and INFO logging."""
    env = dict(env)
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    env.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
    return env


def run(command, env, health_url, ready_message, timeout=600):
    """Run the server `command` until it ends or the user stops it; return its exit status."""
    process = subprocess.Popen(
        command,
        env=quiet_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    relay = threading.Thread(target=_relay, args=(process,), daemon=True)
    relay.start()

    def stop(signum, frame):
        del frame
        with _suppress():
            os.killpg(process.pid, signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if _healthy(health_url):
                print(ready_message, flush=True)
                break
            if time.monotonic() > deadline:
                print(f"zoo: the server did not answer {health_url} within {timeout} s", file=sys.stderr)
                break
            time.sleep(0.25)
        return process.wait()
    except KeyboardInterrupt:
        with _suppress():
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        print("zoo: server stopped", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        relay.join(timeout=2)


def _relay(process):
    assert process.stdout is not None
    for line in process.stdout:
        if not _CHATTER.match(line):
            sys.stderr.write(line)
            sys.stderr.flush()


def _healthy(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        return kind is not None and issubclass(kind, ProcessLookupError)
