"""A database server behind a shared store: PostgreSQL (or MySQL) for MLflow runs and Optuna studies.

What SQLite needs on one machine (a lock file around the schema's creation, WAL journaling), a
server does differently: it takes concurrent writers itself (row locks, MVCC), and the processes
that must not interleave (two first uses creating the schema, two `zoo tune` workers creating the
study's parent run) take a PostgreSQL advisory lock on the database instead of a lock file, which
works across machines. Before any of that, one short connection says in one line what is wrong
with the URL (wrong password, missing database, no server, no driver), where MLflow and Optuna
would retry for about two minutes and end in a SQLAlchemy traceback.
"""

import contextlib
import re
import urllib.parse
import zlib

from zoo.errors import ZooError

# SQLAlchemy URL schemes of database servers (a `+driver` suffix may follow: postgresql+psycopg2).
SERVER_SCHEMES = ("postgresql", "mysql", "mssql")
# Seconds one connection attempt may take before the server is called unreachable.
CONNECT_TIMEOUT = 5
# The Python package each scheme's default SQLAlchemy driver imports, and how to install it.
_DRIVER_HINT = {
    "postgresql": "pip install 'keras-technique-zoo[team]' (psycopg, SQLAlchemy's PostgreSQL driver)",
    "mysql": "pip install mysqlclient (or name another driver: mysql+pymysql://...)",
    "mssql": "pip install pyodbc",
}


def is_server_url(url):
    """Whether `url` names a database server (postgresql://, mysql://, ...), not a file or HTTP."""
    return _family(url) in SERVER_SCHEMES


def safe_url(url):
    """`url` with its password replaced by ***, for messages and tags."""
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", str(url))


def _family(url):
    return urllib.parse.urlparse(str(url)).scheme.lower().split("+")[0]


def _engine(url):
    import sqlalchemy

    family = _family(url)
    connect_args = {"connect_timeout": CONNECT_TIMEOUT} if family in ("postgresql", "mysql") else {}
    try:
        return sqlalchemy.create_engine(url, connect_args=connect_args, poolclass=sqlalchemy.pool.NullPool)
    except ModuleNotFoundError as error:
        raise ZooError(
            f"The database driver for {safe_url(url)} is not installed (no module '{error.name}'): "
            f"{_DRIVER_HINT.get(family, 'install the SQLAlchemy driver the URL names')}."
        ) from None
    except Exception as error:  # noqa: BLE001 - a malformed URL: SQLAlchemy's ArgumentError and others
        raise ZooError(f"Malformed database URL {safe_url(url)}: {_first_line(error)}.") from None


def check(url, what="database"):
    """Connect once to the database server of `url`; say in one line what is wrong, if anything.

    Args:
        url: a SQLAlchemy URL of a database server (postgresql://user:password@host:port/db).
        what: what the URL is for, in the message ("MLflow store", "study storage").

    Raises:
        ZooError: for a wrong password or user, a database that does not exist, a server that does
            not answer within `CONNECT_TIMEOUT` seconds, or a missing driver.
    """
    engine = _engine(url)
    try:
        with engine.connect():
            return
    except Exception as error:  # noqa: BLE001 - drivers raise their own classes; the text says what failed
        raise ZooError(_explain(url, what, error)) from None
    finally:
        engine.dispose()


def _explain(url, what, error):
    text = str(getattr(error, "orig", None) or error)
    parts = urllib.parse.urlparse(url)
    database = parts.path.lstrip("/") or "(none)"
    user = urllib.parse.unquote(parts.username or "") or "(default)"
    where = f"{parts.hostname or 'localhost'}:{parts.port or 'default port'}"
    shown = safe_url(url)
    if re.search(r"database \S+ does not exist|Unknown database", text):
        return (
            f"The {what} {shown}: database '{database}' does not exist on {where}. Create it "
            f"(createdb -h {parts.hostname or 'localhost'} -U {user} {database}) or fix the URL."
        )
    if re.search(r"password authentication failed|Access denied|no password supplied|role \S+ does not exist", text):
        return (
            f"The {what} {shown}: the server refused the login of user '{user}' (wrong user or password). "
            "Fix the user and password in the URL (or in ~/.pgpass)."
        )
    if re.search(r"Connection refused|could not connect|timeout expired|Can't connect|Name or service", text):
        return f"The {what} {shown}: no database server answers on {where}. Start it, or fix the host and port."
    return f"The {what} {shown} cannot be opened: {_first_line(error)[:300]}"


def _first_line(error):
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def advisory_lock(url, name):
    """Hold a PostgreSQL advisory lock named `name` on the database of `url` for the block.

    The server equivalent of a lock file: it serializes processes on any machine that reach the
    database, and ends with the connection if a process dies. Other servers (MySQL, SQL Server)
    are not locked: nothing here has run against them.
    """
    if _family(url) != "postgresql":
        yield
        return
    import sqlalchemy

    key = zlib.crc32(name.encode())  # fits pg_advisory_lock's bigint
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
    finally:
        engine.dispose()


def prepare_mlflow_store(url):
    """Check the login, then create or upgrade MLflow's tables under an advisory lock.

    Several `zoo train` processes (or a `zoo server` and a client) that first use a new database at
    once would otherwise run MLflow's schema creation together and collide on its tables.
    """
    from zoo.tracking.lazy import mlflow

    check(url, "MLflow store")
    with advisory_lock(url, "zoo: MLflow schema"):
        mlflow.MlflowClient(url).search_experiments(max_results=1)
