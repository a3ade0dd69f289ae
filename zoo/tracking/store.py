"""The tracking store: pointing MLflow at a URI, refusing one it cannot store runs in, checking that a
server answers, and creating a SQLite store safely when several processes start at once.

Anything about where runs are stored (a new scheme, a new check on a store) belongs here.
"""

import contextlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request

from zoo.errors import ZooError
from zoo.tracking import database
from zoo.tracking.lazy import mlflow

# URI schemes MLflow's tracking stores accept (a plain path is a file store).
TRACKING_SCHEMES = ("sqlite", "http", "https", "file", "postgresql", "mysql", "mssql", "databricks")


def configure(tracking_uri=None, repair=True):
    """Point MLflow at `tracking_uri` (default: MLflow's own resolution) and check a server answers.

    With `repair`, runs whose process died without ending them are ended KILLED on the way
    (`zoo.tracking.heartbeat`).

    Returns:
        The tracking URI in use.

    Raises:
        ZooError: within seconds when an HTTP tracking server does not answer, or a database
            server refuses the login or lacks the database (`database.check`).
    """
    # MLflow's defaults retry an unreachable server for minutes; fail fast and say so instead.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    # Checked before MLflow is pointed at it: a server that does not answer is not left configured.
    uri = tracking_uri or mlflow.get_tracking_uri()
    check_scheme(uri)
    if uri.startswith(("http://", "https://")):
        check_server(uri)
    elif uri.startswith("sqlite:///"):
        prepare_sqlite(uri)
    elif database.is_server_url(uri):
        database.prepare_mlflow_store(uri)
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    if repair:
        from zoo.tracking import heartbeat

        heartbeat.repair_in_passing(uri)
    return uri


def check_scheme(uri):
    """Refuse a tracking URI whose scheme MLflow cannot store runs in (ftp://, s3://), in one line.

    MLflow itself fails late, deep in its model registry, with an exception named after it.

    Raises:
        ZooError: listing the schemes that work.
    """
    scheme = urllib.parse.urlparse(uri).scheme.lower()
    # A one-letter scheme is a Windows drive (C:\\mlruns), which MLflow reads as a path.
    if len(scheme) > 1 and scheme.split("+")[0] not in TRACKING_SCHEMES:
        raise ZooError(
            f"The tracking URI {uri} has the scheme '{scheme}', where MLflow cannot store runs. "
            f"Use one of {', '.join(s + ':' for s in TRACKING_SCHEMES)} or a folder path "
            "(e.g. `tracking_uri=sqlite:///mlflow.db` or http://127.0.0.1:5000)."
        )


def prepare_sqlite(uri):
    """Create the SQLite store's schema under a file lock and switch it to WAL journaling.

    Several `zoo train` processes starting at once on a new store race to create its tables, and
    under the default rollback journal their writes collide as "database is locked" (the fixes
    MLflow's own tests needed). The lock serializes creation; WAL lets readers and a writer
    proceed together; MLflow already sets a busy timeout on every session.
    """
    import sqlite3

    from zoo import leftovers

    path = uri[len("sqlite:///") :]
    if not path or path == ":memory:":
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ZooError(f"The folder of the MLflow store {uri} does not exist. Create it or fix `tracking_uri`.")
    if not _writable(folder):
        # SQLite writes its journal beside the file even to read it; MLflow would fail deep inside.
        raise ZooError(
            f"The folder {folder} of the MLflow store {uri} is not writable (SQLite writes its lock and journal "
            "files there): make it writable, or choose another `tracking_uri`."
        )
    # Locked through the temporary folder: a `mlflow.db.lock` beside it would stay in the user's folder.
    with leftovers.file_lock(path):
        mlflow.MlflowClient(uri).search_experiments(max_results=1)
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")


def _writable(folder):
    """Whether a file can be created in `folder`, tried for real (`os.access` says yes to root)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def check_server(uri, timeout=3.0):
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            if response.status == 200:
                return
            reason = f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        reason = f"HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:  # a malformed URL too
        reason = str(getattr(error, "reason", error))
    if reason.startswith("HTTP "):
        raise ZooError(
            f"{uri} answered {reason} at /health, which an MLflow tracking server does not: check the "
            "host, port and path given to `tracking_uri` (e.g. http://127.0.0.1:5000)."
        )
    raise ZooError(
        f"Cannot reach the MLflow tracking server at {uri} ({reason}). Start it (mlflow server --host "
        f"127.0.0.1 --port 5000) or drop `tracking_uri` to log to the local store sqlite:///mlflow.db."
    )
