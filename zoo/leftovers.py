"""Nothing left behind that a finished run does not need: no lock files beside the stores, no empty
`zoo-checkpoints/` folder, no `zoo.resume`/`zoo.checkpoint` tags pointing at a deleted checkpoint.
"""

import contextlib
import fcntl
import os
import typing

# Tags that only an interrupted run needs: how to resume it and where its checkpoint is.
RESUME_TAGS = ("zoo.resume", "zoo.checkpoint")


@contextlib.contextmanager
def file_lock(path: str) -> typing.Iterator[None]:
    """Hold an exclusive `flock` for the file `path` while inside, taken on a lock file of its own
    in the temporary folder (named from the absolute path), so nothing is left beside `path`.

    Not on the database file itself: SQLite holds POSIX record locks on it, and closing any other
    descriptor of that file in the same process drops them all (POSIX lock semantics), which
    SQLite then reports as "disk I/O error". Nor on its folder: two stores in one folder (MLflow's
    and Optuna's) are locked one inside the other.
    """
    import hashlib
    import tempfile

    folder = os.path.join(tempfile.gettempdir(), "zoo-locks")
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:32]
    descriptor = os.open(os.path.join(folder, name), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def tidy_finished_run(run_id: str, checkpoint: str, checkpoint_root: str) -> None:
    """After a run FINISHED and its checkpoint was removed: drop its resume tags and an empty root."""
    if os.path.exists(checkpoint):
        return  # kept (a multi-process run's own folder, a failed removal): the tags still point at it
    from zoo.tracking import mlflow

    client = mlflow.MlflowClient()
    with contextlib.suppress(Exception):  # tidying only: the run itself is complete
        tags = client.get_run(run_id).data.tags
        for tag in RESUME_TAGS:
            if tag in tags:
                client.delete_tag(run_id, tag)
    with contextlib.suppress(OSError):
        os.rmdir(checkpoint_root)  # only when empty: other runs' checkpoints stay
