"""Forecasting methods beside the network: target transforms inverted inside the model, the
statistical peers (ETS, ARIMA) against statsmodels called directly, and conformal intervals."""

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest

import zoo
from zoo import forecast_peers, forecast_transforms, forecasting
from zoo.datasets import series
from zoo.models import forecast_layers


def _windows(values, window=8, horizon=3, season=0):
    frame = pd.DataFrame({"_time": np.arange(len(values)), "y": values})
    return series.forecast_windows(
        frame, series.SeriesSpec("y", [], None), window=window, horizon=horizon, season=season
    )


# === Transforms: exact inverses, the same inside the model ===


@pytest.mark.parametrize("transform, season", [("none", 0), ("diff", 0), ("seasonal", 4)])
def test_the_inverted_transform_round_trips_raw_values(transform, season):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 10, 2)) * 30 + 1000
    y = rng.normal(size=(5, 10, 3)) * 30 + 1000
    residual = forecast_transforms.forward(y, x, transform, season)
    np.testing.assert_array_equal(forecast_transforms.inverse(residual, x, transform, season), y)
    if transform == "none":
        return
    # The model's layers do in float32 what the NumPy functions do.
    changes = forecast_layers.TargetChanges()(x.astype("float32"))
    np.testing.assert_allclose(np.asarray(changes), forecast_transforms.input_features(x, transform), atol=1e-3)
    added = forecast_layers.AddReference(3, season if transform == "seasonal" else 0)
    raw = np.asarray(added([residual.astype("float32"), x.astype("float32")]))
    np.testing.assert_allclose(raw, y, rtol=1e-6)
    # Seasonal reference: one season back (two for steps beyond it), persistence before the window.
    index = forecast_transforms.reference_index(10, 3, 4 if transform == "seasonal" else 0)
    assert index[-1].tolist() == ([6, 7, 8] if transform == "seasonal" else [9, 9, 9])
    assert index[0].tolist() == ([0, 0, 0] if transform == "seasonal" else [0, 0, 0])


def test_a_transformed_model_takes_raw_values_and_survives_saving(tmp_path):
    model = zoo.get(
        "gru",
        mode="many_to_many",
        input_shape=(8, 1),
        task="regression",
        num_outputs=2,
        bidirectional=False,
        input_mean=(0.0,),
        input_std=(1.0,),
        output_mean=(0.0, 0.0),
        output_std=(1.0, 1.0),
        target_transform="diff",
    )
    raw = np.linspace(1000, 1100, 16, dtype="float32").reshape(2, 8, 1)
    got = np.asarray(model(raw))
    # Untrained, its residual is small: the forecast stays near the window's own level, far above
    # anything a model standardized around 0 would return.
    assert np.abs(got[:, -1, :] - raw[:, -1, :]).max() < 5
    path = tmp_path / "diff.keras"
    model.save(path)
    np.testing.assert_array_equal(np.asarray(keras.saving.load_model(path)(raw)), got)
    with pytest.raises(zoo.ZooError, match="needs reference_season"):
        zoo.get(
            "gru",
            mode="many_to_many",
            input_shape=(8, 1),
            task="regression",
            num_outputs=1,
            bidirectional=False,
            target_transform="seasonal",
        )


def test_an_ensemble_returns_its_members_mean_and_trains_each_on_its_own_error(tmp_path):
    model = zoo.get(
        "gru",
        mode="many_to_many",
        input_shape=(8, 1),
        task="regression",
        num_outputs=2,
        units=(8,),
        bidirectional=False,
        dropout=0.0,
        members=3,
        linear_lags=8,
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8, 1)).astype("float32")
    y = rng.normal(size=(16, 8, 2)).astype("float32")
    # Members start apart (their own initial weights), so a mean of equal members would not pass.
    model.get_layer("member2_linear_ar").set_weights([np.full((8, 1, 2), 0.3, "float32"), np.zeros(2, "float32")])
    heads = [
        np.asarray(keras.Model(model.input, model.get_layer(f"member{k}_add_linear_ar").output)(x)) for k in (1, 2, 3)
    ]
    got = np.asarray(model(x))
    assert np.abs(heads[0] - heads[1]).max() > 0.1
    np.testing.assert_allclose(got, np.mean(heads, axis=0), atol=1e-6)
    # The loss is the average of the members' own squared errors, not the squared error of their mean.
    loss = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(np.mean([np.mean((h - y) ** 2) for h in heads]), rel=1e-5)
    assert loss > np.mean((got - y) ** 2) + 1e-4
    # Causal: a change at the last step leaves every earlier step's forecast alone (the linear lags too).
    moved = x.copy()
    moved[:, -1] += 5.0
    np.testing.assert_allclose(np.asarray(model(moved))[:, :-1], got[:, :-1], atol=1e-6)
    path = tmp_path / "members.keras"
    model.save(path)
    np.testing.assert_allclose(np.asarray(keras.saving.load_model(path)(x)), got, atol=1e-6)
    with pytest.raises(zoo.ZooError, match="members=3 averages regression"):
        zoo.get("gru", mode="many_to_one", input_shape=(8, 1), members=3)


def test_auto_never_keeps_levels_that_leave_the_training_range():
    rng = np.random.default_rng(1)
    t = np.arange(300)
    trend = _windows(5 + 0.4 * t + rng.normal(0, 1, 300), season=6)
    chosen, scores = forecast_transforms.choose(trend)
    assert set(scores) == {"diff", "seasonal"} and chosen == min(scores, key=scores.get)
    wave = _windows(50 + 10 * np.sin(2 * np.pi * t / 6) + rng.normal(0, 0.5, 300))
    chosen, scores = forecast_transforms.choose(wave)
    assert set(scores) == {"none", "diff"} and chosen == min(scores, key=scores.get)
    assert forecast_transforms.choose(wave, "diff") == ("diff", {})


def test_auto_keeps_levels_inside_the_range_unless_changes_are_clearly_better():
    margin = forecast_transforms.LEVELS_MARGIN

    def walk(seed, rows):
        return _windows(np.cumsum(np.random.default_rng(seed).normal(0, 1, rows)))

    # Random walks that stay inside their training range: levels are a candidate either way.
    chosen, scores = forecast_transforms.choose(walk(2, 60))
    assert scores["diff"] < (1 - margin) * scores["none"] and chosen == "diff"
    chosen, scores = forecast_transforms.choose(walk(28, 100))
    assert (1 - margin) * scores["none"] < scores["diff"] < scores["none"] and chosen == "none"


# === A trend that leaves the training range ===


def test_a_linear_trend_above_the_training_range_beats_persistence(run_cli, tracking_uri, tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(160)
    # The test span (the last 32 rows) lies wholly above every training value.
    value = 10 + 0.8 * t + 3 * np.sin(2 * np.pi * t / 8) + rng.normal(0, 0.5, 160)
    pd.DataFrame({"t": t, "value": value}).to_csv(tmp_path / "trend.csv", index=False)
    status, out, err = run_cli(
        "train",
        "gru",
        "--mode",
        "many_to_many",
        "--data",
        tmp_path / "trend.csv",
        "--target",
        "value",
        "--time-column",
        "t",
        "--epochs",
        "5",
        "--horizon",
        "2",
        "--backtest",
        "4",
        "--batch-size",
        "16",
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
    run = mlflow.MlflowClient(tracking_uri).get_run(run_id)
    metrics, tags = run.data.metrics, run.data.tags
    assert value[-32:].min() > value[:112].max()
    # Persistence errs by about the 0.8 step plus the wave's change; the residual over it learns both.
    assert metrics["test_mae"] < 0.7 * metrics["test_persistence_mae"], metrics
    assert tags["zoo.forecast.transform"] != "none"
    assert "transform:" in tags["mlflow.note.content"]
    # The statistical peers ran on the same windows, and the last line names the winner.
    assert {"test_ets_mae", "test_arima_mae", "test_interval_coverage", "test_interval_width"} <= set(metrics)
    assert tags["zoo.forecast.beats_ets"] in ("true", "false") and "zoo.forecast.arima_model" in tags
    assert out.strip().splitlines()[-1].startswith("test span won by ")
    # The backtest: every model's error at 4 origins over the test span and at each step ahead.
    client = mlflow.MlflowClient(tracking_uri)
    assert [m.step for m in client.get_metric_history(run_id, "backtest_mae")] == [1, 2, 3, 4]
    assert [m.step for m in client.get_metric_history(run_id, "backtest_horizon_arima_mae")] == [1, 2]
    assert {"backtest.png", "backtest.csv"} <= {a.path for a in client.list_artifacts(run_id)}
    # The served model answers a raw window with its forecasts and their interval bounds.
    served = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(value[-12:, None][None].astype("float32"))
    assert list(served.columns) == ["forecast_1", "forecast_2", "lower_1", "lower_2", "upper_1", "upper_2"]
    row = served.iloc[0]
    assert row["lower_1"] < row["forecast_1"] < row["upper_1"] and row["forecast_1"] > value.max() - 5


# === Statistical peers: the same numbers as statsmodels called directly ===


def test_statistical_peers_match_statsmodels_called_directly():
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    rng = np.random.default_rng(3)
    t = np.arange(160)
    values = 20 + 0.1 * t + 4 * np.sin(2 * np.pi * t / 4) + np.cumsum(rng.normal(0, 0.3, 160))
    seq = _windows(values, window=8, horizon=3, season=4)
    found = forecast_peers.peers(seq)
    assert set(found) == {"ets", "arima"}
    history = values[: seq.extras["bounds"]["test"][0]]
    last = seq.extras["last_rows"]["test"]
    for name, peer in found.items():
        model = peer["result"].model
        if name == "ets":
            direct = ExponentialSmoothing(history, trend=True, damped_trend=model.damped_trend, seasonal=4)
        else:
            direct = SARIMAX(
                history,
                order=model.order,
                seasonal_order=model.seasonal_order,
                trend=model.trend,
                concentrate_scale=True,
            )
        with forecast_peers._quiet():
            fitted = direct.fit(disp=False, **({"maxiter": forecast_peers.MAX_ITERATIONS} if name == "arima" else {}))
        np.testing.assert_allclose(fitted.params, peer["result"].params, rtol=1e-6)
        for i in (0, len(last) // 2, len(last) - 1):
            expected = fitted.apply(values[: last[i] + 1]).forecast(3)
            np.testing.assert_allclose(peer["forecasts"][i], expected, rtol=1e-8)
    # Fitted on the rows before the test span, they do better than persistence on this season.
    truth = forecasting.forecast_targets(seq)
    persistence = np.abs(forecasting.baselines(seq)["persistence"] - truth).mean()
    assert min(np.abs(p["forecasts"] - truth).mean() for p in found.values()) < persistence


# === Conformal intervals ===


def test_conformal_intervals_cover_the_asked_share_of_a_simulated_series():
    rng = np.random.default_rng(7)
    # An AR(1) forecast one and two steps ahead with its true coefficient: residuals are exchangeable.
    n, phi = 6000, 0.7
    noise = rng.normal(0, 1, n)
    y = np.zeros(n)
    for i in range(1, n):
        y[i] = phi * y[i - 1] + noise[i]
    origins = np.arange(1, n - 2)
    forecasts = np.stack([phi * y[origins], phi**2 * y[origins]], axis=1)
    truth = np.stack([y[origins + 1], y[origins + 2]], axis=1)
    validation, test = slice(0, 400), slice(400, None)
    for level in (0.8, 0.95):
        half = forecasting.conformal_half_width(forecasts[validation], truth[validation], level)
        assert half[1] > half[0]  # two steps ahead are less certain
        found = forecasting.interval_metrics(forecasts[test] - half, forecasts[test] + half, truth[test])
        assert found["test_interval_coverage"] == pytest.approx(level, abs=0.03)
        # Close to the Gaussian interval's width for one step: 2 * z * sigma.
        z = {0.8: 1.2816, 0.95: 1.96}[level]
        assert half[0] == pytest.approx(z, rel=0.12)


def test_online_conformal_keeps_coverage_when_the_test_span_is_wilder_than_validation():
    rng = np.random.default_rng(11)
    # Residuals of spread 1 on validation, 2.5 on the test span: a calm validation, a wild test.
    validation = (np.zeros((60, 1)), rng.normal(0, 1, (60, 1)), np.arange(60))
    test_truth = rng.normal(0, 2.5, (600, 1))
    static = forecasting.conformal_half_width(validation[0], validation[1], 0.8)
    static_coverage = forecasting.interval_metrics(-static, static, test_truth)["test_interval_coverage"]
    lower, upper, final = forecasting.online_conformal(
        validation, (np.zeros((600, 1)), test_truth, 100 + np.arange(600)), 0.8
    )
    online_coverage = forecasting.interval_metrics(lower, upper, test_truth)["test_interval_coverage"]
    assert static_coverage < 0.5 and online_coverage == pytest.approx(0.8, abs=0.05)
    # The first test forecast knows only the validation residuals; the half width after the end, all of them.
    assert upper[0, 0] == pytest.approx(static[0]) and final[0] > 2 * static[0]
