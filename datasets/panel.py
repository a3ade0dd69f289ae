"""Several series in one CSV (long format: an id column beside the time and value columns), cut
into windows for one global network, as DeepAR and N-BEATS train one model on many series.

Each series is ordered, checked and split by time on its own exactly as a single series is
(`series.forecast_windows`: first 70 % train, next 10 % validation, last 20 % test of *its* rows),
so a window never crosses two series and every test window's targets lie in the last 20 % of its
series. The windows of all series are then stacked: the network trains on every series' training
windows at once. Each series keeps its own `SequenceData` ("members"), on which the recipe judges
the baselines and statistical peers per series, as a forecaster would fit them.

    groups, spec = read_panel_csv("shops.csv", target="sales", series_column="shop", time_column="week")
    seq = panel_windows(groups, spec, window=12, horizon=1, name="shops")
"""

import numpy as np

from zoo.datasets import series
from zoo.errors import ZooError, closest


def read_panel_csv(path, target, series_column, time_column=None, features=()):
    """Read a long-format CSV and return ({series id: ordered frame}, spec) in order of first appearance.

    Raises:
        ZooError: for a missing column, the id column named as the target/time/feature, or any
            error `series.order_by_time` finds in one series (named in the message).
    """
    from zoo.datasets import tabular

    frame = tabular.read_frame(path)
    if series_column not in frame.columns:
        raise ZooError(
            f"Column '{series_column}' (`series_column`) is not in {path}.{closest(series_column, frame.columns)} "
            f"Columns: {', '.join(map(str, frame.columns))}."
        )
    if series_column in (target, time_column, *features):
        raise ZooError(
            f"Column '{series_column}' names the series; it cannot also be `target`, `time_column` or `features`."
        )
    for column, flag in [(target, "`target`"), *((f, "`features`") for f in features)] + (
        [(time_column, "`time_column`")] if time_column else []
    ):
        if column not in frame.columns:
            raise ZooError(
                f"Column '{column}' ({flag}) is not in {path}.{closest(column, frame.columns)} "
                f"Columns: {', '.join(map(str, frame.columns))}."
            )
    ids = frame[series_column]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise ZooError(f"Column '{series_column}' of {path} is empty at row {row + 1}; give every row its series id.")
    groups, spec = {}, None
    for key, rows in frame.groupby(ids.astype(str), sort=False):
        checked, spec_one = series.read_series_frame(
            rows.reset_index(drop=True), target, time_column, features, f"series '{key}' of {path}"
        )
        if spec is not None and spec_one.time_step != spec.time_step and spec.time_kind != "row":
            raise ZooError(
                f"Series '{key}' of {path} steps by {spec_one.time_step} where the others step by {spec.time_step}; "
                "one model reads windows of one frequency: resample the series to a common step."
            )
        groups[key], spec = checked, spec_one
    return groups, spec


def panel_windows(groups, spec, *, window, horizon, season=0, name="series", source=""):
    """Windows of every series split by time within each series, stacked for one network.

    Returns:
        `SequenceData` like `series.forecast_windows`'s, whose extras hold "members" ({id: that
        series' own SequenceData}), "scaling" (statistics of every series' training rows), the
        window, horizon, season and spec.

    Raises:
        ZooError: naming the series that is too short for a window in each split.
    """
    from zoo.datasets import sequences

    members = {}
    for key, frame in groups.items():
        try:
            members[key] = series.forecast_windows(
                frame, spec, window=window, horizon=horizon, season=season, name=f"'{key}' of {name}", source=source
            )
        except ZooError as error:
            # Every series needs a window in each split: the other fix is to leave that one out.
            raise ZooError(f"{str(error).rstrip('.')}; or drop series '{key}' from the file.") from None
    parts = list(members.values())

    def stack(attribute):
        return np.concatenate([getattr(part, attribute) for part in parts])

    train = np.concatenate(
        [part.extras["values"][: part.extras["bounds"]["train"][1]] for part in parts]
    )  # every series' training rows: the statistics of `transform=none`
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    scaling = {"input_mean": train.mean(axis=0).tolist(), "input_std": std.tolist()}
    scaling |= {"output_mean": [scaling["input_mean"][0]], "output_std": [scaling["input_std"][0]]}
    return sequences.SequenceData(
        stack("x_train"),
        stack("y_train"),
        stack("x_val"),
        stack("y_val"),
        stack("x_test"),
        stack("y_test"),
        "many_to_many",
        "regression",
        horizon,
        [],
        f"{name}_forecast",
        source,
        extras={
            "members": members,
            "spec": spec,
            "scaling": scaling,
            "window": window,
            "horizon": horizon,
            "season": season,
        },
    )
