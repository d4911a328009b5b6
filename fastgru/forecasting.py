"""From a dated series to a dated forecast: ``GRUForecaster`` (scaling, windows, recursive
forecasts) and backtests against naive baselines. The data checks are in :mod:`fastgru.data`
and re-exported here."""

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from ._atomic import unchanged_on_failure
from .data import (
    FILL_METHODS,
    SCALERS,
    DataError,
    DateWarning,
    default_season_length,
    fill_values,
    fit_scaler,
    forecast_metrics,
    frequency_of,
    infer_frequency,
    prepare_frame,
    read_csv,
)
from .serving import forecaster_attributes, forecaster_params, recursive_forecast
from .windows import make_windows

# The data helpers live in fastgru.data (no scikit-learn import); re-exported here.
__all__ = [
    "GRUForecaster", "DataError", "DateWarning", "FILL_METHODS", "SCALERS", "read_csv",
    "prepare_frame", "infer_frequency", "default_season_length", "fit_scaler",
    "forecast_metrics",
]  # fmt: skip


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
        Period of the seasonal-naive baseline in steps; by default a day of sub-daily data
        (24 hours, 96 quarter-hours) and a year of anything coarser (365 days, 52 weeks,
        12 months, 4 quarters); see :func:`default_season_length`.
    units, epochs, batch_size, learning_rate, optimizer, loss, reset_after, clip_norm, \
early_stopping, validation_fraction, n_iter_no_change, random_state, device, dtype, verbose
        Passed to :class:`~fastgru.GRURegressor`.

    Attributes
    ----------
    regressor_ : GRURegressor
    columns_ : list of str
        ``[target, *features]``.
    freq_ : str
        Frequency of the series: a pandas offset alias, or ``M@d`` / ``kM@d`` (one or k
        calendar months on day d, which pandas has no alias for; see
        :func:`fastgru.data.step_offset`).
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

    def _prepare(self, data, columns=None, keep_missing=False):
        if columns is not None:
            return prepare_frame(data, columns[0], columns[1:], self.date_col, self.fill)
        return prepare_frame(data, self.target, self.features, self.date_col, self.fill,
                             keep_missing)  # fmt: skip

    @staticmethod
    def _frequency(dates, stacklevel):
        """The frequency alias of ``dates``, with a ``DateWarning`` where they are uneven
        (``stacklevel``: the frames from here to the user's call)."""
        freq, uneven = frequency_of(dates)
        if uneven is not None:
            warnings.warn(uneven, DateWarning, stacklevel=stacklevel)
        return freq

    def _regressor(self):
        from .estimator import GRURegressor

        return GRURegressor(**{k: getattr(self, k) for k in self._REGRESSOR_PARAMS})

    def _scale(self, values):
        return (values - self.scale_offset_) / self.scale_

    @unchanged_on_failure  # a fit that fails part way changes nothing
    def fit(self, data):
        """Fit the scaler and the network on a dated series.

        Parameters
        ----------
        data : pandas.Series, pandas.DataFrame, or the path of a CSV file
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
        self.freq_ = self._frequency(dates, stacklevel=4)  # (fit is wrapped: one more)
        self.last_date_ = dates[-1]
        self.scale_offset_, self.scale_ = fit_scaler(self.scaler or "none", values, columns)
        X, y = make_windows(self._scale(values), self.window, self.horizon, target=0)
        reg = self._regressor()
        reg.fit(X, y if self.horizon > 1 else y[:, 0])
        self.regressor_ = reg
        self.history_ = values[-self.window :].copy()
        self.n_train_ = len(values)
        return self

    def predict(self, steps=None, data=None, future=None):
        """Forecast the next ``steps`` dates in original units.

        Parameters
        ----------
        steps : int, optional
            How many future steps; default ``horizon``.
        data : pandas.Series, DataFrame or CSV path, optional
            Recent history to forecast from (its last ``window`` rows, with the same columns
            as in ``fit``); by default the end of the training data.
        future : pandas.DataFrame or Series, optional
            Values of the ``features`` columns at the forecast dates, needed when
            forecasting more than ``horizon`` steps with features: indexed by dates (the
            rows of the forecast dates are taken, wherever they are), or else its rows in
            order, one per forecast date. A Series stands for the column it is named after
            (or the one feature).

        Returns
        -------
        pandas.Series
            Named after the target, indexed by the next ``steps`` dates.
        """
        check_is_fitted(self, "regressor_")
        return recursive_forecast(self, self.regressor_.predict, steps, data, future)

    def backtest(self, data, test_size=0.1, refit_every=None):
        """Evaluate the model on the end of a series against naive baselines.

        A copy of this forecaster is trained on the data before the test period. From every
        origin in the test period it forecasts the next ``horizon`` steps from the true
        history (holdout); with ``refit_every=k`` it is retrained on all data before each
        block of ``k`` origins (rolling origin). The baselines forecast the last observed
        value (naive) and the value one season earlier (seasonal naive).

        Parameters
        ----------
        data : pandas.Series, DataFrame or CSV path
        test_size : float in (0, 1) or int, default=0.1
            Fraction or number of final rows to forecast.
        refit_every : int, optional

        Returns
        -------
        pandas.DataFrame
            Rows ``model``, ``naive``, ``seasonal_naive``; columns ``MAE``, ``RMSE``,
            ``MAPE`` (percent) and ``origins``, the number of forecast origins scored: all of
            the test period's, but for the seasonal baseline, which has no forecast from an
            origin less than a season after the start of the data (its scores are then on
            fewer origins, and NaN on none). The forecasts themselves are in
            ``backtest_predictions_``.

        Notes
        -----
        With ``fill="ffill"`` or ``"interpolate"`` the data before the test period is filled
        on its own; in the test period a missing value is the last one seen before it (no
        later value is known at an origin), and a missing actual value is not scored.
        """
        self._check_params()
        causal = self.fill in ("ffill", "interpolate")  # (then filled below, in two parts)
        dates, values, columns = self._prepare(data, keep_missing=causal)
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
        if n_train <= 0:
            raise DataError(f"the test period of {n_test} rows leaves none of the data's {n} "
                            "rows to train on; use a smaller test_size")  # fmt: skip
        if n_test < H:
            raise DataError(f"the test period has {n_test} rows, fewer than horizon = {H}")
        if n_train < self.window + H:
            raise DataError(f"only {n_train} rows before the test period; window + horizon = "
                            f"{self.window + H} are needed to train")  # fmt: skip
        freq = self._frequency(dates, stacklevel=3)
        m = self.season_length or default_season_length(freq)
        observed = values[:, 0]
        if causal:
            # Filled over the whole series, the test period's values leaked into training,
            # the scaler and the baselines (a gap before it interpolated towards them), and
            # filled values were scored as actuals. The training part is filled on its own;
            # after it, only the last value seen is carried forward (nothing later is
            # known at an origin); missing actual values are not scored.
            empty = np.isnan(values[:n_train]).all(axis=0)
            if empty.any():
                raise DataError(f"column {columns[int(np.argmax(empty))]!r} has no values in the "
                                f"{n_train} rows before the test period")  # fmt: skip
            values = values.copy()
            values[:n_train] = fill_values(dates[:n_train], values[:n_train], self.fill)
            values = pd.DataFrame(values).ffill().to_numpy(dtype=np.float64)
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
            with warnings.catch_warnings():  # said once, by backtest itself (below)
                warnings.simplefilter("ignore", DateWarning)
                fc = clone(self).set_params(**params).fit(frame)
            scaled = fc._scale(values)
            X = np.stack([scaled[o - self.window : o] for o in block])
            p = fc.regressor_.predict(X).reshape(len(block), H)
            model_pred[start : start + len(block)] = p * fc.scale_[0] + fc.scale_offset_[0]
        target = values[:, 0]
        actual = np.stack([observed[o : o + H] for o in origins])
        naive = np.repeat(target[origins - 1][:, None], H, axis=1)
        seasonal = np.empty_like(naive)
        for h in range(1, H + 1):
            idx = origins - 1 + h - m * ((h - 1) // m + 1)
            seasonal[:, h - 1] = np.where(idx >= 0, target[np.maximum(idx, 0)], np.nan)
        # The seasonal baseline has no forecast from origins less than a season into the
        # data: it is scored on the others, and the table says on how many.
        ok = ~np.isnan(seasonal).any(axis=1)
        no_season = dict.fromkeys(("MAE", "RMSE", "MAPE"), float("nan"))
        seen = ~np.isnan(actual)  # (missing actual values are not scored)
        n_origins = int(seen.any(axis=1).sum())
        ok_seen = seen & ok[:, None]
        rows = {
            "model": {**forecast_metrics(actual[seen], model_pred[seen]), "origins": n_origins},
            "naive": {**forecast_metrics(actual[seen], naive[seen]), "origins": n_origins},
            "seasonal_naive": {
                **(forecast_metrics(actual[ok_seen], seasonal[ok_seen]) if ok_seen.any()
                   else no_season),
                "origins": int(ok_seen.any(axis=1).sum()),
            },
        }  # fmt: skip
        self.backtest_predictions_ = pd.DataFrame(
            {"origin": np.repeat(dates[origins - 1], H), "step": np.tile(np.arange(1, H + 1),
             len(origins)), "actual": actual.ravel(), "model": model_pred.ravel(),
             "naive": naive.ravel(), "seasonal_naive": seasonal.ravel()}
        )  # fmt: skip
        self.season_length_ = m
        table = pd.DataFrame(rows).T[["MAE", "RMSE", "MAPE", "origins"]]
        return table.astype({"MAE": float, "RMSE": float, "MAPE": float, "origins": int})

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
            "last_date": self.last_date_.isoformat(), "tz": _zone_name(self.last_date_),
            "n_train": int(self.n_train_),
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
        from .io import read_model

        header, arrays = read_model(path, kind="GRUForecaster")
        return cls._from_state(header["metadata"], arrays, str(path))

    @classmethod
    def _from_state(cls, meta, arrays, where):
        """The forecaster stored as ``meta`` and ``arrays`` (from ``io.read_model``)."""
        from .io import ModelFileError, regressor_from_state

        try:
            fc = cls(**forecaster_params(meta))
            fc.regressor_ = regressor_from_state(meta["regressor"], arrays, where=where)
            for name, value in forecaster_attributes(meta, arrays, fc.window, where).items():
                setattr(fc, name, value)
        except ModelFileError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                f"{where} has incompatible or incomplete metadata ({exc})"
            ) from None
        return fc


def _zone_name(ts):
    """The name of ``ts``'s time zone (``Europe/Berlin``), or ``None`` (none, or a fixed
    offset, which the ISO date keeps): the ISO date alone loads as a fixed offset, and the
    forecast dates after a change of summer time came out an hour off."""
    tz = ts.tzinfo
    name = getattr(tz, "key", None) or getattr(tz, "zone", None)
    return name if isinstance(name, str) else ("UTC" if str(tz) == "UTC" else None)
