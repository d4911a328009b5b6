"""Forecasting from a saved model without scikit-learn: what ``fastgru forecast`` runs.

:func:`recursive_forecast` is the forecast of :meth:`GRUForecaster.predict
<fastgru.GRUForecaster.predict>` (scaling, recursion past the horizon, dates), written once
over any ``predict(windows) -> array`` function. :func:`load_forecaster` reads a
``GRUForecaster`` model file into a :class:`SavedForecaster`, which predicts with
:func:`fastgru.engine.predict_cpu` directly: importing scikit-learn (~0.9 s, through
``scipy.stats``) is most of the start-up time of a one-off forecast. The numbers are the
same, bit for bit, as those of ``GRUForecaster.load(path).predict(...)``.

Whatever the light path is not sure to do exactly as the estimator does (a model for
``device="cuda"``, or ``"auto"`` where a GPU may be usable; settings the estimator would
reject; a window of non-finite values) goes to the full estimator, so its errors are the
estimator's own.
"""

import numbers

import numpy as np
import pandas as pd

from .data import DataError, _fmt_date, prepare_frame, step_offset
from .io import _FITTED, ModelFileError, network_spec, read_model
from .settings import settings_ok


# ------------------------------------------------------------------ the forecast itself
def recursive_forecast(model, predict, steps=None, data=None, future=None):
    """Forecast the ``steps`` dates after the history, in original units.

    Parameters
    ----------
    model : GRUForecaster or SavedForecaster
        Read for ``window``, ``horizon``, ``date_col``, ``fill``, ``columns_``, ``freq_``,
        ``last_date_``, ``history_``, ``scale_offset_`` and ``scale_``.
    predict : callable
        ``predict(X)`` with ``X`` of shape ``(1, window, n_columns)`` (scaled) returns the
        network's output for it, as ``GRURegressor.predict`` does.
    steps, data, future
        As in :meth:`GRUForecaster.predict <fastgru.GRUForecaster.predict>`.

    Returns
    -------
    pandas.Series
        Named after the target, indexed by the next ``steps`` dates.
    """
    steps = model.horizon if steps is None else steps
    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    columns = model.columns_
    if data is None:
        hist, last = model.history_, model.last_date_
    else:
        dates, values, _ = prepare_frame(data, columns[0], columns[1:], model.date_col,
                                         model.fill)  # fmt: skip
        if len(values) < model.window:
            raise DataError(f"the data has {len(values)} rows; the model needs the last "
                            f"window = {model.window} rows to forecast")  # fmt: skip
        hist, last = values[-model.window :], dates[-1]
        _check_steps(dates[-max(model.window, 30) :], model.freq_)
    index = forecast_dates(last, model.freq_, steps)
    future_scaled = None
    if len(columns) > 1 and steps > model.horizon:
        if future is None:
            raise DataError(f"forecasting {steps} steps past a horizon of {model.horizon} "
                            f"needs future values of {', '.join(columns[1:])}: pass "
                            "future=DataFrame with those columns, or forecast at most "
                            f"{model.horizon} steps (--steps)")  # fmt: skip
        fut = np.zeros((steps, len(columns)))
        future = _future_rows(future, columns[1:], index)
        for j, c in enumerate(columns[1:], start=1):
            col = pd.to_numeric(future[c], errors="coerce")
            if len(col) < steps or col[:steps].isna().any():
                raise DataError(f"future column {c!r} needs {steps} numeric values")
            fut[:, j] = col.to_numpy()[:steps]
        future_scaled = (fut - model.scale_offset_) / model.scale_
    hist_scaled = (hist - model.scale_offset_) / model.scale_
    pred = _recursive(predict, hist_scaled, steps, model.horizon, model.window, future_scaled)
    pred = pred * model.scale_[0] + model.scale_offset_[0]
    return pd.Series(pred, index=index, name=columns[0])


def _check_steps(dates, freq):
    """Raise a ``DataError`` when most steps of ``dates`` (new history for a forecast) are
    not one step of the model's frequency: the forecast would be dated at ``freq`` from
    data at another (hourly data given to a daily model)."""
    if len(dates) < 2:
        return
    offset = step_offset(freq)
    steps = [a + offset == b for a, b in zip(dates[:-1], dates[1:], strict=True)]
    if 2 * sum(steps) < len(steps):
        r = len(steps) - 1 - steps[::-1].index(False)  # the last step that is not one
        raise DataError(f"the data's dates do not step by the model's frequency {freq} (e.g. "
                        f"{_fmt_date(dates[r])} to {_fmt_date(dates[r + 1])}); pass data at "
                        "that frequency, or train a model on this data")  # fmt: skip


def forecast_dates(last, freq, steps):
    """The ``steps`` dates after ``last`` at frequency ``freq``: one step of the frequency
    after another from ``last`` itself (``pd.date_range(start=last, ...)`` would first roll
    a date that is not on an anchored frequency, a Wednesday for weekly-on-Sunday data,
    forward, and skip a step)."""
    offset = step_offset(freq)
    return pd.date_range(start=pd.Timestamp(last) + offset, periods=steps, freq=offset)


def _future_rows(future, columns, dates):
    """The rows of ``future`` (a DataFrame, or a Series of the one feature) for the
    forecast ``dates``: by date when it is indexed by dates, else its rows in order."""
    if isinstance(future, pd.Series):
        if future.name is None and len(columns) != 1:
            raise DataError(f"future is an unnamed Series; pass a DataFrame with the columns "
                            f"{', '.join(columns)}")  # fmt: skip
        future = future.to_frame(name=columns[0] if future.name is None else future.name)
    if not isinstance(future, pd.DataFrame):
        raise DataError(f"future must be a pandas DataFrame with the columns "
                        f"{', '.join(columns)}, got {type(future).__name__}")  # fmt: skip
    for c in columns:
        if c not in future.columns:
            raise DataError(f"future has no column {c!r}")
    future = future[list(columns)]
    if isinstance(future.index, pd.DatetimeIndex):
        missing = dates.difference(future.index)
        if len(missing):
            raise DataError(f"future has no row for {_fmt_date(missing[0])}; indexed by "
                            f"dates, it needs the forecast dates {_fmt_date(dates[0])} to "
                            f"{_fmt_date(dates[-1])}")  # fmt: skip
        if not future.index.is_unique:
            raise DataError("future has duplicate dates in its index")
        return future.loc[dates].reset_index(drop=True)
    return future.reset_index(drop=True)


def _recursive(predict, hist_scaled, steps, horizon, window, future_scaled):
    """Multi-step forecast from one scaled window: ``horizon`` steps per call, the forecasts
    fed back as history; returns the scaled targets."""
    hist = hist_scaled.copy()
    out = []
    while len(out) < steps:
        pred = np.atleast_1d(predict(hist[None])[0])
        k = min(horizon, steps - len(out))
        out.extend(pred[:k])
        if len(out) < steps:
            new = np.empty((k, hist.shape[1]))
            new[:, 0] = pred[:k]
            if hist.shape[1] > 1:
                new[:, 1:] = future_scaled[len(out) - k : len(out), 1:]
            hist = np.vstack([hist, new])[-window:]
    return np.asarray(out)


# ------------------------------------------------------------------ model files
def forecaster_params(meta):
    """The constructor parameters of a stored ``GRUForecaster``."""
    params = dict(meta["params"])
    for k in ("units", "features"):
        if isinstance(params.get(k), list):
            params[k] = tuple(params[k]) if k == "units" else list(params[k])
    return params


def _last_date(meta):
    """The stored last date, in its time zone when one was named (files without ``tz``:
    the fixed offset of the ISO date)."""
    last = pd.Timestamp(meta["last_date"])
    zone = meta.get("tz")
    return last.tz_convert(zone) if zone and last.tzinfo is not None else last


def forecaster_attributes(meta, arrays, window, where):
    """The fitted attributes of a stored ``GRUForecaster``, all but ``regressor_``.

    Raises ``ModelFileError``, ``KeyError``, ``TypeError`` or ``ValueError`` (the caller
    turns the last three into a ``ModelFileError``).
    """
    attrs = {
        "columns_": list(meta["columns"]), "freq_": meta["freq"],
        "last_date_": _last_date(meta), "n_train_": int(meta["n_train"]),
        "history_": arrays["history"], "scale_offset_": arrays["scale_offset"],
        "scale_": arrays["scale"],
    }  # fmt: skip
    shape = attrs["history_"].shape
    if shape != (window, len(attrs["columns_"])):
        raise ModelFileError(f"{where}: stored history has shape {shape}")
    return attrs


def load_forecaster(path):
    """Load a ``GRUForecaster`` model file for forecasting, without scikit-learn if it can.

    Returns
    -------
    SavedForecaster or GRUForecaster
        The latter when the model needs the full estimator (see the module's notes).

    Raises
    ------
    FileNotFoundError, fastgru.io.ModelFileError
        As :meth:`GRUForecaster.load <fastgru.GRUForecaster.load>`, with the same messages.
    """
    header, arrays = read_model(path, kind="GRUForecaster")
    meta = header["metadata"]
    try:
        light = SavedForecaster._from_state(meta, arrays, str(path))
    except Exception:  # anything unusual: the estimator's loader raises its own error
        light = None
    return light if light is not None else _estimator(meta, arrays, str(path))


def _estimator(meta, arrays, where):
    from .forecasting import GRUForecaster

    return GRUForecaster._from_state(meta, arrays, where)


class _NeedsEstimator(Exception):
    """Raised by the light predict where only the estimator's checks give the right error."""


_FORECASTER_PARAMS = frozenset((
    "window", "horizon", "target", "features", "date_col", "scaler", "fill", "season_length",
    "units", "epochs", "batch_size", "learning_rate", "optimizer", "loss", "reset_after",
    "clip_norm", "early_stopping", "validation_fraction", "n_iter_no_change", "random_state",
    "device", "dtype", "verbose",
))  # fmt: skip
_REGRESSOR_PARAMS = frozenset((
    "units", "epochs", "batch_size", "learning_rate", "optimizer", "loss", "huber_delta",
    "reset_after", "clip_norm", "validation_fraction", "early_stopping", "n_iter_no_change",
    "tol", "shuffle", "random_state", "device", "dtype", "verbose", "warm_start", "beta_1",
    "beta_2", "epsilon", "momentum", "nesterovs_momentum",
))  # fmt: skip


def _runs_on_cpu(device):
    """True when ``GRURegressor`` would predict on the CPU for this ``device`` setting
    without asking CUDA (``estimator.resolve_device``)."""
    from .engine import auto_is_cpu_without_asking

    return device == "cpu" or (device == "auto" and auto_is_cpu_without_asking())


class SavedForecaster:
    """A saved ``GRUForecaster``, read for forecasting only (see :func:`load_forecaster`).

    It has the estimator's parameters and fitted attributes that forecasting reads
    (``window``, ``horizon``, ``date_col``, ``fill``, ``columns_``, ``freq_``,
    ``last_date_``, ``n_train_``, ``history_``, ``scale_offset_``, ``scale_``) and its
    :meth:`predict`. ``fill`` and ``date_col`` may be changed before predicting.
    """

    @classmethod
    def _from_state(cls, meta, arrays, where):
        """The light model, or ``None`` when only the estimator can load this file right."""
        params = forecaster_params(meta)
        reg_meta = meta["regressor"]
        rp, fitted = dict(reg_meta["params"]), reg_meta["fitted"]
        if not (set(params) <= _FORECASTER_PARAMS and set(rp) <= _REGRESSOR_PARAMS
                and {"window", "horizon", "date_col", "fill"} <= set(params)
                and {"units", "dtype", "reset_after", "device"} <= set(rp)
                and settings_ok(rp) and _runs_on_cpu(rp["device"])
                and isinstance(fitted, dict) and set(fitted) <= set(_FITTED)
                and "_y_ndim" in fitted and fitted.get("_input_ndim", 3) == 3):  # fmt: skip
            return None
        window, horizon = params["window"], params["horizon"]
        n_features, n_outputs = fitted["n_features_in_"], fitted["n_outputs_"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                   for v in (window, horizon, n_features, n_outputs)):  # fmt: skip
            return None
        units = rp["units"]
        units = (units,) if isinstance(units, int) else tuple(int(h) for h in units)
        # as io.regressor_from_state rebuilds the network
        spec = network_spec(reg_meta, units, rp["reset_after"], rp["dtype"], n_features)
        theta = arrays["theta"]
        # (network_spec has checked the stored network against n_features and n_outputs)
        if theta.shape != (spec.n_params,) or not {"adam_m", "adam_v", "step"} <= set(arrays):
            return None
        dtype = spec.dtype
        attrs = forecaster_attributes(meta, arrays, window, where)
        if n_features != len(attrs["columns_"]):
            return None
        self = cls()
        self.window, self.horizon = window, horizon
        self.date_col, self.fill = params["date_col"], params["fill"]
        self.__dict__.update(attrs)
        self._spec = spec
        self._theta = np.ascontiguousarray(theta, dtype=dtype)
        self._y_ndim = fitted["_y_ndim"]
        self._state = (meta, arrays, where)
        return self

    def _predict_windows(self, X):
        """``GRURegressor.predict`` for the windows :func:`recursive_forecast` passes: 3-D
        float arrays with one feature per column."""
        from .engine import finite_float_sequences, predict_cpu

        if not finite_float_sequences(X, self._spec.n_features):
            raise _NeedsEstimator

        X = np.ascontiguousarray(X, dtype=self._theta.dtype)
        out = np.asarray(predict_cpu(self._spec, self._theta, X), dtype=np.float64)
        return out.ravel() if self._y_ndim == 1 else out

    def estimator(self):
        """The same model as a full :class:`~fastgru.GRUForecaster` (imports scikit-learn)."""
        fc = _estimator(*self._state)
        fc.date_col, fc.fill = self.date_col, self.fill
        return fc

    def predict(self, steps=None, data=None, future=None):
        """As :meth:`GRUForecaster.predict <fastgru.GRUForecaster.predict>`."""
        try:
            return recursive_forecast(self, self._predict_windows, steps, data, future)
        except _NeedsEstimator:
            return self.estimator().predict(steps, data, future)
