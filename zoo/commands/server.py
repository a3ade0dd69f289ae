"""`zoo server`: a team's MLflow tracking server, on a database server and a proxied artifact store.

    zoo server --backend-store-uri postgresql://zoo:PASSWORD@db.example:5432/mlflow \\
        --artifacts-destination /srv/mlflow/artifacts --host 0.0.0.0 --port 5000
    zoo train mlp --tracking-uri http://HOST:5000          (from any machine of the team)

It is `mlflow server` with what the zoo adds before it starts: the database URL checked in one
line (a wrong password or a missing database exits 2 at once, where MLflow retries for two
minutes and ends in a traceback), MLflow's tables created or upgraded under a lock (so that a
client's first run and the server's start do not both create them), the Default experiment
opened in the UI's model-training mode, a busy port refused, and artifacts served by the server
(`--artifacts-destination`, a folder or an object store URI), so clients need no access to them.
Options after `--` go to `mlflow server` unchanged (e.g. `-- --allowed-hosts mlflow.example`).
"""

import os
import socket
import sys
import urllib.parse

from zoo.errors import ZooError

DEFAULT_STORE = "sqlite:///mlflow.db"
DEFAULT_ARTIFACTS = "./mlartifacts"
# Idle connections stay open this long (uvicorn closes them after 5 s by default).
KEEP_ALIVE_SECONDS = 300


def add_parser(commands):
    server = commands.add_parser(
        "server",
        help="run a team's MLflow tracking server (PostgreSQL store, proxied artifacts)",
        description=" ".join(__doc__.split("\n\n")[2:]).replace("\n", " "),
    )
    server.add_argument(
        "--backend-store-uri",
        metavar="URL",
        help="where runs are stored: postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or a SQLite file "
        f"(default: MLFLOW_BACKEND_STORE_URI, else {DEFAULT_STORE})",
    )
    server.add_argument(
        "--artifacts-destination",
        metavar="URI",
        help=f"where the server keeps artifacts: a folder or s3://, gs://, ... (default: {DEFAULT_ARTIFACTS})",
    )
    server.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: every one)")
    server.add_argument("--port", type=int, default=5000)
    server.add_argument("--workers", type=int, help="server processes (default: MLflow's, 4)")
    server.add_argument("mlflow_options", nargs="...", help="after `--`: more `mlflow server` options")
    server.set_defaults(handler=run, loads_tensorflow=False)


def command_line(args):
    """The checked `mlflow server` command line (a list) for the parsed `args`.

    Raises:
        ZooError: for a store MLflow cannot serve, a database that refuses the login or does not
            exist, an artifact folder that cannot be made, or a busy port.
    """
    from zoo import tracking
    from zoo.tracking import database

    store = args.backend_store_uri or os.environ.get("MLFLOW_BACKEND_STORE_URI") or DEFAULT_STORE
    tracking.check_scheme(store)
    if store.startswith(("http://", "https://")):
        raise ZooError(
            f"--backend-store-uri {store} is a tracking server, not a store: give the database it should use "
            "(postgresql://USER:PASSWORD@HOST:PORT/DATABASE or sqlite:///mlflow.db)."
        )
    _check_port(args.host, args.port)
    if database.is_server_url(store):
        database.prepare_mlflow_store(store)
    elif store.startswith("sqlite:///"):
        tracking.prepare_sqlite(store)
    # The experiment the store made for itself opens in the UI's model-training mode, like the
    # experiments `zoo train` makes; MLflow would show it in its GenAI mode.
    previous = tracking.mlflow.get_tracking_uri()
    tracking.mlflow.set_tracking_uri(store)
    try:
        tracking.mark_training_experiment("0")
    finally:
        tracking.mlflow.set_tracking_uri(previous)
    artifacts = args.artifacts_destination or DEFAULT_ARTIFACTS
    if not urllib.parse.urlparse(artifacts).scheme or artifacts.startswith("file:"):
        folder = artifacts[len("file:") :] if artifacts.startswith("file:") else artifacts
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            raise ZooError(
                f"Cannot create the artifact folder {folder} ({error.strerror}): fix --artifacts-destination."
            ) from None
        artifacts = os.path.abspath(folder)
    mlflow_options = list(args.mlflow_options)
    if mlflow_options[:1] == ["--"]:
        mlflow_options = mlflow_options[1:]
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store]
    command += ["--artifacts-destination", artifacts, "--serve-artifacts"]
    command += ["--host", args.host, "--port", str(args.port)]
    if args.workers:
        command += ["--workers", str(args.workers)]
    if not any(option.endswith(("-opts", "--dev")) or "-opts=" in option for option in mlflow_options):
        # uvicorn closes an idle connection after 5 s: a client that reuses it at that moment (a
        # training that logs after an epoch of about 5 s) gets "Remote end closed connection", and
        # MLflow does not resend a write that may have reached the server (creating a logged model).
        command += ["--uvicorn-opts", f"--timeout-keep-alive {KEEP_ALIVE_SECONDS}"]
    return command + mlflow_options


def _check_port(host, port):
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ZooError(
                f"Cannot listen on {host}:{port} ({error.strerror}): another server uses it, or the host is not "
                "an address of this machine; choose another --port or --host."
            ) from None


def run(args):
    from zoo.tracking import database

    command = command_line(args)
    store = command[command.index("--backend-store-uri") + 1]
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
    print(
        f"MLflow tracking server for {database.safe_url(store)} on {url} (artifacts: "
        f"{command[command.index('--artifacts-destination') + 1]}); clients: zoo train RECIPE --tracking-uri "
        f"{url} (Ctrl-C stops it)",
        flush=True,
    )
    os.execv(sys.executable, command)
