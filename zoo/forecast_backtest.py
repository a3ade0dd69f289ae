"""Rolling-origin backtest over the test span (`--backtest K`): errors per forecast origin and per step.

K origins spread evenly over the test span's forecasts, first to last. At each origin every model
forecasts the next `horizon` values from everything observed up to it (an expanding window of
history): the network from its window, the baselines from the series, ETS and ARIMA by filtering
the series up to the origin with the parameters fitted on the rows before the test span. Nothing is
refitted between origins (Darts' `historical_forecasts(retrain=False)`; statsforecast's
`cross_validation(refit=False)`), so a backtest costs no training.
"""

import numpy as np

from zoo.errors import ZooError


def origins(count, windows):
    """Indices of `count` test windows spread evenly from the first to the last.

    Raises:
        ZooError: for a count below 1 or above the number of test forecasts.
    """
    if count < 1 or count > windows:
        raise ZooError(
            f"`backtest` takes 1 to {windows} origins (the test span holds {windows} forecasts). Received: {count}"
        )
    return np.unique(np.linspace(0, windows - 1, count).round().astype(int))


def errors(forecasts, truth, chosen):
    """{name: absolute errors (origins, horizon)} of each model's forecasts at the chosen origins."""
    return {name: np.abs(values[chosen] - truth[chosen]) for name, values in forecasts.items()}


def figure(found, times, horizon, title):
    """Two panels: MAE over the horizon at each origin, and MAE over the origins at each step ahead."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    fig, (by_origin, by_step) = pyplot.subplots(1, 2, figsize=(12, 4.2))
    steps = np.arange(1, horizon + 1)
    for name, error in found.items():
        style = {"linewidth": 2.2, "color": "black"} if name == "network" else {"linewidth": 1.1, "alpha": 0.8}
        by_origin.plot(range(len(times)), error.mean(axis=1), marker="o", markersize=3, label=name, **style)
        by_step.plot(steps, error.mean(axis=0), marker="o", markersize=3, label=name, **style)
    labels = [str(t)[:10] for t in times]
    shown = np.unique(np.linspace(0, len(times) - 1, min(8, len(times))).round().astype(int))
    by_origin.set_xticks(shown, [labels[i] for i in shown], rotation=30, ha="right", fontsize=8)
    by_origin.set(title="MAE at each origin (over the horizon)", xlabel="forecast origin", ylabel="MAE")
    by_step.set(title="MAE at each step ahead (over the origins)", xlabel="steps ahead", ylabel="MAE")
    by_step.set_xticks(steps)
    by_step.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def log(found, times, horizon, name):
    """Log `backtest_{model_}mae` per origin (MLflow step = origin number) and `backtest_horizon_{model_}mae`
    per step ahead, the mean as `backtest_mae`, a CSV of every error, and the figure."""
    import mlflow

    from zoo import tracking

    for index in range(len(times)):
        mlflow.log_metrics(
            {f"backtest_{_infix(model)}mae": float(error[index].mean()) for model, error in found.items()},
            step=index + 1,
        )
    for h in range(horizon):
        mlflow.log_metrics(
            {f"backtest_horizon_{_infix(model)}mae": float(error[:, h].mean()) for model, error in found.items()},
            step=h + 1,
        )
    mlflow.log_metrics({f"backtest_{_infix(model)}mean_mae": float(error.mean()) for model, error in found.items()})
    lines = ["origin,steps_ahead," + ",".join(found)]
    for index, time in enumerate(times):
        for h in range(horizon):
            lines.append(f"{time},{h + 1}," + ",".join(f"{found[m][index, h]:.6g}" for m in found))
    mlflow.log_text("\n".join(lines) + "\n", "backtest.csv")
    tracking.log_figure(figure(found, times, horizon, f"{name}: backtest over {len(times)} origins"), "backtest.png")


def _infix(model):
    return "" if model == "network" else f"{model}_"
