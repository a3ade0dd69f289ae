"""Time series to forecast: the yearly sunspot numbers, or a CSV of yours, cut into windows by time.

A series is a table ordered by time with one numeric target column and optional numeric covariate
columns. `forecast_windows` turns it into many-to-many training pairs: a window of `window` steps
in (the target first, then the covariates), and at every step of the window the next `horizon`
target values out. The forecast of a window is its last step's output.

The split is by time: the first 70 % of the rows train, the next 10 % validate, the last 20 %
test. A window belongs to the split its forecast targets lie in, so no training window's targets
reach into validation or test (its inputs may read earlier rows of the series, as a forecast made
at that time could). Means and standard deviations are computed on the training rows only; the
recipe puts them inside the model, which therefore takes and returns raw values.

    frame, spec = read_series_csv("series.csv", target="sales", time_column="month")
    seq = forecast_windows(frame, spec, window=12, horizon=3)
"""

import dataclasses
import os

import numpy as np

from zoo.errors import ZooError, closest

VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.2
# Fewer rows than this cannot give every split at least a few forecasts.
MIN_ROWS = 20
SUNSPOTS = "yearly mean sunspot numbers 1700-2008 (SIDC), shipped with statsmodels"


@dataclasses.dataclass
class SeriesSpec:
    """What a series is made of, kept with the run so that `zoo predict` can read a CSV again.

    Attributes:
        target: the column to forecast.
        features: covariate columns fed to the model beside the target (may be empty).
        time_column: the column that orders the rows, or None (file order).
        time_kind: "number", "date" or "row".
        time_step: numbers: the step between rows; dates: a pandas frequency string; rows: 1.
    """

    target: str
    features: list
    time_column: str | None
    time_kind: str = "row"
    time_step: object = 1

    def columns(self):
        return [self.target, *self.features]

    def to_dict(self):
        return dataclasses.asdict(self)


def load_sunspots():
    """The yearly sunspot numbers that statsmodels ships (309 rows, YEAR and SUNACTIVITY), offline."""
    try:
        from statsmodels.datasets import sunspots
    except ImportError as error:
        raise ZooError(f"statsmodels is not usable here ({error}); pip install statsmodels.") from None
    frame = sunspots.load_pandas().data
    spec = SeriesSpec("SUNACTIVITY", [], "YEAR")
    return order_by_time(frame, spec, "statsmodels sunspots")


def sunspots_source():
    """The CSV file statsmodels reads the sunspots from: a source path MLflow can record."""
    import statsmodels.datasets.sunspots as module

    return os.path.join(os.path.dirname(module.__file__), "sunspots.csv")


def read_series_csv(path, target, time_column=None, features=()):
    """Read a CSV of a series, check its columns and values, and order its rows by time.

    Raises:
        ZooError: for a missing file or column, a non-numeric or non-finite value (naming the
            column and the row), duplicate times or gaps in the time column.
    """
    from zoo.datasets import tabular

    return read_series_frame(tabular.read_frame(path), target, time_column, features, path)


def read_series_frame(frame, target, time_column, features, path):
    """`read_series_csv` on a frame already read; `path` names it in the messages."""
    spec = SeriesSpec(target, list(features), time_column)
    for column, flag in [(target, "`target`"), *((f, "`features`") for f in features)] + (
        [(time_column, "`time_column`")] if time_column else []
    ):
        if column not in frame.columns:
            raise ZooError(
                f"Column '{column}' ({flag}) is not in {path}.{closest(column, frame.columns)} "
                f"Columns: {', '.join(map(str, frame.columns))}."
            )
    if time_column in spec.columns():
        raise ZooError(f"Column '{time_column}' is the time column; it cannot also be `target` or `features`.")
    if len(set(spec.columns())) != len(spec.columns()):
        raise ZooError(f"`features` repeats a column or names the target '{target}'; list each covariate once.")
    return order_by_time(frame, spec, path)


def order_by_time(frame, spec, where):
    """Check the values, then sort by the time column; return (frame of time + columns, spec).

    Row numbers in messages count data rows from 1, in the order of the file.
    """
    import pandas as pd

    for column in spec.columns():
        values = pd.to_numeric(frame[column], errors="coerce")
        text = frame[column]
        bad = values.isna() & text.notna() & (text.astype(str).str.strip() != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ZooError(
                f"Column '{column}' of {where} is not numeric: row {row + 1} holds {text.iloc[row]!r}. "
                "A forecast needs numbers in the target and `features` columns."
            )
        array = values.to_numpy(dtype="float64")
        nonfinite = ~np.isfinite(array)
        if nonfinite.any():
            row = int(np.flatnonzero(nonfinite)[0])
            what = "is empty (NaN)" if np.isnan(array[row]) else f"holds {array[row]}"
            raise ZooError(
                f"Column '{column}' of {where} {what} at row {row + 1} ({int(nonfinite.sum())} such row(s)); "
                "fill or drop those rows first."
            )
        frame = frame.assign(**{column: array})
    times, spec.time_kind, spec.time_step = _times(frame, spec.time_column, where)
    ordered = frame.assign(_time=times).sort_values("_time", kind="stable").reset_index(drop=True)
    if spec.time_kind != "row":
        _check_regular(ordered["_time"], spec, where)
    return ordered[["_time", *spec.columns()]], spec


def _times(frame, time_column, where):
    """The time of each row (numbers or dates), its kind, and a provisional step."""
    import pandas as pd

    if not time_column:
        return np.arange(len(frame)), "row", 1
    raw = frame[time_column]
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().all():
        return numbers.to_numpy(dtype="float64"), "number", None
    dates = pd.to_datetime(raw, errors="coerce", format="mixed")
    if dates.notna().all():
        return dates, "date", None
    row = int(np.flatnonzero((dates.isna() & numbers.isna()).to_numpy())[0])
    raise ZooError(
        f"Time column '{time_column}' of {where} holds {raw.iloc[row]!r} at row {row + 1}, neither a number nor a "
        "date; fix that row or drop `time_column` to take the rows in file order."
    )


def _check_regular(times, spec, where):
    """Refuse duplicate times and gaps: a window must span a fixed stretch of time."""
    import pandas as pd

    duplicated = times.duplicated(keep=False)
    if duplicated.any():
        value = times[duplicated].iloc[0]
        raise ZooError(
            f"Time column '{spec.time_column}' of {where} repeats {_show(value)} ({int(duplicated.sum())} rows share a "
            "time); "
            "keep one row per time step (aggregate the duplicates) before forecasting."
        )
    if len(times) < 3:
        return
    if spec.time_kind == "date":
        index = pd.DatetimeIndex(times)
        step = pd.infer_freq(index)
        if step is not None:
            spec.time_step = step
            return
        # Months and years have steps of different lengths in days: find the first row that breaks
        # the calendar frequency of the rows before it (bisection on the regular prefix).
        regular, broken = 3, len(index)
        if pd.infer_freq(index[:regular]) is None:
            broken = regular
        while broken - regular > 1:
            middle = (regular + broken) // 2
            regular, broken = (middle, broken) if pd.infer_freq(index[:middle]) else (regular, middle)
        odd, usual = broken - 1, f"'{pd.infer_freq(index[: max(3, broken - 1)]) or 'irregular'}' (pandas frequency)"
    else:
        deltas = times.diff().iloc[1:].round(9)
        usual = deltas.mode().iloc[0]
        if (deltas == usual).all():
            spec.time_step = float(usual)
            return
        odd = int(np.flatnonzero((deltas != usual).to_numpy())[0]) + 1
        usual = _show(usual)
    raise ZooError(
        f"Time column '{spec.time_column}' of {where} is not evenly spaced: {_show(times.iloc[odd - 1])} is followed "
        f"by {_show(times.iloc[odd])} where the steps before are {usual}; fill the missing time steps (e.g. "
        "interpolate) or aggregate the rows first."
    )


def _show(time):
    """A time as the user wrote it: a date without midnight, a whole number without .0."""
    import pandas as pd

    if isinstance(time, pd.Timestamp):
        return str(time.date()) if time == time.normalize() else str(time)
    return f"{time:g}"


def next_times(last, spec, count):
    """The `count` time labels that follow `last` (for printing forecasts)."""
    import pandas as pd

    if spec.time_kind == "date":
        return [_show(t) for t in pd.date_range(last, periods=count + 1, freq=spec.time_step)[1:]]
    return [_show(last + spec.time_step * (i + 1)) for i in range(count)]


def split_bounds(rows, horizon):
    """Row ranges (start, end) of the train, validation and test parts of a series of `rows` rows."""
    n_test = int(round(rows * TEST_FRACTION))
    n_val = int(round(rows * VALIDATION_FRACTION))
    return {
        "train": (0, rows - n_val - n_test),
        "validation": (rows - n_val - n_test, rows - n_test),
        "test": (rows - n_test, rows),
    }


def forecast_windows(frame, spec, *, window, horizon, season=0, name="series", source=""):
    """Cut an ordered series into windows split by time, with raw values and training statistics.

    Args:
        frame: rows ordered by time with the target and feature columns (from `read_series_csv`).
        spec: its `SeriesSpec`.
        window: steps the model reads.
        horizon: steps ahead it forecasts (1 = the next value).
        season: a season length for the seasonal-naive baseline (0: none).
        name, source: how the logs name the series.

    Returns:
        `SequenceData` with x (windows, window, 1 + features) and y (windows, window, horizon), all
        raw values; `extras` holds the series, the spec, the scaling statistics of the training
        rows and the index of each window's last row.

    Raises:
        ZooError: for a horizon or window below 1, too few rows, or a window that does not fit the
            training part.
    """
    from zoo.datasets import sequences

    rows = len(frame)
    if horizon < 1 or window < 1:
        raise ZooError(f"`window` and `horizon` must be at least 1. Received: window={window}, horizon={horizon}")
    if season < 0:
        raise ZooError(f"`season` must be 0 (none) or a number of steps. Received: {season}")
    if rows < MIN_ROWS:
        raise ZooError(
            f"The series {name} has {rows} rows: too few to split by time; a forecast needs {MIN_ROWS} or more."
        )
    bounds = split_bounds(rows, horizon)
    shortest = min(bounds["validation"][1] - bounds["validation"][0], bounds["test"][1] - bounds["test"][0])
    if horizon > shortest:
        raise ZooError(
            f"Horizon {horizon} is longer than the validation or test part of {name} ({shortest} of {rows} rows); "
            f"use `horizon` <= {shortest} or a longer series."
        )
    train_rows = bounds["train"][1]
    if window + horizon > train_rows - 1:
        raise ZooError(
            f"Window {window} plus horizon {horizon} does not fit in the training part of {name} ({train_rows} of "
            f"{rows} rows, the first 70 %); use `window` <= {max(1, train_rows - 1 - horizon)}."
        )
    if season and season >= train_rows:
        raise ZooError(f"`season={season}` is longer than the training part of {name} ({train_rows} rows).")
    values = frame[spec.columns()].to_numpy(dtype="float64")
    target = values[:, 0]
    # Window ending at row e: inputs rows e-window+1..e, step t's targets rows t+1..t+horizon.
    ends = np.arange(window - 1, rows - horizon)
    steps = ends[:, None] + np.arange(-window + 1, 1)[None, :]
    ahead = np.arange(1, horizon + 1)
    arrays, last_rows = {}, {}
    for split, (start, end) in bounds.items():
        # The forecast targets e+1..e+horizon all lie inside the split.
        chosen = (ends + 1 >= start) & (ends + horizon <= end - 1)
        x = values[steps[chosen]].astype("float32")
        y = target[steps[chosen][..., None] + ahead].astype("float32")
        arrays[split], last_rows[split] = (x, y), ends[chosen]
    train = values[: bounds["train"][1]]
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    scaling = {"input_mean": train.mean(axis=0).tolist(), "input_std": std.tolist()}
    scaling |= {"output_mean": [scaling["input_mean"][0]], "output_std": [scaling["input_std"][0]]}
    return sequences.SequenceData(
        *arrays["train"],
        *arrays["validation"],
        *arrays["test"],
        "many_to_many",
        "regression",
        horizon,
        [],
        f"{name}_forecast",
        source,
        extras={
            "series": target,
            "times": frame["_time"].to_numpy(),
            "spec": spec,
            "bounds": bounds,
            "last_rows": last_rows,
            "scaling": scaling,
            "window": window,
            "horizon": horizon,
            "season": season,
            "values": values,
        },
    )
