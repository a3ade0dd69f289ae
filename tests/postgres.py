"""A throwaway PostgreSQL cluster for the tests that need a database server (`postgres` fixture).

`initdb` makes a cluster in a new temporary folder, `pg_ctl start` serves it on a free port of
127.0.0.1 (password login, no Unix socket in a shared folder), and the session stops it and deletes
the folder at its end. As root (CI, these machines), `initdb` refuses to run: the cluster belongs
to the `postgres` user, in a folder it owns under a parent it can traverse, and the password file
is a real file chowned to it (runuser cannot read root's pipe on /dev/stdin).

Where the server binaries or the Python driver are missing, the tests that use the fixture are
skipped with the reason; `.ci/system-packages.sh` installs Debian's `postgresql` so CI runs them,
and `.ci/run` sets ZOO_TESTS_REQUIRE_POSTGRES=1, which turns that skip into a failure (CI must not
pass with the PostgreSQL tests silently skipped).
"""

import contextlib
import dataclasses
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import urllib.parse

import pytest

USER = "zoo"
# Set (to anything but "" or "0"): a missing PostgreSQL fails the tests that need it instead of skipping them.
REQUIRE = "ZOO_TESTS_REQUIRE_POSTGRES"
PASSWORD = "zoo-test-password"


@dataclasses.dataclass
class Postgres:
    """A running cluster: `url(database)` gives a SQLAlchemy URL, `create(database)` makes a database."""

    host: str
    port: int
    bindir: str
    folder: str

    def url(self, database="postgres", password=PASSWORD, user=USER):
        return f"postgresql://{user}:{urllib.parse.quote(password)}@{self.host}:{self.port}/{database}"

    def create(self, database):
        """A new empty database; returns its URL."""
        subprocess.run(
            [os.path.join(self.bindir, "createdb"), "-h", self.host, "-p", str(self.port), "-U", USER, database],
            env=dict(os.environ, PGPASSWORD=PASSWORD),
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self.url(database)


def find_bindir():
    """The folder of `initdb` and `pg_ctl`: `pg_config --bindir`, else Debian's versioned folders."""
    candidates = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        candidates.append(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and all(os.access(os.path.join(folder, tool), os.X_OK) for tool in ("initdb", "pg_ctl", "createdb")):
            return folder
    return None


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unavailable():
    """Why no cluster can start here (missing binaries or driver), or None."""
    if find_bindir() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's `postgresql` package "
            "(.ci/system-packages.sh does) to run the PostgreSQL tests"
        )
    try:
        import psycopg  # noqa: F401 - SQLAlchemy's default driver for postgresql:// URLs
    except ImportError:
        return "no PostgreSQL driver: pip install -e '.[team]' (psycopg) to run the PostgreSQL tests"
    return None


def required():
    """Whether this run must have PostgreSQL (CI): ZOO_TESTS_REQUIRE_POSTGRES is set."""
    return os.environ.get(REQUIRE, "") not in ("", "0")


@contextlib.contextmanager
def cluster():
    """Start a throwaway cluster on a free port of 127.0.0.1; stop it and delete its folder after.

    Raises:
        RuntimeError: when `initdb` or `pg_ctl start` fails (with their output).
    """
    bindir = find_bindir()
    folder = tempfile.mkdtemp(prefix="zoo-postgres-")
    as_root = os.geteuid() == 0
    owner = pwd.getpwnam("postgres") if as_root else None
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    # The cluster, its log and its socket live in a folder the server's user owns.
    os.chmod(folder, 0o755)
    home = os.path.join(folder, "cluster")
    os.mkdir(home, 0o700)
    password_file = os.path.join(folder, "password")
    with open(password_file, "w") as handle:
        handle.write(PASSWORD + "\n")
    if owner:
        os.chown(home, owner.pw_uid, owner.pw_gid)
        os.chown(password_file, owner.pw_uid, owner.pw_gid)
    data, log = os.path.join(home, "data"), os.path.join(home, "server.log")
    port = _free_port()

    def run(*argv, timeout=120):
        return subprocess.run([*run_as, *argv], capture_output=True, text=True, timeout=timeout, cwd=folder)

    ctl = os.path.join(bindir, "pg_ctl")
    started = False
    try:
        init = run(
            os.path.join(bindir, "initdb"),
            "-D",
            data,
            "-U",
            USER,
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",  # a throwaway cluster: no fsync of its files
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}): {(init.stderr or init.stdout).strip()[-2000:]}")
        # fsync off: the cluster dies with the session, and it makes writes cheap on a busy machine.
        options = f"-h 127.0.0.1 -p {port} -k {home} -c fsync=off -c max_connections=200"
        start = run(ctl, "-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start")
        started = start.returncode == 0
        if not started:
            with contextlib.suppress(OSError):
                start.stdout += open(log).read()
            raise RuntimeError(
                f"pg_ctl start failed ({start.returncode}): {(start.stderr + start.stdout).strip()[-2000:]}"
            )
        yield Postgres("127.0.0.1", port, bindir, folder)
    finally:
        if started:
            run(ctl, "-D", data, "-m", "fast", "-w", "stop", timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the session on 127.0.0.1 (user `zoo`, password `PASSWORD`)."""
    reason = unavailable()
    if reason and required():
        pytest.fail(f"{REQUIRE} is set: {reason}")
    if reason:
        pytest.skip(reason)
    with cluster() as server:
        yield server
