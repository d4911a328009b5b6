"""Dated data for forecasting: reading CSV files, checking and converting frames, the
frequency of a series, scaling and forecast metrics. Pure pandas and NumPy (no
scikit-learn, no Numba), so that serving a saved model imports neither."""

import os
import re

import numpy as np
import pandas as pd

FILL_METHODS = ("ffill", "interpolate", "drop")
SCALERS = ("minmax", "standard", "none")
_DATE_NAMES = ("date", "ds", "datetime", "timestamp", "time")
#: Texts that mean "no value" (compared stripped and lower-cased), as pandas reads them.
_MISSING_TEXTS = frozenset(("", "na", "n/a", "nan", "-nan", "null", "none", "<na>", "#n/a",
                            "#na", "nat", "-1.#ind", "1.#qnan", "-1.#qnan", "1.#ind",
                            "#n/a n/a"))  # fmt: skip


class DataError(ValueError):
    """Input data that cannot be used as given; the message names the column, the row and
    the fix."""


class DateWarning(UserWarning):
    """Dates that can be used but may not mean what was meant: ambiguous day/month order,
    or uneven steps. The message names the dates and the fix."""


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


def _increasing(parsed):
    v = parsed.to_numpy()
    return bool((v[1:] > v[:-1]).all())


def _to_dates(values, name):
    """Dates from a column, read in one format throughout: the format of the first value,
    month first (pandas' default) or day first, whichever reads every value (both: the one
    that gives increasing dates, else month first); else each value as it comes (mixed
    formats). One value at a time from the start read ``13/01/2010`` day first but
    ``01/02/2010`` month first: a day-first file came out shuffled or, with days up to 12
    only, silently wrong."""
    import warnings

    raw = pd.Series(values)
    parsed = None
    if not pd.api.types.is_datetime64_any_dtype(raw):
        candidates = []
        # Day first only for dates that start with a day or a month (12/01/2010, 12.01.10),
        # not a year: pandas reads 2020-01-02 as 1 February with dayfirst.
        first = str(raw.dropna().iloc[0]) if raw.notna().any() else ""
        orders = (False, True) if re.match(r"\s*\d{1,2}[/.\-]\d{1,2}[/.\-]", first) else (False,)
        for dayfirst in orders:
            with warnings.catch_warnings():  # "could not infer format": then not this one
                warnings.simplefilter("ignore")
                try:
                    p = pd.to_datetime(raw, errors="coerce", dayfirst=dayfirst)
                except (ValueError, TypeError, OverflowError):
                    continue
            if not p.isna().any():
                candidates.append(p)
        if len(candidates) == 2 and not (candidates[0] == candidates[1]).all():
            if not _increasing(candidates[0]) and _increasing(candidates[1]):
                candidates.reverse()
            elif _increasing(candidates[1]):
                r = int(np.flatnonzero((candidates[0] != candidates[1]).to_numpy())[0])
                month_first = _fmt_date(candidates[0].iloc[r])
                warnings.warn(f"dates such as {raw.iloc[r]!r} (row {r + 1}) can be read month "
                              f"first or day first; read month first as {month_first}. If the "
                              "day comes first, write the dates as YYYY-MM-DD", DateWarning,
                              stacklevel=4)  # fmt: skip
        parsed = candidates[0] if candidates else None
    if parsed is None:
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
    data : pandas.Series, pandas.DataFrame, str or path
        Indexed by dates, or a DataFrame with a date column (``date_col``, or one found by
        dtype or by name: Date, ds, datetime, timestamp, time); a path is read with
        :func:`read_csv`.
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
    if isinstance(data, (str, os.PathLike)):
        data = read_csv(data, date_col)
    if isinstance(data, pd.Series):
        name = data.name if data.name is not None else "value"
        if target is not None and target != name:
            raise DataError(f"the series is named {name!r}, not {target!r}")
        data = data.to_frame(name=name)
    if not isinstance(data, pd.DataFrame):
        raise DataError("expected a pandas Series or DataFrame indexed by dates (or with a "
                        "date column), or the path of a CSV file, got "
                        f"{type(data).__name__}")  # fmt: skip
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
        given = raw.notna().to_numpy()
        if not pd.api.types.is_numeric_dtype(raw):  # "NA", "null": missing, not bad values
            text = raw.astype(str).str.strip().str.lower()
            given = given & ~text.isin(_MISSING_TEXTS).to_numpy()
        bad = np.flatnonzero(num.isna().to_numpy() & given)
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


def frequency_of(dates):
    """The step between ``dates`` (sorted) and where they leave it: ``(alias, uneven)``.
    ``alias`` is pandas' frequency alias when it can name one (even steps, in the calendar
    sense for months and business days), else the median gap's; ``uneven`` is ``None``, or
    a one-line description of the steps that differ from it."""
    if len(dates) >= 3:
        try:
            inferred = pd.DatetimeIndex(dates, freq="infer").freq
        except ValueError:  # irregular or non-unique dates
            inferred = None
        if inferred is not None:
            return inferred.freqstr, None
    if len(dates) < 2:
        raise DataError("need at least 2 dates to infer the frequency of the series")
    gaps = pd.Series(dates[1:] - dates[:-1])
    usual = gaps.median()
    odd = np.flatnonzero((gaps != usual).to_numpy())
    uneven = None
    if len(odd):
        r = int(odd[0])
        uneven = (f"the dates are not evenly spaced: {len(odd)} of {len(gaps)} steps differ "
                  f"from the usual {_step_alias(usual)} (the first: {_fmt_date(dates[r])} to "
                  f"{_fmt_date(dates[r + 1])}); the windows run across those gaps. Add the "
                  "missing dates (empty values, then fill) if the steps should be "
                  "even")  # fmt: skip
    return _step_alias(usual), uneven


def infer_frequency(dates):
    """The step between dates: a pandas frequency alias when regular, else the median gap."""
    return frequency_of(dates)[0]


def _step_alias(gap):
    """The frequency alias of a fixed step: ``"D"`` for a day (not ``"24h"``), ``"7D"``..."""
    if gap >= pd.Timedelta(days=1) and gap % pd.Timedelta(days=1) == pd.Timedelta(0):
        return pd.tseries.frequencies.to_offset(f"{gap.days}D").freqstr
    return pd.tseries.frequencies.to_offset(gap).freqstr


def default_season_length(freq):
    """Seasonal-naive period, in steps, for a frequency alias: a day of sub-daily steps
    (24 hours, 96 quarter-hours), a year of steps of a day or more (365 days, 52 weeks
    whether written ``W-SUN`` or ``7D``, 12 months, 4 quarters), a week of business days
    (5). The multiple counts: ``2h`` gives 12, ``2W`` 26."""
    offset = pd.tseries.frequencies.to_offset(freq)
    try:
        step = pd.Timedelta(offset)  # fixed-length steps: days, hours, minutes, ...
    except (TypeError, ValueError):
        step = None
    if step is not None and step > pd.Timedelta(0):
        day = pd.Timedelta(days=1)
        period = day if step < day else pd.Timedelta(days=365.25)
        return max(1, round(period / step))
    base = offset.rule_code.upper().split("-")[0]
    per_base = {"B": 5, "W": 52, "M": 12, "MS": 12, "ME": 12, "BM": 12, "BMS": 12,
                "BME": 12, "SM": 24, "SMS": 24, "Q": 4, "QS": 4, "QE": 4, "BQ": 4,
                "BQS": 4, "BQE": 4}  # fmt: skip
    if base not in per_base:
        return 1
    return max(1, round(per_base[base] / abs(offset.n or 1)))


# ------------------------------------------------------------------ scaling
def fit_scaler(kind, values, columns=None):
    """Per-column ``(offset, scale)`` so that ``(values - offset) / scale`` is scaled.

    Raises :class:`DataError` (naming the column, from ``columns`` when given) when a
    column's range or spread overflows float64 (values beyond ~1e154 or ~1e308)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "minmax":
            lo, hi = values.min(axis=0), values.max(axis=0)
            offset, scale = lo, np.where(hi > lo, hi - lo, 1.0)
        elif kind == "standard":
            mu, sd = values.mean(axis=0), values.std(axis=0)
            offset, scale = mu, np.where(sd > 0, sd, 1.0)
        else:
            return np.zeros(values.shape[1]), np.ones(values.shape[1])
    bad = ~(np.isfinite(offset) & np.isfinite(scale))
    if bad.any():
        j = int(np.argmax(bad))
        name = repr(columns[j]) if columns is not None else f"{j}"
        col = values[:, j]
        raise DataError(f"column {name} is too large to scale ({kind} scaling overflows: "
                        f"values from {col.min():.3g} to {col.max():.3g}); divide it by a "
                        "power of ten first")  # fmt: skip
    return offset, scale


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
