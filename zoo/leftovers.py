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
    """Hold an exclusive `flock` on the file `path` itself (created empty if missing) while inside.

    A `path.lock` file beside it would stay in the user's folder; a lock on the database file
    itself leaves nothing. SQLite locks its files with POSIX record locks (`fcntl`), which on
    Linux are independent of `flock`, so this lock does not block SQLite's own; an empty file is
    a valid new SQLite database.
    """
    descriptor = os.open(os.path.abspath(path), os.O_RDWR | os.O_CREAT, 0o644)
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
