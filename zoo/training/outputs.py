"""Where a run writes on disk: its checkpoint folder and the `--output` folder with `model.keras`.

The checkpoints themselves (what they hold, when they are written, how a run restores one) are in
`zoo.faults`; a new file a run saves beside its model belongs here.
"""

import json
import os
import typing

from zoo.errors import ZooError


def checkpoint_root(config: typing.Any) -> str:
    """The folder that holds one checkpoint folder per run (`--checkpoint-dir`)."""
    return os.path.abspath(config.checkpoint_dir or os.environ.get("ZOO_CHECKPOINT_DIR") or "zoo-checkpoints")


def check_writable(folder: str, option: str) -> None:
    """Create `folder` if needed.

    Raises:
        ZooError: naming `option` when the folder cannot be created or written to.
    """
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise ZooError(f"Cannot create the {option} folder {folder}: {error.strerror}. Choose another.") from None
    if not writable(folder):
        raise ZooError(f"The {option} folder {folder} is not writable. Choose another.")


def check_output(folder: str | None) -> None:
    """Check, before the first epoch, that `--output` can be saved: a folder, or one that can be made.

    Nothing is created: a run that fails leaves no empty folder behind.

    Raises:
        ZooError: when `folder` names an existing file, or sits under a file or an unwritable folder.
    """
    if not folder:
        return
    folder = os.path.abspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ZooError(
            f"`output={folder}` names an existing file; the model is saved into a folder (model.keras, "
            "run.json): name a new or existing folder instead."
        )
    parent = folder
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ZooError(f"Cannot create the `output` folder {folder}: {parent} is a file. Choose another folder.")
    if not writable(parent):
        raise ZooError(f"Cannot save into the `output` folder {folder}: {parent} is not writable. Choose another.")


def writable(folder: str) -> bool:
    """Whether a file can be created in `folder`, tried for real: `os.access` says yes to root
    even where the file system or an immutable folder says no."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def save(model: typing.Any, folder: str, info: dict[str, typing.Any]) -> None:
    """Save `model.keras` and `run.json` into `folder` (created if needed)."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise ZooError(f"Cannot create the `output` folder {folder}: {error.strerror}.") from None
    model.save(os.path.join(folder, "model.keras"))
    with open(os.path.join(folder, "run.json"), "w") as handle:
        json.dump(info, handle, indent=2)
