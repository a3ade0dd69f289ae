"""Judging one global network on several series: per series, then over every test window.

The recipe judges each series on its own (`_judge_forecasts` on that series' windows: persistence,
seasonal naive, a ridge AR fitted on that series' training windows, ETS and ARIMA fitted on that
series' rows). `combine` pools those per-series judgements: `test_mae` is the mean absolute error
over every test window of every series (series with more windows weigh more), RMSE likewise,
MASE the mean of each window's error divided by its own series' scale, and `test_mae_sum` the sum
of the per-series MAEs (each series counted once). A model is pooled only where every series has
it (a peer whose fit failed on one series is left out of the totals, not of that series' row).
"""

import re

import numpy as np

# Per-series metrics beyond this many series would flood the run page: the CSV holds them all.
MAX_SERIES_METRICS = 50


def combine(judged, members):
    """Pool {series id: `_judge_forecasts` result} into one judgement of the same shape.

    Returns:
        {"truth", "forecasts", "errors", "metrics", "summary", "peers", "interval", "table"}, where
        "table" is one row per series (id, test windows, each model's test MAE) and "interval"
        holds the pooled bounds of the test windows (or None).
    """
    from zoo import forecasting

    keys = list(judged)
    names = [n for n in judged[keys[0]]["forecasts"] if all(n in judged[k]["forecasts"] for k in keys)]
    truth = np.concatenate([judged[k]["truth"] for k in keys])
    scales = np.concatenate(
        [np.full(len(judged[k]["truth"]), forecasting.mase_scale(members[k]), dtype="float64") for k in keys]
    )
    forecasts = {n: np.concatenate([judged[k]["forecasts"][n] for k in keys]) for n in names}
    errors = {}
    for n, values in forecasts.items():
        error = values - truth
        errors[n] = {
            "mae": np.abs(error).mean(axis=0),
            "rmse": np.sqrt((error**2).mean(axis=0)),
            "mase": (np.abs(error) / scales[:, None]).mean(axis=0),
        }
    metrics = {}
    for n, error in errors.items():
        prefix = "test_" if n == "network" else f"test_{n}_"
        metrics |= {f"{prefix}{kind}": float(np.mean(v)) for kind, v in error.items()}
        metrics[f"{prefix}mae_sum"] = float(sum(judged[k]["metrics"][f"{prefix}mae"] for k in keys))
    metrics["test_naive_mae"] = metrics["test_persistence_mae"]
    # What fitting the statistical peers on every series cost, all series together.
    for key in judged[keys[0]]["metrics"]:
        if key.endswith("_fit_seconds") and all(key in judged[k]["metrics"] for k in keys):
            metrics[key] = float(sum(judged[k]["metrics"][key] for k in keys))
    metrics["series_count"] = float(len(keys))
    interval = None
    if all(judged[k]["interval"] for k in keys):
        lower = np.concatenate([judged[k]["interval"]["lower"] for k in keys])
        upper = np.concatenate([judged[k]["interval"]["upper"] for k in keys])
        # The served model gets one half width per step for every series: the widest series' keeps
        # the asked coverage on each (a narrower one would under-cover the most variable series).
        half = np.max([judged[k]["interval"]["half_width"] for k in keys], axis=0)
        interval = {"level": judged[keys[0]]["interval"]["level"], "half_width": half.tolist(), "lower": lower}
        interval["upper"] = upper
        metrics |= forecasting.interval_metrics(lower, upper, truth)
    table = [
        {"series": k, "test_windows": len(judged[k]["truth"])}
        | {f"{n}_mae": judged[k]["metrics"]["test_mae" if n == "network" else f"test_{n}_mae"] for n in names}
        for k in keys
    ]
    baseline_mae = {n: metrics[f"test_{n}_mae"] for n in names if n != "network"}
    horizon = truth.shape[1]
    text = forecasting.summary(metrics["test_mae"], baseline_mae, f"{len(keys)} series (one global network)", horizon)
    beaten = sum(row["network_mae"] < row["persistence_mae"] for row in table)
    text += f"\n- per series: the network beats persistence on {beaten} of {len(keys)}"
    text += "".join(f"\n- transform: {line}" for line in _transform_lines(judged[keys[0]]["summary"]))
    text += "\n" + forecasting.winner_line(metrics)
    return {
        "truth": truth,
        "forecasts": forecasts,
        "errors": errors,
        "metrics": metrics,
        "summary": text,
        "peers": {},
        "interval": interval,
        "table": table,
    }


def _transform_lines(summary):
    return [line.split("- transform: ", 1)[1] for line in summary.splitlines() if line.startswith("- transform: ")]


def metric_name(key):
    """A series id as a metric name part: MLflow takes letters, digits, _ - . / and spaces."""
    return re.sub(r"[^0-9A-Za-z_.-]", "_", str(key))[:60]


def log(judged):
    """The per-series table as `forecast_series.csv` and, for up to 50 series, `test_mae_series_<id>` metrics."""
    import mlflow
    import pandas as pd

    table = pd.DataFrame(judged["table"])
    mlflow.log_text(table.to_csv(index=False), "forecast_series.csv")
    if len(table) <= MAX_SERIES_METRICS:
        values = {}
        for row in judged["table"]:
            name = metric_name(row["series"])
            values |= {
                f"test_{kind.removesuffix('_mae')}_mae_series_{name}".replace("test_network_", "test_"): float(v)
                for kind, v in row.items()
                if kind.endswith("_mae")
            }
        mlflow.log_metrics(values)
