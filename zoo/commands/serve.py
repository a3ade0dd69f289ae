"""`zoo serve MODEL`: serve a logged model over HTTP with `mlflow models serve`, on 127.0.0.1.

MODEL is an MLflow run id, a `runs:/RUN_ID/model` URI or a registered model
(`models:/NAME@champion`, `models:/NAME/3`). The server answers `POST /invocations` with JSON
and `GET /health`; what a request holds depends on the technique (`zoo serve` prints an example):

    zoo serve models:/zoo-mlp@champion --port 5001
    curl -s http://127.0.0.1:5001/invocations -H 'Content-Type: application/json' \\
        -d '{"dataframe_records": [{"gre": 380, "gpa": 3.61, "rank": 3}]}'
    {"predictions": [{"0": 0.71, "1": 0.29, "label": "0"}]}

The answer names its columns (a classifier: one probability per class and `label`; `zoo serve`
prints them); `"params": {"output": "array"}` in the body gives the model's array instead.

It runs `mlflow models serve --env-manager local` with this interpreter's scripts folder first on
PATH: MLflow starts `uvicorn` from PATH, which fails (exit 127) when the virtual environment is not
activated.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

from zoo.errors import ZooError


def add_parser(commands):
    parser = commands.add_parser(
        "serve",
        help="serve a logged model over HTTP (mlflow models serve) on 127.0.0.1",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("model", metavar="MODEL_URI", help="run id, runs:/RUN_ID/model or models:/NAME@ALIAS")
    parser.add_argument("--port", type=int, default=5001, help="port on 127.0.0.1 (default: 5001)")
    parser.add_argument("--workers", type=int, default=1, help="server processes, each with its own model (default: 1)")
    parser.add_argument(
        "--tracking-uri", help="MLflow store of the model (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)"
    )
    # The parent only reads the store and relays the server's lines: no TensorFlow in it.
    parser.set_defaults(handler=_serve, loads_tensorflow=False)


def model_uri(reference):
    """A run id becomes `runs:/ID/model`; URIs and paths pass through."""
    if re.fullmatch(r"[0-9a-f]{32}", reference):
        return f"runs:/{reference}/model"
    return reference


def check_model(uri, tracking_uri=None):
    """Return the MLflow `ModelInfo` of `uri`, or a `ZooError` when it names no loadable model."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from zoo import tracking

    store = "" if os.path.exists(uri) else tracking.configure(tracking_uri)
    try:
        return mlflow.models.get_model_info(uri)
    except (MlflowException, OSError) as error:
        where = f" in the MLflow store {store}" if store else ""
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        raise ZooError(
            f"No model at {uri}{where} ({first}). Pass a run id, runs:/RUN_ID/model or models:/NAME@ALIAS, "
            "and --tracking-uri for another store."
        ) from None


def check_port(port, host="127.0.0.1"):
    """Refuse a port another process listens on, naming that process: the server would fail to
    bind it after printing its address, and `mlflow models serve` then neither served nor exited.

    Raises:
        ZooError: naming the process that holds the port, where the system says.
    """
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: a port that a closed connection still waits on (TIME_WAIT) is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return
        except OSError as error:
            reason = error.strerror or str(error)
    raise ZooError(
        f"Port {port} on {host} is not free ({reason}{port_holder(port)}): stop that, or choose another --port."
    )


def port_holder(port):
    """', held by process PID (name: command line)' for the process that listens on `port`, or ''."""
    import psutil

    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN:
                if connection.pid is None:
                    return ", held by a process this user cannot see"
                process = psutil.Process(connection.pid)
                command = " ".join(process.cmdline())[:200] or process.name()
                return f", held by process {connection.pid} ({command})"
    except (psutil.Error, OSError):
        pass  # Listing sockets needs privileges on some systems: the port's state still says enough.
    return ""


def server_command(uri, port, workers=1):
    """The `mlflow models serve` command line and its environment (scripts folder first on PATH)."""
    import mlflow

    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager", "local"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    import sysconfig

    # The virtual environment's scripts, and the base interpreter's where the environment reuses
    # its packages (--system-site-packages: uvicorn's script is there, not in the venv).
    folders = [os.path.dirname(sys.executable), sysconfig.get_path("scripts")]
    folders.append(os.path.dirname(os.path.realpath(sys.executable)))
    scripts = os.pathsep.join(dict.fromkeys(folder for folder in folders if folder))
    env = dict(os.environ)
    env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
    env["MLFLOW_TRACKING_URI"] = mlflow.get_tracking_uri()
    import zoo

    # The model's loader is `zoo.serving`: the server must import this zoo. Its uvicorn may be the
    # base interpreter's (see above), where another checkout of the zoo can be installed.
    source = os.path.dirname(os.path.dirname(os.path.abspath(zoo.__file__)))
    if os.path.basename(source) not in ("site-packages", "dist-packages"):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    return command, env


def _serve(args):
    from zoo import serving

    if not 0 < args.port < 65536:
        raise ZooError(f"--port must be between 1 and 65535. Received: {args.port}")
    if args.workers < 1:
        raise ZooError(f"--workers must be at least 1. Received: {args.workers}")
    check_port(args.port)
    uri = model_uri(args.model)
    from zoo import status

    status.step(f"serve {uri}: reading the model from the store")
    # Reading the model's input example would draw MLflow's download progress bars.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    info = check_model(uri, args.tracking_uri)
    from zoo.training import baselines

    # A model whose run did not beat its trivial baseline is served all the same, with a warning.
    warning = baselines.loaded_model_warning(getattr(info, "run_id", None))
    if warning:
        print(warning, file=sys.stderr, flush=True)
    kind = (info.metadata or {}).get("zoo_serving")
    command, env = server_command(uri, args.port, args.workers)
    url = f"http://127.0.0.1:{args.port}/invocations"
    print(f"zoo: serving {uri} on {url}: starting the server (Ctrl-C stops it)", flush=True)
    # The model's own input example (logged with it), sent as printed; an older model without
    # one gets the example of its kind.
    body = serving.example_request(uri)
    note = "a request built from the model's input example" if body else "an example request of its kind"
    body = body or serving.REQUESTS.get(kind, '{"inputs": [...]}')
    print(f"{note}:\n  curl -s {url} -H 'Content-Type: application/json' -d '{body}'", flush=True)
    answer = serving.answer_layout(info.signature)
    if answer:
        print(answer, flush=True)
    from zoo import server_log

    ready = f"zoo: ready: {url} answers (GET /health, POST /invocations)"
    return server_log.run(command, env, f"http://127.0.0.1:{args.port}/health", ready)


# === For programs that run a server and talk to it (tests, benchmarks) ===


def wait_healthy(url, process, timeout=240, log_path=None):
    """Wait until `url`/health answers 200, or raise `RuntimeError` when `process` ends or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            tail = open(log_path).read()[-3000:] if log_path else ""
            raise RuntimeError(f"the model server at {url} did not answer /health within {timeout} s\n{tail}")
        time.sleep(0.25)


def stop(process, timeout=20):
    """SIGTERM the server's process group (uvicorn's workers too); SIGKILL what is left after `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
