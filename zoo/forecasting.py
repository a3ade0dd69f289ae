"""What a forecast is judged against: the baselines and the error per horizon step.

The baselines forecast the same test windows as the network, from the same information:

- persistence: every step ahead equals the window's last value ("tomorrow = today");
- seasonal naive (with a season length m): the value one season earlier, y[t + h - m * ceil(h / m)];
- ridge AR: a linear autoregression, a ridge regression from the window's values (target and
  covariates, standardized) to the next `horizon` values, fitted on the training windows only.

Errors per horizon step h: MAE, RMSE, and MASE, the MAE divided by the mean absolute error of the
one-step persistence forecast (seasonal naive with a season) over the training rows, as Hyndman
and Koehler define it: below 1 beats that naive forecast's in-sample error.
"""

import numpy as np

RIDGE_ALPHA = 1.0


def forecast_targets(seq):
    """The raw test truth of each forecast: (test windows, horizon)."""
    return seq.y_test[:, -1, :].astype("float64")


def baselines(seq):
    """Return {name: forecasts (test windows, horizon)} for the baselines of a forecast dataset."""
    from sklearn.linear_model import Ridge

    extras = seq.extras
    series, horizon, season = extras["series"], extras["horizon"], extras["season"]
    last = extras["last_rows"]["test"]
    ahead = np.arange(1, horizon + 1)
    forecasts = {"persistence": np.repeat(series[last][:, None], horizon, axis=1)}
    if season:
        back = season * np.ceil(ahead / season).astype(int)
        forecasts["seasonal_naive"] = series[last[:, None] + ahead - back]
    scaling = extras["scaling"]
    mean, std = np.asarray(scaling["input_mean"]), np.asarray(scaling["input_std"])
    target_mean, target_std = scaling["output_mean"][0], scaling["output_std"][0]

    def lags(x):
        return ((x - mean) / std).reshape(len(x), -1)

    ridge = Ridge(alpha=RIDGE_ALPHA).fit(lags(seq.x_train), (seq.y_train[:, -1, :] - target_mean) / target_std)
    forecasts["ridge_ar"] = ridge.predict(lags(seq.x_test)).reshape(-1, horizon) * target_std + target_mean
    return forecasts


def mase_scale(seq):
    """Mean absolute error of the (seasonal) naive forecast over the training rows."""
    extras = seq.extras
    lag = extras["season"] or 1
    train = extras["series"][: extras["bounds"]["train"][1]]
    scale = float(np.mean(np.abs(train[lag:] - train[:-lag])))
    return scale if scale > 0 else 1.0


def errors(forecast, truth, scale):
    """Per horizon step: {"mae": (horizon,), "rmse": (horizon,), "mase": (horizon,)}."""
    error = np.asarray(forecast, dtype="float64") - truth
    mae = np.abs(error).mean(axis=0)
    return {"mae": mae, "rmse": np.sqrt((error**2).mean(axis=0)), "mase": mae / scale}


def summary(model_mae, baseline_mae, name, horizon):
    """One line per baseline: did the network beat it on test MAE (mean over the horizon)?"""
    lines = [f"{name}, {horizon} step(s) ahead, test MAE averaged over the horizon: network {model_mae:.4g}"]
    for baseline, mae in baseline_mae.items():
        verdict = "beats" if model_mae < mae else "does NOT beat"
        lines.append(f"- the network {verdict} {baseline} (MAE {mae:.4g}, ratio {model_mae / mae:.3f})")
    return "\n".join(lines)


# === Forecasting from a CSV with a trained model (`zoo predict RUN series.csv`) ===


def forecast_info(reference, tracking_uri=None):
    """The series description a forecast model was trained with, from its run, URI or folder.

    Returns:
        a dict with target, features, time_column, time_kind, time_step, window and horizon, or
        None when the model was not trained as a series forecast.
    """
    import json
    import os
    import re

    import mlflow

    if os.path.exists(reference):
        folder = reference if os.path.isdir(reference) else os.path.dirname(reference)
        if os.path.isfile(os.path.join(folder, "MLmodel")):
            return (mlflow.models.Model.load(folder).metadata or {}).get("forecast")
        path = os.path.join(folder or ".", "forecast.json")
        if not os.path.isfile(path):
            return None
        with open(path) as handle:
            return json.load(handle)
    uri = f"runs:/{reference}/model" if re.fullmatch(r"[0-9a-f]{32}", reference) else reference
    from zoo import tracking

    tracking.configure(tracking_uri)
    try:
        return (mlflow.models.get_model_info(uri).metadata or {}).get("forecast")
    except Exception:  # noqa: BLE001 - load_model already said what is wrong with the reference
        return None


def forecast_csv(model, info, path):
    """Forecast the `horizon` values that follow the end of the series in the CSV at `path`.

    Returns:
        (time labels of the forecast steps, forecast values, (lower, upper) bounds or None).

    Raises:
        ZooError: for a CSV that lacks the model's columns, has bad values, or is shorter than a window.
    """
    from zoo.datasets import series
    from zoo.errors import ZooError

    frame, spec = _one_series(path, info)
    window = int(info["window"])
    if len(frame) < window:
        raise ZooError(f"{path} has {len(frame)} rows; the model reads the last {window}: give it at least that many.")
    inputs = frame[spec.columns()].to_numpy(dtype="float32")[-window:][None]
    values = np.asarray(model.predict(inputs, verbose=0))[0, -1]
    if spec.time_kind == "row":
        spec.time_step = 1
        last = len(frame) - 1
    else:
        last = frame["_time"].iloc[-1]
    bounds = None
    if info.get("interval"):
        half = np.asarray(info["interval"]["half_width"], dtype="float64")
        bounds = (values - half, values + half)
    return series.next_times(last, spec, len(values)), values, bounds


def _one_series(path, info):
    """Read the series of a CSV; a model trained on several series (`series_column`) forecasts one at a time."""
    from zoo.datasets import series, tabular
    from zoo.errors import ZooError

    column = info.get("series_column")
    frame = tabular.read_frame(path)
    if column and column in frame.columns:
        ids = frame[column].astype(str).unique()
        if len(ids) > 1:
            raise ZooError(
                f"This model was trained on several series (`series_column={column}`) and forecasts one at a time: "
                f"{path} holds {len(ids)} ('{ids[0]}', '{ids[1]}', ...); keep the rows of one series in the CSV."
            )
    return series.read_series_frame(frame, info["target"], info.get("time_column"), info.get("features", []), path)


# === Prediction intervals and the verdict ===


def conformal_half_width(forecasts, truth, level):
    """Split-conformal half widths per horizon step from held-out forecasts (windows, horizon).

    The ceil((n + 1) * level)-th smallest absolute residual of the n validation windows: the
    interval forecast +- that covers a new value with probability at least `level` when the test
    residuals are exchangeable with the validation ones (Vovk et al.; statsforecast's conformal
    intervals do the same per step).
    """
    residuals = np.sort(np.abs(np.asarray(forecasts, dtype="float64") - truth), axis=0)
    n = len(residuals)
    rank = min(n, int(np.ceil((n + 1) * level)))
    return residuals[max(rank, 1) - 1]


# Step size of the adaptive conformal level (Gibbs and Candes 2021): after each observed miss the
# next interval widens, after each hit it narrows. Test spans here hold 20 to 200 forecasts: their
# 0.005 suits thousands.
ADAPTIVE_STEP = 0.05


def online_conformal(validation, test, level, step=ADAPTIVE_STEP):
    """Conformal bounds on the test windows from every residual known when each forecast is made.

    A test forecast made at row e is calibrated on the validation residuals and those of the
    earlier test forecasts whose value was already observed at e (target row <= e), and its level
    adapts to the misses observed so far (adaptive conformal inference): a test span wilder than
    validation (inflation after 2008) widens the intervals as it unrolls, as it would for a
    forecaster who keeps scoring the model. With the validation residuals alone, such spans got
    coverage far from the asked level.

    Args:
        validation, test: (forecasts, truth, last_rows) of each split: (windows, horizon) arrays and
            the row each window's forecast is made at.
        level: coverage asked, e.g. 0.8.
        step: how far each observed hit or miss moves the level.

    Returns:
        (lower, upper) on the test windows, and the half widths per step from every residual at the
        asked level (for the forecasts after the end of the series).
    """
    val_forecasts, val_truth, _ = validation
    test_forecasts, test_truth, test_last = test
    val_residuals = np.abs(np.asarray(val_forecasts, dtype="float64") - val_truth)
    test_residuals = np.abs(np.asarray(test_forecasts, dtype="float64") - test_truth)
    test_last = np.asarray(test_last)
    half = np.empty_like(test_residuals)
    missed = np.zeros(test_residuals.shape, dtype=bool)
    for h in range(test_residuals.shape[1]):
        for i, made_at in enumerate(test_last):
            known = test_last + h + 1 <= made_at
            calibration = np.concatenate([val_residuals[:, h], test_residuals[known, h]])
            miss_rate = missed[known, h].mean() if known.any() else 1 - level
            adapted = float(np.clip(level + step * known.sum() * (miss_rate - (1 - level)), 0.0, 1.0))
            half[i, h] = conformal_half_width(calibration[:, None], 0.0, adapted)[0]
            missed[i, h] = test_residuals[i, h] > half[i, h]
    final = conformal_half_width(np.concatenate([val_residuals, test_residuals]), 0.0, level)
    return test_forecasts - half, test_forecasts + half, final


def interval_metrics(lower, upper, truth):
    """Share of the test values inside their interval and its mean width."""
    inside = (truth >= lower) & (truth <= upper)
    return {"test_interval_coverage": float(inside.mean()), "test_interval_width": float(np.mean(upper - lower))}


PEER_LABELS = {
    "network": "the network",
    "persistence": "persistence",
    "seasonal_naive": "seasonal naive",
    "ridge_ar": "ridge AR",
    "ets": "exponential smoothing (ETS)",
    "arima": "ARIMA",
}


def winner_line(metrics):
    """'Test span won by X (MAE m; the network m2)' from a forecast run's test_*_mae metrics, or ''."""
    if "test_persistence_mae" not in metrics or "test_mae" not in metrics:
        return ""
    maes = {"network": metrics["test_mae"]}
    maes |= {name: metrics[f"test_{name}_mae"] for name in PEER_LABELS if f"test_{name}_mae" in metrics}
    best = min(maes, key=lambda name: maes[name])
    line = f"test span won by {PEER_LABELS[best]} (MAE {maes[best]:.4g}"
    if best != "network":
        line += f"; the network {maes['network']:.4g}"
    return line + ")"
