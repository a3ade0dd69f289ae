"""Bad numbers never train silently: infinite values, empty cells, doubled headers, bad store URIs."""

import mlflow
import numpy as np
import pandas as pd

from tests.conftest import running_runs


def _one_line_error(run_cli, *argv):
    status, _, err = run_cli(*argv)
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("zoo: error: "), (status, err)
    return lines[0]


def _no_run_in(uri, experiment):
    return mlflow.MlflowClient(uri).get_experiment_by_name(experiment) is None


def test_an_infinite_number_in_a_csv_stops_before_any_run(run_cli, tracking_uri, tmp_path, admissions_csv):
    frame = pd.read_csv(admissions_csv)
    frame = frame.astype({"gpa": object, "gre": object})
    frame.loc[frame.index[6::7], "gpa"] = "inf"  # every 7th row, the first at row 8 of the file
    frame.loc[frame.index[9], "gre"] = "-inf"
    path = tmp_path / "overflow.csv"
    frame.to_csv(path, index=False)
    line = _one_line_error(run_cli, "train", "mlp", "--data", path, "--target", "admit", "--experiment", "inf")
    assert "Column 'gre'" in line and "-inf at row 11" in line, line
    frame.loc[frame.index[9], "gre"] = 500
    frame.to_csv(path, index=False)
    line = _one_line_error(run_cli, "train", "mlp", "--data", path, "--target", "admit", "--experiment", "inf")
    assert "Column 'gpa'" in line and "inf at row 8" in line and "(57 such cell(s))" in line, line
    assert _no_run_in(tracking_uri, "inf")


def test_a_float32_overflow_is_refused_too(run_cli, tracking_uri, tmp_path):
    path = tmp_path / "huge.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3e39, 4.0] * 5, "y": [0, 1] * 10}).to_csv(path, index=False)
    line = _one_line_error(run_cli, "train", "mlp", "--data", path, "--target", "y", "--experiment", "huge")
    assert "Column 'x'" in line and "3e+39 at row 4" in line, line
    assert _no_run_in(tracking_uri, "huge")


def test_empty_cells_are_filled_said_and_counted_or_refused(run_cli, tracking_uri, tmp_path, admissions_csv):
    frame = pd.read_csv(admissions_csv)
    frame.loc[[3, 50, 51], "gpa"] = np.nan
    frame.loc[[7], "gre"] = np.nan
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    argv = ["train", "mlp", "--data", path, "--target", "admit", "--epochs", "1", "--experiment", "holes"]
    status, out, err = run_cli(*argv)
    assert status == 0, err
    # One epoch need not beat the majority class: that warning may follow (zoo.training.baselines).
    lines = [line for line in err.strip().splitlines() if "did not beat the trivial baseline" not in line]
    assert lines == [
        "zoo: 4 empty cell(s) of holes filled with the training mean (gre 1, gpa 3); "
        "--missing error refuses them instead."
    ]
    run = mlflow.MlflowClient(tracking_uri).get_run(out.strip().splitlines()[-1].split()[1])
    assert run.data.params["data.missing_filled.gpa"] == "3" and run.data.params["data.missing_filled.gre"] == "1"

    line = _one_line_error(run_cli, *argv, "--missing", "error", "--experiment", "holes-refused")
    assert "Column 'gre'" in line and "1 empty cell(s), the first at row 9" in line, line
    assert _no_run_in(tracking_uri, "holes-refused")


def test_a_column_named_twice_is_an_error(run_cli, tracking_uri, tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("admit,gre,gpa, gpa\n" + "0,380,3.6,3.1\n1,660,3.7,2.9\n" * 10)
    line = _one_line_error(run_cli, "train", "mlp", "--data", path, "--target", "admit")
    assert "names the column 'gpa' twice" in line, line
    line = _one_line_error(run_cli, "train", "rbm", "--data", path)
    assert "names the column 'gpa' twice" in line, line
    assert not running_runs(tracking_uri)


def test_nan_or_infinite_sequences_and_rbm_tables_are_refused(run_cli, tracking_uri, tmp_path):
    x = np.random.default_rng(0).random((40, 5, 2)).astype("float32")
    x[12, 3, 1] = np.nan
    path = tmp_path / "seqs.npz"
    np.savez(path, x=x, y=np.arange(40) % 2)
    line = _one_line_error(run_cli, "train", "lstm", "--data", path, "--experiment", "seq")
    assert "array 'x' holds nan at index [12, 3, 1]" in line, line
    x[12, 3, 1] = 0.5
    np.savez(path, x=x, y=np.where(np.arange(40) == 5, np.inf, 1.0))
    line = _one_line_error(run_cli, "train", "lstm", "--data", path, "--experiment", "seq")
    assert "array 'y' holds inf at index [5]" in line, line

    table = tmp_path / "ratings.csv"
    table.write_text("a,b,c\n" + "0,1,1\n1,0,1\n" * 5 + "1,inf,0\n")
    line = _one_line_error(run_cli, "train", "rbm", "--data", table, "--experiment", "seq")
    assert "row 12, column 'b' holds inf" in line, line
    table.write_text("a,b,c\n" + "0,1,1\n1,0,1\n" * 5 + "1,,0\n")
    line = _one_line_error(run_cli, "train", "rbm", "--data", table, "--experiment", "seq")
    assert "missing value at row 12, column 'b'" in line, line
    assert _no_run_in(tracking_uri, "seq")


def test_an_unsupported_tracking_uri_scheme_is_a_usage_error(run_cli, tracking_uri):
    line = _one_line_error(run_cli, "train", "mlp", "--tracking-uri", "ftp://example", "--experiment", "ftp")
    assert "scheme 'ftp'" in line and "sqlite:" in line and "http:" in line and "postgresql:" in line, line
    line = _one_line_error(run_cli, "ui", "--tracking-uri", "s3://bucket/runs")
    assert "scheme 's3'" in line, line
    assert _no_run_in(tracking_uri, "ftp")
