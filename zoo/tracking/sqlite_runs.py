"""Finished runs read straight from a local SQLite store, for `zoo compare` in about a second.

MLflow's client spends about 3 s of CPU importing itself (pandas, SQLAlchemy's ORM models,
alembic, the GenAI modules) and checking the schema before the first query: more than the whole
of `zoo compare` may take. A local SQLite store is a file that Python's own `sqlite3` reads in
milliseconds, through the tables MLflow has kept for years (`experiments`, `runs`, `tags`,
`params`, `latest_metrics`). The file is opened read-only, and only what `search_runs` would
answer is returned: the active runs of one experiment with a given status, newest first.

Anything this reader is not sure of answers None, and the caller uses MLflow's client as
before: another kind of store, a missing file, a schema it cannot read, an experiment name that
is not exactly one experiment, or a RUNNING run anywhere in the store (which may be a lost run
that the client's path ends KILLED, `zoo.tracking.heartbeat`).
"""

import contextlib
import os
import types

MAX_RUNS = 1000


def store_path(tracking_uri):
    """The file of a local SQLite tracking URI (None: MLflow's default, `sqlite:///mlflow.db`), or None."""
    if tracking_uri is None:
        # MLflow's default; it falls back to an existing ./mlruns folder instead.
        return None if os.path.isdir("mlruns") else "mlflow.db"
    if not tracking_uri.startswith("sqlite:///"):
        return None
    path = tracking_uri[len("sqlite:///") :]
    return None if not path or path == ":memory:" or "?" in path else path


def finished_runs(tracking_uri, experiment, recipe=None, status="FINISHED"):
    """The runs of `experiment` with `status` (and tag `zoo.recipe` = `recipe`), newest first, or None.

    Each run has what `zoo compare` reads of an MLflow `Run`: `info.run_id`, `info.run_name`,
    `info.start_time`, `info.end_time`, `info.status`, and `data.metrics` (latest values, NaN
    where one was logged), `data.params` and `data.tags`, as dicts.

    Returns:
        The runs (a list, maybe empty), or None where MLflow's client must answer instead.
    """
    import sqlite3

    path = store_path(tracking_uri)
    if path is None or not os.path.isfile(path):
        return None
    try:
        # Read-only: a reader never creates, migrates or locks the store for writing.
        uri = "file:" + os.path.abspath(path).replace("?", "%3F").replace("#", "%23") + "?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as connection:
            return _read(connection, experiment, recipe, status)
    except sqlite3.Error:
        return None


def _read(connection, experiment, recipe, status):
    if connection.execute("SELECT 1 FROM runs WHERE status = 'RUNNING' LIMIT 1").fetchone():
        return None
    ids = connection.execute("SELECT experiment_id FROM experiments WHERE name = ?", (experiment,)).fetchall()
    if len(ids) != 1:
        return None
    query = (
        "SELECT run_uuid, name, status, start_time, end_time FROM runs "
        "WHERE experiment_id = ? AND status = ? AND lifecycle_stage = 'active'"
    )
    arguments = [ids[0][0], status]
    if recipe is not None:
        query += " AND run_uuid IN (SELECT run_uuid FROM tags WHERE key = 'zoo.recipe' AND value = ?)"
        arguments.append(recipe)
    # MLflow's own order for search_runs: newest first, then by id.
    query += " ORDER BY start_time DESC, run_uuid ASC LIMIT ?"
    arguments.append(MAX_RUNS)
    rows = connection.execute(query, arguments).fetchall()
    runs = {}
    for run_id, name, run_status, start, end in rows:
        info = types.SimpleNamespace(run_id=run_id, run_name=name, status=run_status, start_time=start, end_time=end)
        data = types.SimpleNamespace(metrics={}, params={}, tags={})
        runs[run_id] = types.SimpleNamespace(info=info, data=data)
    if not runs:
        return []
    marks = ",".join("?" * len(runs))
    ids = list(runs)
    for key, value, is_nan, run_id in connection.execute(
        f"SELECT key, value, is_nan, run_uuid FROM latest_metrics WHERE run_uuid IN ({marks})", ids
    ):
        runs[run_id].data.metrics[key] = float("nan") if is_nan else float(value)
    for key, value, run_id in connection.execute(
        f"SELECT key, value, run_uuid FROM params WHERE run_uuid IN ({marks})", ids
    ):
        runs[run_id].data.params[key] = value
    for key, value, run_id in connection.execute(
        f"SELECT key, value, run_uuid FROM tags WHERE run_uuid IN ({marks})", ids
    ):
        runs[run_id].data.tags[key] = value
    return list(runs.values())
