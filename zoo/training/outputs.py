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
    if not os.access(folder, os.W_OK):
        raise ZooError(f"The {option} folder {folder} is not writable. Choose another.")


def save(model: typing.Any, folder: str, info: dict[str, typing.Any]) -> None:
    """Save `model.keras` and `run.json` into `folder` (created if needed)."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise ZooError(f"Cannot create the `output` folder {folder}: {error.strerror}.") from None
    model.save(os.path.join(folder, "model.keras"))
    with open(os.path.join(folder, "run.json"), "w") as handle:
        json.dump(info, handle, indent=2)
