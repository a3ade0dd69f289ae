"""The statistical models a forecaster would use instead of a network, on the network's test windows.

- `ets`: statsmodels' exponential smoothing in state-space form (additive trend, damped or not by
  AIC; an additive season with a season length);
- `arima`: a SARIMAX of small order: d by a KPSS test, D (with a season) by the seasonal strength of
  an STL decomposition, then p <= 2 and q <= 1 by AIC; a constant without differences; with a
  season, a seasonal MA(1) after a seasonal difference, else a seasonal AR(1).

Both are fitted once on the rows before the test span (what the network trains and validates on),
then rolled forward over the test span without refitting: the fitted parameters filter the whole
series (`results.apply(series)`), and each test window's forecasts come from the filtered state at
its last row, as `results.apply(series[: last + 1]).forecast(horizon)` would give them (the tests
check that).
"""

import contextlib
import itertools
import time
import warnings

import numpy as np

# With a season, an STL seasonal strength above this takes a seasonal difference (Hyndman's nsdiffs).
SEASONAL_STRENGTH = 0.64
# Iterations of each ARIMA fit (statsmodels' default 50 for lbfgs).
MAX_ITERATIONS = 50


@contextlib.contextmanager
def _quiet():
    """statsmodels warns about convergence and frequency on small series: the AIC still ranks the fits.

    One BLAS thread: the Kalman filter's matrices are tiny, and threads fighting over 2 busy cores
    made a 128-row SARIMAX fit 10 to 20 times slower (0.5 s against 8 s).
    """
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        yield


def fit_ets(history, season=0):
    """Exponential smoothing with an additive trend (damped or not, by AIC) and season when given."""
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing

    fits = []
    with _quiet():
        for damped in (False, True):
            model = ExponentialSmoothing(history, trend=True, damped_trend=damped, seasonal=season or None)
            fits.append(model.fit(disp=False))
    return min(fits, key=lambda result: result.aic)


def differences(history, season=0):
    """(d, D): a first difference when KPSS rejects level stationarity; a seasonal one when the season is strong."""
    from statsmodels.tsa.stattools import kpss

    with _quiet():
        seasonal_difference = 0
        if season and len(history) >= 2 * season + 1:
            from statsmodels.tsa.seasonal import STL

            parts = STL(history, period=season).fit()
            strength = 1 - np.var(parts.resid) / max(np.var(parts.seasonal + parts.resid), 1e-12)
            seasonal_difference = int(strength > SEASONAL_STRENGTH)
        rest = history[season:] - history[:-season] if seasonal_difference else history
        p_value = kpss(rest, regression="c", nlags="auto")[1]
    return int(p_value < 0.05), seasonal_difference


def fit_arima(history, season=0):
    """A SARIMAX with differences from `differences` and the AIC-best small orders and constant."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    d, seasonal_d = differences(history, season)
    # One seasonal part (a seasonal MA after a seasonal difference, else a seasonal AR) and a constant
    # only without differences keep the search to six fits: every fit costs up to seconds on 2 cores.
    seasonal_order = (0, 1, 1, season) if seasonal_d else ((1, 0, 0, season) if season else (0, 0, 0, 0))
    trend = "c" if d + seasonal_d == 0 else "n"
    best = None
    with _quiet():
        for p, q in itertools.product(range(3), range(2)):
            try:
                model = SARIMAX(
                    history, order=(p, d, q), seasonal_order=seasonal_order, trend=trend, concentrate_scale=True
                )
                result = model.fit(disp=False, maxiter=MAX_ITERATIONS)
            except (np.linalg.LinAlgError, ValueError):
                continue
            if np.isfinite(result.aic) and (best is None or result.aic < best.aic):
                best = result
    return best


def rolled_forecasts(result, series, last_rows, horizon):
    """(windows, horizon) forecasts made at each row in `last_rows` with `result`'s parameters, unrefitted."""
    with _quiet():
        filtered = result.apply(np.asarray(series, dtype="float64")).filter_results

    def at(matrix, times):
        # Time-invariant matrices have a last axis of 1; time-varying ones, one entry per row.
        matrix = np.asarray(matrix)
        return matrix[..., 0][..., None] if matrix.shape[-1] == 1 else matrix[..., times]

    last_rows = np.asarray(last_rows)
    state = filtered.predicted_state[:, last_rows + 1]  # a(t+1 | t), (states, windows)
    forecasts = np.empty((len(last_rows), horizon))
    for step in range(horizon):
        times = last_rows + 1 + step
        design, intercept = at(filtered.design, times), at(filtered.obs_intercept, times)
        forecasts[:, step] = np.einsum("sw,sw->w", np.broadcast_to(design[0], state.shape), state) + intercept[0]
        transition, state_intercept = at(filtered.transition, times), at(filtered.state_intercept, times)
        transition = np.broadcast_to(transition, (*transition.shape[:2], state.shape[1]))
        state = np.einsum("ijw,jw->iw", transition, state) + state_intercept
    return forecasts


def describe(result):
    """A short name of a fitted peer for the logs, e.g. `SARIMAX(1, 1, 1)x(0, 1, 1, 12) trend c`."""
    model = result.model
    if hasattr(model, "order"):
        text = f"SARIMAX{tuple(model.order)}"
        if model.seasonal_periods:
            text += f"x{tuple(model.seasonal_order)}"
        return f"{text} trend {model.trend or 'n'}"
    return f"ETS(A,{'Ad' if model.damped_trend else 'A'},{'A' if model.seasonal else 'N'})"


def peers(seq):
    """Fit ETS and ARIMA on the rows before the test span and forecast the test windows.

    Returns:
        {name: {"forecasts": (windows, horizon), "model": description, "seconds": fit and forecast time}};
        a peer whose fit fails is left out.
    """
    extras = seq.extras
    series, season, horizon = extras["series"], extras["season"], extras["horizon"]
    history = series[: extras["bounds"]["test"][0]].astype("float64")
    found = {}
    for name, fit in (("ets", fit_ets), ("arima", fit_arima)):
        started = time.perf_counter()
        try:
            result = fit(history, season)
        except (np.linalg.LinAlgError, ValueError):
            result = None
        if result is None:
            continue
        forecasts = rolled_forecasts(result, series, extras["last_rows"]["test"], horizon)
        found[name] = {
            "forecasts": forecasts,
            "model": describe(result),
            "seconds": time.perf_counter() - started,
            "result": result,
        }
    return found
