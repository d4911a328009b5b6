"""From a dated series to a dated forecast: data checks, scaling, windows, ``GRUForecaster``,
backtests against naive baselines."""

import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from .windows import make_windows

FILL_METHODS = ("ffill", "interpolate", "drop")
SCALERS = ("minmax", "standard", "none")
_DATE_NAMES = ("date", "ds", "datetime", "timestamp", "time")


class DataError(ValueError):
    """Input data that cannot be used as given; the message names the column, the row and
    the fix."""


# ------------------------------------------------------------------ reading and checking
def read_csv(path, date_col=None):
    """Read a CSV file for forecasting, with one-line errors for unreadable input.

    Parameters
    ----------
    path : str or Path
    date_col : str, optional
        Must be one of the file's columns when given.

    Returns
    -------
    pandas.DataFrame
        The raw table (checked and converted later by :func:`prepare_frame`).
    """
    import os

    if not os.path.exists(path):
        raise FileNotFoundError(f"file {path} does not exist")
    if os.path.isdir(path):
        raise DataError(f"{path} is a folder, not a CSV file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty; expected a CSV with a header row") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        msg = str(exc).strip().splitlines()[-1]
        raise DataError(f"{path} is not a readable CSV file ({msg})") from None
    if df.shape[0] == 0:
        raise DataError(f"{path} has a header but no data rows")
    if date_col is not None and date_col not in df.columns:
        raise DataError(f"{path} has no date column {date_col!r}; available columns: "
                        f"{', '.join(map(str, df.columns))}")  # fmt: skip
    return df


def _fmt_date(ts):
    """A date for messages; with the time of day when it is not midnight (hourly data)."""
    ts = pd.Timestamp(ts)
    return f"{ts:%Y-%m-%d}" if ts == ts.normalize() else f"{ts:%Y-%m-%d %H:%M:%S}"


def _fmt_rows(rows, dates=None, limit=5):
    shown = [f"{r + 1}" + (f" ({_fmt_date(dates[r])})" if dates is not None else "")
             for r in rows[:limit]]  # fmt: skip
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(shown) + more


def _find_date_column(df, date_col):
    if date_col is not None:
        if date_col not in df.columns:
            raise DataError(f"no date column {date_col!r}; available columns: "
                            f"{', '.join(map(str, df.columns))}")  # fmt: skip
        return date_col
    for c in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[c]):
            return c
    for c in df.columns:
        if str(c).strip().lower() in _DATE_NAMES:
            return c
    return None


def _to_dates(values, name):
    raw = pd.Series(values)
    parsed = pd.to_datetime(raw, errors="coerce", format="mixed")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        r = bad[0]
        raise DataError(f"date column {name!r} has a value that is not a date at row {r + 1}: "
                        f"{raw.iloc[r]!r}")  # fmt: skip
    return pd.DatetimeIndex(parsed)


def prepare_frame(data, target=None, features=None, date_col=None, fill=None):
    """Check and convert dated data into numeric inputs.

    Parameters
    ----------
    data : pandas.Series or pandas.DataFrame
        Indexed by dates, or a DataFrame with a date column (``date_col``, or one found by
        dtype or by name: Date, ds, datetime, timestamp, time).
    target : str, optional
        Column to forecast; by default the only numeric non-date column.
    features : sequence of str, optional
        Further columns used as inputs.
    date_col : str, optional
    fill : {None, "ffill", "interpolate", "drop"}
        What to do with missing values; ``None`` raises an error naming the rows.

    Returns
    -------
    dates : pandas.DatetimeIndex
    values : ndarray of shape (n, 1 + n_features), float64; column 0 is the target
    columns : list of str
        ``[target, *features]``.

    Raises
    ------
    DataError
        With a one-line message naming the problem, the column and the row.
    """
    if fill is not None and fill not in FILL_METHODS:
        raise DataError(f"fill must be one of {', '.join(FILL_METHODS)} or None, got {fill!r}")
    if isinstance(data, pd.Series):
        name = data.name if data.name is not None else "value"
        if target is not None and target != name:
            raise DataError(f"the series is named {name!r}, not {target!r}")
        data = data.to_frame(name=name)
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"expected a pandas Series or DataFrame indexed by dates (or with a "
                        f"date column), got {type(data).__name__}")  # fmt: skip
    df = data
    dcol = _find_date_column(df, date_col)
    if dcol is not None:
        dates = _to_dates(df[dcol].to_numpy(), dcol)
        df = df.drop(columns=[dcol])
    elif isinstance(df.index, pd.DatetimeIndex):
        dates = df.index
    else:
        raise DataError(
            "no dates found: index the data by dates or name the date column "
            f"(date_col / --date-col); columns: {', '.join(map(str, df.columns))}"
        )
    available = [str(c) for c in df.columns]
    if target is None:
        numeric = [c for c in df.columns
                   if pd.to_numeric(df[c], errors="coerce").notna().any()]  # fmt: skip
        if len(numeric) != 1:
            raise DataError("name the column to forecast (target / --target); available "
                            f"columns: {', '.join(available)}")  # fmt: skip
        target = numeric[0]
    features = [] if features is None else list(features)
    for c in [target, *features]:
        if c not in df.columns:
            raise DataError(f"no column {c!r}; available columns: {', '.join(available)}")
    if target in features:
        raise DataError(f"column {target!r} is the target; do not list it in features too")
    columns = [target, *features]

    values = np.empty((len(df), len(columns)))
    for j, c in enumerate(columns):
        raw = df[c]
        num = pd.to_numeric(raw, errors="coerce")
        bad = np.flatnonzero(num.isna().to_numpy() & raw.notna().to_numpy())
        if len(bad):
            r = bad[0]
            raise DataError(f"column {c!r} has a non-numeric value {raw.iloc[r]!r} at row {r + 1}"
                            f" ({_fmt_date(dates[r])})")  # fmt: skip
        values[:, j] = num.to_numpy(dtype=np.float64, na_value=np.nan)
        inf = np.flatnonzero(np.isinf(values[:, j]))
        if len(inf):
            raise DataError(f"column {c!r} has an infinite value at row {inf[0] + 1}")

    order = dates.to_numpy()
    if len(order) > 1:
        back = np.flatnonzero(order[1:] < order[:-1])
        if len(back):
            r = back[0] + 1
            raise DataError(f"dates are not sorted: row {r + 1} ({_fmt_date(dates[r])}) comes "
                            f"after {_fmt_date(dates[r - 1])}; sort the data by date")  # fmt: skip
        dup = np.flatnonzero(order[1:] == order[:-1])
        if len(dup):
            r = dup[0] + 1
            raise DataError(f"duplicate date {_fmt_date(dates[r])} at rows {r} and {r + 1}; keep "
                            "one row per date")  # fmt: skip

    missing = np.isnan(values)
    if missing.any():
        if fill is None:
            j = int(np.flatnonzero(missing.any(axis=0))[0])
            rows = np.flatnonzero(missing[:, j])
            raise DataError(f"column {columns[j]!r} has missing values at rows "
                            f"{_fmt_rows(rows, dates)}; fill them with fill='ffill', "
                            "'interpolate' or 'drop' (--fill)")  # fmt: skip
        frame = pd.DataFrame(values, index=dates)
        if fill == "drop":
            keep = ~missing.any(axis=1)
            frame = frame[keep]
            dates = dates[keep]
        elif fill == "ffill":
            frame = frame.ffill().bfill()
        else:
            frame = frame.interpolate(method="time", limit_direction="both")
        values = frame.to_numpy(dtype=np.float64)
    return dates, values, columns


def infer_frequency(dates):
    """The step between dates: a pandas frequency alias when regular, else the median gap."""
    if len(dates) >= 3:
        try:
            inferred = pd.DatetimeIndex(dates, freq="infer").freq
        except ValueError:  # irregular or non-unique dates
            inferred = None
        if inferred is not None:
            return inferred.freqstr
    if len(dates) < 2:
        raise DataError("need at least 2 dates to infer the frequency of the series")
    gap = pd.Series(dates[1:] - dates[:-1]).median()
    if gap >= pd.Timedelta(days=1) and gap % pd.Timedelta(days=1) == pd.Timedelta(0):
        return pd.tseries.frequencies.to_offset(f"{gap.days}D").freqstr  # "D", not "24h"
    return pd.tseries.frequencies.to_offset(gap).freqstr


def default_season_length(freq):
    """Seasonal-naive period for a frequency alias: a year of days, a day of hours, ..."""
    base = pd.tseries.frequencies.to_offset(freq).rule_code.upper().split("-")[0]
    return {"D": 365, "B": 5, "H": 24, "W": 52, "M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4,
            "QE": 4, "T": 60, "MIN": 60}.get(base, 1)  # fmt: skip


# ------------------------------------------------------------------ scaling
def fit_scaler(kind, values):
    """Per-column ``(offset, scale)`` so that ``(values - offset) / scale`` is scaled."""
    if kind == "minmax":
        lo, hi = values.min(axis=0), values.max(axis=0)
        return lo, np.where(hi > lo, hi - lo, 1.0)
    if kind == "standard":
        mu, sd = values.mean(axis=0), values.std(axis=0)
        return mu, np.where(sd > 0, sd, 1.0)
    return np.zeros(values.shape[1]), np.ones(values.shape[1])


# ------------------------------------------------------------------ metrics
def forecast_metrics(actual, predicted):
    """MAE, RMSE and MAPE (percent; rows where the actual value is 0 are left out of MAPE)."""
    actual = np.asarray(actual, np.float64).ravel()
    predicted = np.asarray(predicted, np.float64).ravel()
    e = predicted - actual
    nz = actual != 0
    mape = float(np.mean(np.abs(e[nz] / actual[nz])) * 100) if nz.any() else float("nan")
    return {"MAE": float(np.mean(np.abs(e))), "RMSE": float(np.sqrt(np.mean(e * e))),
            "MAPE": mape}  # fmt: skip


class GRUForecaster(BaseEstimator):
    """Forecast a dated series with a stacked GRU: scaling, windows and recursion built in.

    Parameters
    ----------
    window : int, default=100
        Past steps the network sees for each forecast.
    horizon : int, default=1
        Steps the network predicts at once (direct multi-step); ``predict(steps)`` beyond
        ``horizon`` feeds its own forecasts back (recursive).
    target : str, optional
        Column to forecast; by default the only numeric column.
    features : sequence of str, optional
        Other columns used as inputs (their future values are needed to forecast past
        ``horizon``: ``predict(future=...)``).
    date_col : str, optional
        Date column of a DataFrame not indexed by dates (found by name if not given).
    scaler : {"minmax", "standard", "none"}, default="minmax"
        Per-column scaling, fitted on the training data only.
    fill : {None, "ffill", "interpolate", "drop"}, default=None
        Handling of missing values; ``None`` raises an error naming the rows.
    season_length : int, optional
        Period of the seasonal-naive baseline in steps; by default a year of daily data (365),
        a day of hourly data (24), 12 months, 52 weeks, 4 quarters.
    units, epochs, batch_size, learning_rate, optimizer, loss, reset_after, clip_norm, \
early_stopping, validation_fraction, n_iter_no_change, random_state, device, dtype, verbose
        Passed to :class:`~fastgru.GRURegressor`.

    Attributes
    ----------
    regressor_ : GRURegressor
    columns_ : list of str
        ``[target, *features]``.
    freq_ : str
        Frequency of the series (a pandas offset alias).
    last_date_ : pandas.Timestamp
    history_ : ndarray of shape (window, n_columns)
        The last ``window`` rows seen in ``fit``, in original units.
    scale_offset_, scale_ : ndarray
        The scaler: ``scaled = (x - scale_offset_) / scale_``.

    Examples
    --------
    >>> from fastgru import GRUForecaster, load_temperature
    >>> df = load_temperature()
    >>> model = GRUForecaster(window=30, units=16, epochs=1, random_state=0).fit(df)
    >>> model.predict(steps=3).index.strftime("%Y-%m-%d").tolist()
    ['2031-11-27', '2031-11-28', '2031-11-29']
    """

    def __init__(self, window=100, horizon=1, target=None, features=None, date_col=None,
                 scaler="minmax", fill=None, season_length=None, units=(50, 50), epochs=10,
                 batch_size=32, learning_rate=1e-3, optimizer="adam", loss="mse",
                 reset_after=False, clip_norm=None, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, random_state=None,
                 device="auto", dtype="float32", verbose=0):  # fmt: skip
        self.window = window
        self.horizon = horizon
        self.target = target
        self.features = features
        self.date_col = date_col
        self.scaler = scaler
        self.fill = fill
        self.season_length = season_length
        self.units = units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.loss = loss
        self.reset_after = reset_after
        self.clip_norm = clip_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    _REGRESSOR_PARAMS = (
        "units", "epochs", "batch_size", "learning_rate", "optimizer", "loss", "reset_after",
        "clip_norm", "early_stopping", "validation_fraction", "n_iter_no_change",
        "random_state", "device", "dtype", "verbose",
    )  # fmt: skip

    def _check_params(self):
        for name in ("window", "horizon"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.scaler not in SCALERS and self.scaler is not None:
            raise ValueError(f"scaler must be one of {', '.join(SCALERS)}, got {self.scaler!r}")
        if self.fill is not None and self.fill not in FILL_METHODS:
            raise ValueError(f"fill must be one of {', '.join(FILL_METHODS)} or None, got "
                             f"{self.fill!r}")  # fmt: skip
        if self.season_length is not None and (
            not isinstance(self.season_length, numbers.Integral) or self.season_length < 1
        ):
            raise ValueError(f"season_length must be an integer >= 1, got {self.season_length!r}")
        if isinstance(self.features, str):
            raise ValueError("features must be a list of column names, e.g. ['a', 'b'], not a "
                             "string")  # fmt: skip

    def _prepare(self, data, columns=None):
        if columns is not None:
            return prepare_frame(data, columns[0], columns[1:], self.date_col, self.fill)
        return prepare_frame(data, self.target, self.features, self.date_col, self.fill)

    def _regressor(self):
        from .estimator import GRURegressor

        return GRURegressor(**{k: getattr(self, k) for k in self._REGRESSOR_PARAMS})

    def _scale(self, values):
        return (values - self.scale_offset_) / self.scale_

    def fit(self, data):
        """Fit the scaler and the network on a dated series.

        Parameters
        ----------
        data : pandas.Series or pandas.DataFrame
            Indexed by dates or with a date column; see :func:`prepare_frame`.

        Returns
        -------
        self
        """
        self._check_params()
        dates, values, columns = self._prepare(data)
        need = self.window + self.horizon
        if len(values) < need:
            raise DataError(f"the series has {len(values)} rows; window + horizon = {need} "
                            "are needed for one training sample. Use a smaller window or more "
                            "data")  # fmt: skip
        self._regressor()._check_params()  # bad settings fail before any compilation
        self.columns_ = columns
        self.freq_ = infer_frequency(dates)
        self.last_date_ = dates[-1]
        self.scale_offset_, self.scale_ = fit_scaler(self.scaler or "none", values)
        X, y = make_windows(self._scale(values), self.window, self.horizon, target=0)
        reg = self._regressor()
        reg.fit(X, y if self.horizon > 1 else y[:, 0])
        self.regressor_ = reg
        self.history_ = values[-self.window :].copy()
        self.n_train_ = len(values)
        return self

    def _forecast_scaled(self, hist_scaled, steps, future_scaled):
        """Recursive multi-step forecast from one scaled window; returns scaled targets."""
        reg = self.regressor_
        hist = hist_scaled.copy()
        out = []
        while len(out) < steps:
            pred = np.atleast_1d(reg.predict(hist[None])[0])
            k = min(self.horizon, steps - len(out))
            out.extend(pred[:k])
            if len(out) < steps:
                new = np.empty((k, hist.shape[1]))
                new[:, 0] = pred[:k]
                if hist.shape[1] > 1:
                    new[:, 1:] = future_scaled[len(out) - k : len(out), 1:]
                hist = np.vstack([hist, new])[-self.window :]
        return np.asarray(out)

    def predict(self, steps=None, data=None, future=None):
        """Forecast the next ``steps`` dates in original units.

        Parameters
        ----------
        steps : int, optional
            How many future steps; default ``horizon``.
        data : pandas.Series or DataFrame, optional
            Recent history to forecast from (its last ``window`` rows, with the same columns
            as in ``fit``); by default the end of the training data.
        future : pandas.DataFrame, optional
            Values of the ``features`` columns at the forecast dates (rows in order), needed
            when forecasting more than ``horizon`` steps with features.

        Returns
        -------
        pandas.Series
            Named after the target, indexed by the next ``steps`` dates.
        """
        check_is_fitted(self, "regressor_")
        steps = self.horizon if steps is None else steps
        if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        if data is None:
            hist, last = self.history_, self.last_date_
        else:
            dates, values, _ = self._prepare(data, self.columns_)
            if len(values) < self.window:
                raise DataError(f"the data has {len(values)} rows; the model needs the last "
                                f"window = {self.window} rows to forecast")  # fmt: skip
            hist, last = values[-self.window :], dates[-1]
        future_scaled = None
        if len(self.columns_) > 1 and steps > self.horizon:
            if future is None:
                raise DataError(f"forecasting {steps} steps past a horizon of {self.horizon} "
                                f"needs future values of {', '.join(self.columns_[1:])}: pass "
                                "future=DataFrame with those columns")  # fmt: skip
            fut = np.zeros((steps, len(self.columns_)))
            for j, c in enumerate(self.columns_[1:], start=1):
                if c not in future:
                    raise DataError(f"future has no column {c!r}")
                col = pd.to_numeric(pd.Series(future[c]).reset_index(drop=True), errors="coerce")
                if len(col) < steps or col[:steps].isna().any():
                    raise DataError(f"future column {c!r} needs {steps} numeric values")
                fut[:, j] = col.to_numpy()[:steps]
            future_scaled = self._scale(fut)
        pred = self._forecast_scaled(self._scale(hist), steps, future_scaled)
        pred = pred * self.scale_[0] + self.scale_offset_[0]
        index = pd.date_range(start=last, periods=steps + 1, freq=self.freq_)[1:]
        return pd.Series(pred, index=index, name=self.columns_[0])

    def backtest(self, data, test_size=0.1, refit_every=None):
        """Evaluate the model on the end of a series against naive baselines.

        A copy of this forecaster is trained on the data before the test period. From every
        origin in the test period it forecasts the next ``horizon`` steps from the true
        history (holdout); with ``refit_every=k`` it is retrained on all data before each
        block of ``k`` origins (rolling origin). The baselines forecast the last observed
        value (naive) and the value one season earlier (seasonal naive).

        Parameters
        ----------
        data : pandas.Series or DataFrame
        test_size : float in (0, 1) or int, default=0.1
            Fraction or number of final rows to forecast.
        refit_every : int, optional

        Returns
        -------
        pandas.DataFrame
            Rows ``model``, ``naive``, ``seasonal_naive``; columns ``MAE``, ``RMSE``,
            ``MAPE`` (percent). The forecasts themselves are in ``backtest_predictions_``.
        """
        self._check_params()
        dates, values, columns = self._prepare(data)
        n = len(values)
        if isinstance(test_size, numbers.Real) and 0 < test_size < 1:
            n_test = int(round(n * test_size))
        elif isinstance(test_size, numbers.Integral) and test_size >= 1:
            n_test = int(test_size)
        else:
            raise ValueError(f"test_size must be a fraction in (0, 1) or a number of rows >= 1, "
                             f"got {test_size!r}")  # fmt: skip
        H = self.horizon
        n_train = n - n_test
        if n_test < H:
            raise DataError(f"the test period has {n_test} rows, fewer than horizon = {H}")
        if n_train < self.window + H:
            raise DataError(f"only {n_train} rows before the test period; window + horizon = "
                            f"{self.window + H} are needed to train")  # fmt: skip
        freq = infer_frequency(dates)
        m = self.season_length or default_season_length(freq)
        origins = np.arange(n_train, n - H + 1)
        step = len(origins) if refit_every is None else refit_every
        if not isinstance(step, numbers.Integral) or isinstance(step, bool) or step < 1:
            raise ValueError(f"refit_every must be an integer >= 1, got {refit_every!r}")
        params = {**self.get_params(), "target": columns[0], "features": columns[1:] or None,
                  "date_col": None, "fill": None}  # fmt: skip
        model_pred = np.empty((len(origins), H))
        for start in range(0, len(origins), step):
            block = origins[start : start + step]
            frame = pd.DataFrame(values[: block[0]], index=dates[: block[0]], columns=columns)
            fc = clone(self).set_params(**params).fit(frame)
            scaled = fc._scale(values)
            X = np.stack([scaled[o - self.window : o] for o in block])
            p = fc.regressor_.predict(X).reshape(len(block), H)
            model_pred[start : start + len(block)] = p * fc.scale_[0] + fc.scale_offset_[0]
        target = values[:, 0]
        actual = np.stack([target[o : o + H] for o in origins])
        naive = np.repeat(target[origins - 1][:, None], H, axis=1)
        seasonal = np.empty_like(naive)
        for h in range(1, H + 1):
            idx = origins - 1 + h - m * ((h - 1) // m + 1)
            seasonal[:, h - 1] = np.where(idx >= 0, target[np.maximum(idx, 0)], np.nan)
        ok = ~np.isnan(seasonal).any(axis=1)
        no_season = dict.fromkeys(("MAE", "RMSE", "MAPE"), float("nan"))
        rows = {
            "model": forecast_metrics(actual, model_pred),
            "naive": forecast_metrics(actual, naive),
            "seasonal_naive": forecast_metrics(actual[ok], seasonal[ok]) if ok.any() else no_season,
        }
        self.backtest_predictions_ = pd.DataFrame(
            {"origin": np.repeat(dates[origins - 1], H), "step": np.tile(np.arange(1, H + 1),
             len(origins)), "actual": actual.ravel(), "model": model_pred.ravel(),
             "naive": naive.ravel(), "seasonal_naive": seasonal.ravel()}
        )  # fmt: skip
        self.season_length_ = m
        return pd.DataFrame(rows).T[["MAE", "RMSE", "MAPE"]]

    # ------------------------------------------------------------------ files
    def save(self, path):
        """Save the fitted forecaster (weights, scaler, window, columns, frequency and the
        last ``window`` rows) to one file; no pickle, atomic write."""
        from .io import _jsonable, regressor_state, write_model

        check_is_fitted(self, "regressor_")
        reg_meta, arrays = regressor_state(self.regressor_)
        meta = {
            "params": {k: _jsonable(v) for k, v in self.get_params().items()
                       if k not in ("random_state",) or isinstance(v, (int, type(None)))},
            "columns": list(self.columns_), "freq": self.freq_,
            "last_date": self.last_date_.isoformat(), "n_train": int(self.n_train_),
            "regressor": reg_meta,
        }  # fmt: skip
        arrays = {**arrays, "history": self.history_, "scale_offset": self.scale_offset_,
                  "scale": self.scale_}  # fmt: skip
        write_model(path, "GRUForecaster", meta, arrays)

    @classmethod
    def load(cls, path):
        """Load a forecaster saved by :meth:`save`.

        Raises
        ------
        FileNotFoundError
        fastgru.io.ModelFileError
            Not a fastgru model file, truncated, corrupted, or not a forecaster.
        """
        from .io import ModelFileError, read_model, regressor_from_state

        header, arrays = read_model(path, kind="GRUForecaster")
        meta = header["metadata"]
        try:
            params = dict(meta["params"])
            for k in ("units", "features"):
                if isinstance(params.get(k), list):
                    params[k] = tuple(params[k]) if k == "units" else list(params[k])
            fc = cls(**params)
            fc.regressor_ = regressor_from_state(meta["regressor"], arrays, where=str(path))
            fc.columns_ = list(meta["columns"])
            fc.freq_ = meta["freq"]
            fc.last_date_ = pd.Timestamp(meta["last_date"])
            fc.n_train_ = int(meta["n_train"])
            fc.history_ = arrays["history"]
            fc.scale_offset_ = arrays["scale_offset"]
            fc.scale_ = arrays["scale"]
            if fc.history_.shape != (fc.window, len(fc.columns_)):
                raise ModelFileError(f"{path}: stored history has shape {fc.history_.shape}")
        except ModelFileError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                f"{path} has incompatible or incomplete metadata ({exc})"
            ) from None
        return fc
