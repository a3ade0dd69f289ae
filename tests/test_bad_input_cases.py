"""Bad input a new user gives and faults a machine has, each ending in one line or a documented result.

Most checks stop before training (the check runs before the first epoch, which is what they
assert); one run of one epoch shows that columns a model cannot learn from, and test rows holding
categories training never saw, no longer fail a run after its training.
"""

import contextlib
import os
import signal
import subprocess

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.conftest import running_runs
from zoo.errors import ZooError


def _one_line_error(run_cli, *argv):
    status, _, err = run_cli(*argv)
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("zoo: error: "), (status, err)
    assert "internal error" not in err
    return lines[0]


def _messy_table(path, rows=120, seed=0):
    """A learnable table with an empty column, an id column, and some empty targets."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    frame = pd.DataFrame(
        {
            "x": x,
            "empty": [np.nan] * rows,
            "name": [f"customer-{i:04d}" for i in range(rows)],
            "y": (x > 0).astype(float),
        }
    )
    frame.loc[frame.index[::7], "y"] = np.nan  # 18 of 120 rows
    frame.to_csv(path, index=False)
    return path


def test_empty_and_identifier_columns_are_left_out_and_empty_targets_counted(tmp_path):
    from zoo.datasets import tabular

    table = tabular.read_csv(_messy_table(tmp_path / "messy.csv"), "y")
    splits = tabular.prepare(table)
    assert splits.dropped == {
        "empty": "empty in every row",
        "name": "an identifier: 102 distinct texts in 102 rows",
    }
    assert list(splits.features) == ["x"] and splits.empty_targets == 18
    assert splits.num_train + len(splits.validation) + len(splits.test) == 102
    message = tabular.dropped_message("messy", splits.dropped)
    assert "--categorical name keeps it" in message and "--missing error refuses" in message

    # Named as categorical, the identifier is kept (its test rows then hold unseen categories).
    kept = tabular.prepare(table, categorical=("name",))
    assert "name" in kept.features and "name" not in kept.dropped
    # A few distinct texts are categories, not identifiers.
    cities = table.frame.assign(name=np.where(np.arange(120) % 2, "Oslo", "Lima"))
    assert "name" in tabular.prepare(tabular.Table(cities, "y", "cities", "cities")).features

    with pytest.raises(ZooError, match=r"Target column 'y' of messy is empty in 18 row\(s\), the first at row 2"):
        tabular.prepare(table, missing="error")
    # A file too large for memory is streamed: its empty targets are counted and refused alike.
    from zoo.datasets import streaming

    assert streaming.scan(str(tmp_path / "messy.csv"), "y", categorical=("name",)).empty_targets == 18
    with pytest.raises(ZooError, match=r"is empty in 18 row\(s\), the first at row 2"):
        streaming.scan(str(tmp_path / "messy.csv"), "y", missing="error")
    numbers = table.frame.dropna(subset=["y"]).drop(columns=["name"])
    with pytest.raises(ZooError, match=r"Column 'empty' of numbers has 102 empty cell\(s\)"):
        tabular.prepare(tabular.Table(numbers, "y", "numbers", "numbers"), missing="error")


def test_a_run_with_unusable_columns_and_unseen_test_categories_finishes(run_cli, tracking_uri, tmp_path):
    path = _messy_table(tmp_path / "messy.csv")
    # Kept as a category, the id column's test rows hold names training never saw: the logged
    # model's example request used them and the run failed after its training.
    argv = ["train", "mlp", "--data", path, "--target", "y", "--categorical", "name", "--epochs", "1"]
    status, out, err = run_cli(*argv, "--experiment", "messy")
    assert status == 0, err
    assert "left out column(s) of messy a model cannot learn from: 'empty' (empty in every row)" in err
    assert "left out 18 row(s) of messy whose target 'y' is empty; --missing error refuses them" in err
    run = mlflow.MlflowClient(tracking_uri).get_run(out.strip().splitlines()[-1].split()[1])
    assert run.info.status == "FINISHED"
    assert run.data.params["data.empty_target_rows"] == "18"
    assert run.data.params["data.dropped_columns.empty"] == "empty in every row"


def test_a_seed_numpy_cannot_take_is_refused(run_cli, tracking_uri):
    line = _one_line_error(run_cli, "train", "mlp", "--seed", str(2**32), "--experiment", "seed")
    assert "--seed must be between 0 and 4294967295" in line, line
    line = _one_line_error(run_cli, "train", "mlp", "--seed", "-1", "--experiment", "seed")
    assert "Received: -1" in line, line
    assert mlflow.MlflowClient(tracking_uri).get_experiment_by_name("seed") is None


def test_an_output_that_is_a_file_is_refused_before_training(run_cli, tracking_uri, tmp_path):
    taken = tmp_path / "model.txt"
    taken.write_text("keep me")
    line = _one_line_error(run_cli, "train", "mlp", "--output", taken, "--experiment", "output")
    assert "names an existing file" in line, line
    line = _one_line_error(run_cli, "train", "mlp", "--output", taken / "inside", "--experiment", "output")
    assert "is a file" in line, line
    assert taken.read_text() == "keep me"
    assert mlflow.MlflowClient(tracking_uri).get_experiment_by_name("output") is None


@contextlib.contextmanager
def _read_only(folder):
    """Make `folder` unwritable, for root too (immutable where chattr works, else mode 555)."""
    root = os.geteuid() == 0
    if root and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root where chattr +i is not available: no folder is read-only to root")
    if not root:
        folder.chmod(0o555)
    try:
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o755)


def test_a_store_in_a_read_only_folder_is_one_line(run_cli, tracking_uri, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    with _read_only(folder):
        line = _one_line_error(run_cli, "train", "mlp", "--tracking-uri", f"sqlite:///{folder}/mlflow.db")
        assert f"The folder {folder} of the MLflow store" in line and "is not writable" in line, line
        line = _one_line_error(run_cli, "train", "mlp", "--checkpoint-dir", folder / "checkpoints")
        assert "checkpoint" in line and str(folder) in line, line
        line = _one_line_error(run_cli, "train", "mlp", "--output", folder / "model")
        assert "is not writable" in line, line
    assert not running_runs(tracking_uri)


def test_a_text_file_named_npz_is_one_line_without_numpy_options(run_cli, tracking_uri, tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("x,y\n1,2\n")
    line = _one_line_error(run_cli, "train", "lstm", "--data", path)
    assert "is not a NumPy .npz file" in line and "np.savez" in line and "allow_pickle" not in line, line
    np.savez(path, x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    line = _one_line_error(run_cli, "train", "lstm", "--data", path)
    assert "holds Python objects" in line and "allow_pickle" not in line, line


def test_a_signal_while_a_run_fails_says_the_run_is_failed(tracking_uri):
    from zoo import faults, tracking

    # Under `zoo launch`, a process whose peer died fails, and the launcher's SIGTERM arrives while
    # it ends its run: the run is FAILED, and the line must not say KILLED.
    with faults.signals_as_exceptions(), pytest.raises(faults.Interrupted) as caught:
        with tracking.active_run("launch-signal", None, {}):
            with faults.critical_section():
                os.kill(os.getpid(), signal.SIGTERM)  # deferred to the end of the critical section
                raise RuntimeError("a peer process is gone")
    interruption = caught.value
    run = mlflow.MlflowClient(tracking_uri).get_run(interruption.run_id)
    assert run.info.status == "FAILED" and interruption.run_status == "FAILED"
    message = faults.interruption_message(interruption)
    assert "ending FAILED" in message and "KILLED" not in message, message
    assert run.data.tags["zoo.failure"] == "RuntimeError: a peer process is gone"
