"""An MLflow tracking server for the tests and benchmarks: start it, wait for `/health`, stop it.

`started(store, folder)` runs `zoo server` (`mlflow server` with the zoo's checks and store
preparation) on `store`, artifacts proxied into `folder`/artifacts, with one worker and no job
runner: the same server, lighter on a 2-core machine. The process starts at once and
`Server.wait()` blocks until it answers, so that a caller can do other work while it comes up
(10-30 s). On leaving, SIGTERM goes to its whole process group (uvicorn forks workers), then
SIGKILL if it has not ended.
"""

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

START_TIMEOUT = 180


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclasses.dataclass
class Server:
    """A started server: its `url`, its backend `store`, the folder of its `artifacts`, its process
    and its `log` file."""

    url: str
    store: str
    artifacts: str
    process: subprocess.Popen
    log: str

    def wait(self, timeout=START_TIMEOUT):
        """Block until `/health` answers 200; return the URL.

        Raises:
            RuntimeError: when the server exits or does not answer within `timeout` seconds (with
                the end of its log).
        """
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self.url
            if self.process.poll() is not None or time.monotonic() > deadline:
                with open(self.log) as handle:
                    tail = handle.read()[-3000:]
                state = f"exited {self.process.returncode}" if self.process.poll() is not None else "no answer"
                raise RuntimeError(f"the MLflow server did not answer /health within {timeout} s ({state}):\n{tail}")
            time.sleep(0.25)


@contextlib.contextmanager
def started(store, folder, *, env=None, name="server"):
    """`zoo server` on `store` (a SQLite or PostgreSQL URL), its files in `folder`; yields a `Server`.

    Args:
        store: the backend store URI.
        folder: where the artifacts (`folder`/artifacts-NAME) and the log (`folder`/NAME.log) go.
        env: the server's environment (default: this process').
        name: tells apart several servers in one folder.
    """
    folder = os.fspath(folder)
    port = free_port()
    artifacts, log_path = os.path.join(folder, f"artifacts-{name}"), os.path.join(folder, f"{name}.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "zoo", "server", "--backend-store-uri", store, "--port", str(port)]
            + ["--artifacts-destination", artifacts, "--workers", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ if env is None else env, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
            cwd=folder,
            start_new_session=True,
        )
    try:
        yield Server(f"http://127.0.0.1:{port}", store, artifacts, process, log_path)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
