"""Several series in one CSV (`--series-column`): one global network, the split by time inside each
series, baselines per series, errors per series and pooled, and bad input."""

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.conftest import running_runs
from zoo import forecasting
from zoo.datasets import panel, series
from zoo.errors import ZooError

# (id, level, slope per step, rows): levels far apart, so a window's values show which series it read.
SHOPS = (("a", 10, 0.5, 120), ("b", 100, 1.0, 100), ("c", 500, -0.8, 140))


def _shops(rows=None, seed=0):
    """Three trending series with a wave of period 6, long format, shuffled: persistence lags each trend."""
    rng = np.random.default_rng(seed)
    parts = []
    for key, level, slope, n in SHOPS:
        n = rows or n
        t = np.arange(n)
        value = level + slope * t + 2 * np.sin(2 * np.pi * t / 6) + rng.normal(0, 0.2, n)
        parts.append(pd.DataFrame({"shop": key, "week": 2000 + t, "sales": value}))
    return pd.concat(parts).sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture()
def shops_csv(tmp_path):
    path = tmp_path / "shops.csv"
    _shops().to_csv(path, index=False)
    return path


def test_each_series_is_split_by_time_and_no_window_crosses_two(shops_csv):
    groups, spec = panel.read_panel_csv(str(shops_csv), "sales", "shop", "week")
    assert sorted(groups) == ["a", "b", "c"] and spec.time_step == 1.0
    seq = panel.panel_windows(groups, spec, window=8, horizon=2, name="shops")
    members = seq.extras["members"]
    for key, _level, _slope, rows in SHOPS:
        member = members[key]
        assert len(groups[key]) == rows and groups[key]["_time"].is_monotonic_increasing
        bounds, last = member.extras["bounds"], member.extras["last_rows"]
        # The single-series split of this series' own rows: 70 / 10 / 20 %.
        assert bounds == series.split_bounds(rows, 2)
        test_start = rows - int(round(rows * series.TEST_FRACTION))
        assert bounds["test"] == (test_start, rows)
        # Every test window forecasts rows of the last 20 % of its series; no window starts before row 0.
        assert (last["test"] + 1 >= test_start).all() and (last["test"] + 2 <= rows - 1).all()
        assert (last["train"] - 7 >= 0).all() and last["train"].max() + 2 < bounds["validation"][0]
        assert last["validation"].max() + 2 < test_start
    # The stacked windows are the series' own windows, and each reads the values of one series only.
    for split, x in (("train", seq.x_train), ("validation", seq.x_val), ("test", seq.x_test)):
        attr = {"train": "x_train", "validation": "x_val", "test": "x_test"}[split]
        np.testing.assert_array_equal(x, np.concatenate([getattr(m, attr) for m in members.values()]))
        ranges = [
            (groups[k]["sales"].astype("float32").min(), groups[k]["sales"].astype("float32").max()) for k in members
        ]
        within = [((x[..., 0] >= low) & (x[..., 0] <= high)).all(axis=1) for low, high in ranges]
        assert (np.sum(within, axis=0) == 1).all(), split
    # `transform=none` standardizes with every series' training rows, not the test rows.
    train = np.concatenate([groups[k]["sales"].to_numpy()[: members[k].extras["bounds"]["train"][1]] for k in members])
    assert seq.extras["scaling"]["input_mean"] == pytest.approx([train.mean()])


def test_one_global_network_beats_persistence_summed_over_series(run_cli, tracking_uri, shops_csv, tmp_path):
    status, out, err = run_cli(
        "train",
        "gru",
        "--mode",
        "many_to_many",
        "--data",
        shops_csv,
        "--series-column",
        "shop",
        "--target",
        "sales",
        "--time-column",
        "week",
        "--horizon",
        "2",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--output",
        tmp_path / "out",
        "--set",
        "units=16",
        # One network, not the default five: the ensemble has its own test (test_forecast_methods.py)
        # and five cost 2.5-4.5x this test's time.
        "--set",
        "members=1",
        "--set",
        "learning_rate=0.01",
    )
    assert status == 0, err
    run_id = out.split("run ")[-1].split()[0]
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    metrics, tags = run.data.metrics, run.data.tags
    assert metrics["series_count"] == 3
    assert metrics["ets_fit_seconds"] > 0 and metrics["arima_fit_seconds"] > 0
    # Persistence lags each trend by its slope per step (plus the wave); 2 epochs on the changes
    # reached 0.33-0.49 of its pooled MAE over seeds 42, 1, 2 and 7.
    assert metrics["test_mae_sum"] < 0.8 * metrics["test_persistence_mae_sum"], metrics
    assert metrics["test_mae"] < 0.8 * metrics["test_persistence_mae"], metrics
    assert tags["zoo.forecast.transform"] != "none" and tags["zoo.forecast.beats_persistence"] == "true"
    # Baselines and peers per series: as metrics and as one CSV row per series.
    for key, *_ in SHOPS:
        assert {
            f"test_mae_series_{key}",
            f"test_persistence_mae_series_{key}",
            f"test_ridge_ar_mae_series_{key}",
        } <= set(metrics)
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="forecast_series.csv", dst_path=tmp_path)
    table = pd.read_csv(path).set_index("series")
    assert sorted(table.index) == ["a", "b", "c"] and {"persistence_mae", "ridge_ar_mae", "ets_mae"} <= set(table)
    assert table.loc["a", "persistence_mae"] == pytest.approx(metrics["test_persistence_mae_series_a"])
    # test_mae pools every test window: the window-weighted mean of the per-series MAEs.
    pooled = (table["network_mae"] * table["test_windows"]).sum() / table["test_windows"].sum()
    assert metrics["test_mae"] == pytest.approx(pooled, rel=1e-5)
    assert metrics["test_mae_sum"] == pytest.approx(table["network_mae"].sum(), rel=1e-5)
    assert "per series: the network beats persistence on" in tags["mlflow.note.content"]

    # `zoo predict` forecasts one series at a time: a CSV of several is refused with the fix.
    info = forecasting.forecast_info(str(tmp_path / "out"))
    assert info["series_column"] == "shop" and info["window"] == 12
    with pytest.raises(ZooError, match=r"several series \(`series_column=shop`\).*keep the rows of one series"):
        forecasting.forecast_csv(None, info, str(shops_csv))
    one = tmp_path / "b.csv"
    _shops().query("shop == 'b'").to_csv(one, index=False)
    status, out, err = run_cli("predict", tmp_path / "out", one)
    assert status == 0, err
    lines = out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["2100", "2101"]
    assert all(180 < float(line.split(": ")[1].split()[0]) < 220 for line in lines)  # b's level, raw scale


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["--series-column", "store"], "Column 'store' (--series-column) is not in"),
        (["--series-column", "shop", "--window", "70"], "does not fit in the training part of 'b' of shops"),
        (["--series-column", "shop", "--backtest", "3"], "--backtest is not built for several series"),
        (["--series-column", "shop", "--features", "rain"], "Column 'rain' (--features) is not in"),
    ],
)
def test_bad_panel_input_is_one_line_and_exit_2(run_cli, tracking_uri, shops_csv, argv, pattern):
    status, out, err = run_cli(
        "train",
        "gru",
        "--mode",
        "many_to_many",
        "--data",
        shops_csv,
        "--target",
        "sales",
        "--time-column",
        "week",
        *argv,
    )
    assert status == 2, err
    assert pattern in err and err.count("\n") == 1 and err.startswith("zoo: error: ")
    assert not running_runs(tracking_uri)


def test_a_series_too_short_for_every_split_is_named(tmp_path):
    frame = _shops()
    frame = frame[(frame["shop"] != "b") | (frame["week"] < 2012)]
    frame.to_csv(tmp_path / "short.csv", index=False)
    groups, spec = panel.read_panel_csv(str(tmp_path / "short.csv"), "sales", "shop", "week")
    with pytest.raises(
        Exception, match="The series 'b' of short has 12 rows: too few to split by time.*drop series 'b'"
    ):
        panel.panel_windows(groups, spec, window=4, horizon=1, name="short")


def test_help_names_the_option(capsys):
    from zoo.cli import main

    # argparse %-formats help strings: a bare "%" in the Config docstring once crashed this.
    with pytest.raises(SystemExit) as done:
        main(["train", "gru", "--help"])
    assert done.value.code == 0 and "--series-column" in capsys.readouterr().out
