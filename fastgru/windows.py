"""Sliding windows for supervised sequence-to-value forecasting.

:func:`make_windows` turns a series into ``(X, y)`` training pairs and
:func:`make_inference_window` cuts the most recent window for prediction. Both
are pure NumPy and validate their input with messages that name the problem
and how to fix it.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np

__all__ = ["make_inference_window", "make_windows"]

_NUMERIC_KINDS = "biuf"


def _check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an ``int``, or raise if it is not a positive integer."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise TypeError(
            f"{name} must be a positive int, got {type(value).__name__} {value!r}; "
            f"pass an integer such as {name}=1"
        )
    if value < 1:
        raise ValueError(f"{name} must be a positive int (>= 1), got {value!r}")
    return int(value)


def _pandas_dtypes(values: Any) -> list[Any] | None:
    """Column dtypes of a pandas Series/DataFrame (duck-typed), else ``None``."""
    if not hasattr(values, "to_numpy"):
        return None
    dtypes = getattr(values, "dtypes", None)
    if dtypes is not None and hasattr(dtypes, "items"):  # DataFrame: a Series of dtypes
        return list(dtypes.to_numpy())
    dtype = getattr(values, "dtype", None)
    return None if dtype is None else [dtype]


def _as_2d_float(values: Any) -> np.ndarray:
    """Convert ``values`` to a 2-D float array of shape (n, n_features).

    float32 input stays float32; everything else becomes float64.
    """
    non_numeric = (
        "values must be numeric (int, float or bool), got {what}; convert it first, "
        "e.g. with pandas.to_numeric or by selecting only the numeric columns"
    )
    pd_dtypes = _pandas_dtypes(values)
    if pd_dtypes is not None:
        bad = [dt for dt in pd_dtypes if getattr(dt, "kind", "O") not in _NUMERIC_KINDS]
        if bad:
            raise TypeError(non_numeric.format(what=f"dtype {bad[0]}"))
        if all(isinstance(dt, np.dtype) for dt in pd_dtypes):
            arr = np.asarray(values)
        else:  # pandas extension dtypes (Int64, Float64, boolean) may hold pd.NA
            dtype = np.float32 if all(str(dt) == "float32" for dt in pd_dtypes) else np.float64
            arr = values.to_numpy(dtype=dtype, na_value=np.nan)
    else:
        try:
            arr = np.asarray(values)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"values could not be converted to an array ({exc}); pass a rectangular "
                "array of shape (n,) or (n, n_features)"
            ) from exc

    if arr.dtype.kind == "O":
        for item in arr.flat:
            if not (item is None or isinstance(item, (Integral, float, np.floating))):
                raise TypeError(non_numeric.format(what=f"an element {item!r}"))
        arr = arr.astype(np.float64)  # None becomes NaN and is reported below
    elif arr.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(non_numeric.format(what=f"dtype {arr.dtype}"))

    if arr.ndim == 0:
        raise ValueError(
            f"values must be 1-D (n,) or 2-D (n, n_features), got a scalar {arr.item()!r}; "
            "pass a sequence of observations"
        )
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2:
        raise ValueError(
            f"values must be 1-D (n,) or 2-D (n, n_features), got a {arr.ndim}-D array of "
            f"shape {arr.shape}; reshape it, e.g. values.reshape(len(values), -1)"
        )
    if arr.shape[1] == 0:
        raise ValueError("values has no feature columns (shape (n, 0)); pass at least one column")

    dtype = np.float32 if arr.dtype == np.float32 else np.float64
    return np.asarray(arr, dtype=dtype)


def _check_finite(arr: np.ndarray, row_offset: int = 0) -> None:
    """Raise if ``arr`` holds NaN or inf, naming the first bad row."""
    finite_rows = np.isfinite(arr).all(axis=1)
    if not finite_rows.all():
        row = int(np.flatnonzero(~finite_rows)[0])
        raise ValueError(
            f"values contain NaN or inf, first at row {row + row_offset} "
            f"(value(s) {arr[row].tolist()}); fill or drop missing values first, "
            "e.g. with pandas .interpolate() or .dropna()"
        )


def _check_target(target: Any, n_features: int) -> int:
    if isinstance(target, (bool, np.bool_)) or not isinstance(target, Integral):
        raise TypeError(
            f"target must be an int column index, got {type(target).__name__} {target!r}"
        )
    if not 0 <= target < n_features:
        raise ValueError(
            f"target={target} is out of range for {n_features} feature column(s); "
            f"use a column index in [0, {n_features - 1}]"
        )
    return int(target)


def make_windows(
    values: Any, window: int, horizon: int = 1, step: int = 1, target: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a series into overlapping input windows and forecast targets.

    Parameters
    ----------
    values : array-like of shape (n,) or (n, n_features)
        Numeric series, oldest row first: NumPy array, list, pandas Series or
        DataFrame. Must not contain NaN or inf.
    window : int
        Number of past rows in each input window (>= 1).
    horizon : int, default 1
        Number of future values of the ``target`` column to predict (>= 1).
    step : int, default 1
        Distance in rows between the starts of consecutive windows (>= 1).
    target : int, default 0
        Column index of the feature to forecast, in ``[0, n_features)``.

    Returns
    -------
    X : numpy.ndarray of shape (n_windows, window, n_features)
        ``X[i] = values[i*step : i*step + window]``.
    y : numpy.ndarray of shape (n_windows, horizon)
        ``y[i] = values[i*step + window : i*step + window + horizon, target]``.

    Both are C-contiguous copies, ``float32`` if ``values`` is ``float32`` and
    ``float64`` otherwise. Every usable window is returned:
    ``n_windows = (n - window - horizon) // step + 1``, so the last window's
    target ends at or before the last row.

    Raises
    ------
    TypeError
        If ``window``, ``horizon``, ``step`` or ``target`` is not an int, or
        ``values`` is not numeric.
    ValueError
        If ``window``, ``horizon`` or ``step`` is < 1, ``target`` is out of
        range, ``values`` is not 1-D or 2-D, contains NaN/inf, or has fewer than
        ``window + horizon`` rows.

    Examples
    --------
    >>> X, y = make_windows(np.arange(6), window=3)
    >>> X.shape, y.shape
    ((3, 3, 1), (3, 1))
    >>> X[-1, :, 0].tolist(), y[-1].tolist()
    ([2.0, 3.0, 4.0], [5.0])
    """
    window = _check_positive_int(window, "window")
    horizon = _check_positive_int(horizon, "horizon")
    step = _check_positive_int(step, "step")
    arr = _as_2d_float(values)
    n, n_features = arr.shape
    target = _check_target(target, n_features)
    needed = window + horizon
    if n < needed:
        raise ValueError(
            f"series too short: needs at least window + horizon = {needed} rows, got {n}; "
            "use a smaller window or horizon, or more data"
        )
    _check_finite(arr)

    n_windows = (n - needed) // step + 1
    starts = np.arange(n_windows) * step
    X = arr[starts[:, None] + np.arange(window)]  # (n_windows, window, n_features)
    y = arr[starts[:, None] + window + np.arange(horizon), target]  # (n_windows, horizon)
    return np.ascontiguousarray(X), np.ascontiguousarray(y)


def make_inference_window(values: Any, window: int) -> np.ndarray:
    """Return the most recent ``window`` rows as a batch of one.

    Parameters
    ----------
    values : array-like of shape (n,) or (n, n_features)
        Numeric series, oldest row first: NumPy array, list, pandas Series or
        DataFrame. The last ``window`` rows must not contain NaN or inf.
    window : int
        Number of rows the model expects (>= 1).

    Returns
    -------
    numpy.ndarray of shape (1, window, n_features)
        ``values[-window:]`` as a C-contiguous copy, ``float32`` if ``values``
        is ``float32`` and ``float64`` otherwise.

    Raises
    ------
    TypeError
        If ``window`` is not an int or ``values`` is not numeric.
    ValueError
        If ``window`` < 1, ``values`` is not 1-D or 2-D, has fewer than
        ``window`` rows, or its last ``window`` rows contain NaN/inf (the error
        names the row index within ``values``).

    Examples
    --------
    >>> make_inference_window([1, 2, 3, 4], window=2).tolist()
    [[[3.0], [4.0]]]
    """
    window = _check_positive_int(window, "window")
    arr = _as_2d_float(values)
    n = arr.shape[0]
    if n < window:
        raise ValueError(
            f"series too short: needs at least window = {window} rows, got {n}; "
            "use a smaller window or more data"
        )
    last = arr[n - window :]
    _check_finite(last, row_offset=n - window)
    return np.ascontiguousarray(last[None, :, :])
