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
        sep = _separator(path)
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], sep=sep)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty; expected a CSV with a header row") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason}); save it "
                        "as UTF-8 (CSV UTF-8 in spreadsheets)") from None  # fmt: skip
    except pd.errors.ParserError as exc:
        msg = str(exc).strip().splitlines()[-1]
        raise DataError(f"{path} is not a readable CSV file ({msg})") from None
    # "Date, Temp": the names as written, without the spaces after the separators.
    names = [str(c).strip() for c in df.columns]
    if len(set(names)) == len(names):
        df.columns = names
    # Rows of separators only at the end (spreadsheet exports): not data.
    filled = df.notna().any(axis=1).to_numpy()
    df = df.iloc[: len(filled) - int(np.argmax(filled[::-1]))] if filled.any() else df.iloc[:0]
    if sep != ",":
        df = _decimal_commas(df, dots_group_thousands=sep == ";")
    if df.shape[0] == 0:
        raise DataError(f"{path} has a header but no data rows")
    if date_col is not None and date_col not in df.columns:
        raise DataError(f"{path} has no date column {date_col!r}; available columns: "
                        f"{', '.join(map(str, df.columns))}")  # fmt: skip
    return df


def _separator(path):
    """``";"`` or a tab when every one of the first lines splits into the same number (2 or
    more) of fields by it (European spreadsheets write ``Datum;Wert``, with decimal commas
    that a comma would split), else a comma. A header alone proves nothing: ``Datum;Temp
    (°C, Mittel)`` has a comma, ``Date,A;B`` a semicolon."""
    import csv
    import itertools

    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        lines = [line for line in itertools.islice(f, 6) if line.strip()]
    for sep in (";", "\t"):
        counts = {len(row) for row in csv.reader(lines, delimiter=sep)}
        if len(counts) == 1 and counts.pop() >= 2:
            return sep
    return ","


_DECIMAL_COMMA = re.compile(r"^\s*[-+]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?\s*$")
_THOUSANDS_DOT = re.compile(r"\d\.\d{3}(?!\d)")


def _decimal_commas(df, dots_group_thousands):
    """Columns written with decimal commas (``10,5``, ``1.234,5``) as numbers with points.
    A column is converted when every value reads that way (missing-value texts aside) and
    one has a comma, or, where dots group thousands (semicolon files, the European
    convention), a dot before three digits (``1.500`` is 1500 there, not 1.5)."""
    for c in df.columns:
        col = df[c].dropna()
        col = col[~col.str.strip().str.lower().isin(_MISSING_TEXTS)]
        if not len(col) or not col.str.match(_DECIMAL_COMMA).all():
            continue
        comma = col.str.contains(",").any()
        if comma or (dots_group_thousands and col.str.contains(_THOUSANDS_DOT).any()):
            num = col.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
            df[c] = df[c].where(~df.index.isin(col.index), num)
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


def _find_date_column(df, date_col, by_content=True):
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
    if not by_content:
        return None
    # Else the one column written as dates (2010-01-31, 31.01.2010, 1/31/2010): Datum.
    dated = [c for c in df.columns if _written_as_dates(df[c])]
    return dated[0] if len(dated) == 1 else None


def _written_as_dates(col):
    if pd.api.types.is_numeric_dtype(col) or not col.notna().any():
        return False
    return bool(col.dropna().astype(str).str.match(_DATE_LIKE).all())


# A four-digit year: 1.2.10 is a version, not 1 February 2010.
_DATE_LIKE = re.compile(r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})\b")


def _increasing(parsed):
    v = parsed.to_numpy()
    return bool((v[1:] > v[:-1]).all())


def _to_dates(values, name):
    """Dates from a column, read in one format throughout: the format of the first value,
    month first (pandas' default; day first for dotted dates, 31.01.2010) or day first,
    whichever reads every value (both: the one that gives increasing dates, else that
    default, with a warning); written with changing UTC offsets, see
    :func:`_mixed_offsets`; else each value as it comes (mixed
    formats). One value at a time from the start read ``13/01/2010`` day first but
    ``01/02/2010`` month first: a day-first file came out shuffled or, with days up to 12
    only, silently wrong."""
    import warnings

    raw = pd.Series(values)
    parsed = None
    if raw.isna().any():
        r = int(np.flatnonzero(raw.isna().to_numpy())[0])
        raise DataError(f"date column {name!r} is empty at row {r + 1}; every row needs a date")
    text = not pd.api.types.is_datetime64_any_dtype(raw)
    if text:
        parsed = _mixed_offsets(raw, name)
    if parsed is None and text:
        candidates = []
        # Day first only for dates that start with a day or a month (12/01/2010, 12.01.10),
        # not a year: pandas reads 2020-01-02 as 1 February with dayfirst.
        first = str(raw.iloc[0]) if len(raw) else ""
        orders = (False, True) if re.match(r"\s*\d{1,2}[/.\-]\d{1,2}[/.\-]", first) else (False,)
        if re.match(r"\s*\d{1,2}\.\d{1,2}\.", first):  # 01.02.2010: day first where written so
            orders = (True, False)
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
                read, other = ("day", "month") if orders[0] else ("month", "day")
                warnings.warn(f"dates such as {raw.iloc[r]!r} (row {r + 1}) can be read month "
                              f"first or day first; read {read} first as "
                              f"{_fmt_date(candidates[0].iloc[r])}. If the {other} comes "
                              "first, write the dates as YYYY-MM-DD", DateWarning,
                              stacklevel=4)  # fmt: skip
        parsed = candidates[0] if candidates else None
    if parsed is None:
        try:
            parsed = pd.to_datetime(raw, errors="coerce", format="mixed")
        except (ValueError, TypeError) as exc:  # e.g. some dates with a UTC offset, some not
            raise DataError(
                f"date column {name!r} cannot be read as dates in one way "
                f"({' '.join(str(exc).split('.')[0].split())}); write every date "
                "the same way (all with a UTC offset, or none)"
            ) from None
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        r = bad[0]
        raise DataError(f"date column {name!r} has a value that is not a date at row {r + 1}: "
                        f"{raw.iloc[r]!r}")  # fmt: skip
    return pd.DatetimeIndex(parsed)


# A time of day, then its UTC offset: "2021-03-28T03:00:00+02:00" (not "01-12-2021").
_TIME_AND_OFFSET = r"^(.*\d:\d\d(?::\d\d(?:\.\d+)?)?)\s*(Z|[+-]\d\d:?\d\d)$"


def _mixed_offsets(raw, name):
    """Dates written with UTC offsets that change (summer time: ``...+01:00`` in winter,
    ``...+02:00`` in summer), which pandas reads only as UTC, or ``None`` for any other
    column. The dates and times as written are read as any column is (:func:`_to_dates`:
    one format, day first where that is the reading). Times of day that repeat (daily or
    coarser data: local midnights) are kept so, without the offsets, so that the steps stay
    whole days; other times (hourly data) become UTC, in which the steps stay even across
    the changes of offset."""
    if not len(raw) or not re.match(_TIME_AND_OFFSET, str(raw.iloc[0]).strip()):  # (usual)
        return None
    text = raw.astype(str).str.strip()
    parts = text.str.extract(_TIME_AND_OFFSET)
    if parts.isna().any().any() or parts[1].nunique() < 2:
        return None
    local = _to_dates(parts[0].to_numpy(), name)
    if len(set(local.time)) == 1:
        return pd.Series(local)
    sign = np.where(parts[1].str.startswith("-"), -1, 1)
    digits = parts[1].str.replace(r"[^0-9]", "", regex=True).str.pad(4, fillchar="0")
    minutes = sign * (digits.str[:2].astype(int) * 60 + digits.str[2:].astype(int))
    offset = pd.to_timedelta(minutes.to_numpy(), unit="min")
    return pd.Series((local - offset).tz_localize("UTC"))


def prepare_frame(data, target=None, features=None, date_col=None, fill=None,
                  keep_missing=False):  # fmt: skip
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
    keep_missing : bool, default=False
        Return missing values as NaN, unfilled (a backtest fills its parts apart).

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
    if date_col is not None and date_col not in df.columns and df.index.name == date_col:
        df = df.reset_index()  # read_csv(..., index_col="Date") with date_col="Date"
    index_of_text_dates = not isinstance(df.index, (pd.DatetimeIndex, pd.PeriodIndex)) and (
        not pd.api.types.is_numeric_dtype(df.index)
        and _written_as_dates(pd.Series(df.index.to_numpy(), dtype=object)))  # fmt: skip
    # (a column that merely looks like dates does not outrank an index of dates)
    dated_index = index_of_text_dates or isinstance(df.index, (pd.DatetimeIndex, pd.PeriodIndex))
    dcol = _find_date_column(df, date_col, by_content=not dated_index)
    if dcol is not None:
        dates = _to_dates(df[dcol].to_numpy(), dcol)
        df = df.drop(columns=[dcol])
    elif isinstance(df.index, pd.DatetimeIndex):
        dates = df.index
    elif isinstance(df.index, pd.PeriodIndex):
        dates = df.index.to_timestamp()
    elif index_of_text_dates:
        dates = _to_dates(df.index.to_numpy(), df.index.name or "index")
    else:
        raise DataError(
            "no dates found: index the data by dates or name the date column "
            f"(date_col / --date-col); columns: {', '.join(map(str, df.columns))}"
        )
    available = [str(c) for c in df.columns]
    if target is None:
        numeric = [c for c in df.columns
                   if pd.to_numeric(df[c], errors="coerce").notna().any()]  # fmt: skip
        if len(df.columns) == 1:  # the only column: its values say what is wrong with it
            numeric = list(df.columns)
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
            hint = ""
            if re.match(r"^\s*[-+]?\d{1,3}(,\d{3})+(\.\d+)?\s*$", str(raw.iloc[r])):
                hint = "; write numbers without thousands separators"
            raise DataError(f"column {c!r} has a non-numeric value {raw.iloc[r]!r} at row {r + 1}"
                            f" ({_fmt_date(dates[r])}){hint}")  # fmt: skip
        values[:, j] = num.to_numpy(dtype=np.float64, na_value=np.nan)
        if len(values) and np.isnan(values[:, j]).all():
            raise DataError(f"column {c!r} has no values")
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
    if missing.any() and not keep_missing:
        if fill is None:
            j = int(np.flatnonzero(missing.any(axis=0))[0])
            rows = np.flatnonzero(missing[:, j])
            raise DataError(f"column {columns[j]!r} has missing values at rows "
                            f"{_fmt_rows(rows, dates)}; fill them with fill='ffill', "
                            "'interpolate' or 'drop' (--fill)")  # fmt: skip
        if fill == "drop":
            keep = ~missing.any(axis=1)
            values, dates = values[keep], dates[keep]
        else:
            values = fill_values(dates, values, fill)
    return dates, values, columns


def fill_values(dates, values, fill):
    """``values`` with their missing values filled: ``"ffill"`` (then back-filled at the
    start) or ``"interpolate"`` (in time, extended at both ends)."""
    frame = pd.DataFrame(values, index=dates)
    if fill == "ffill":
        frame = frame.ffill().bfill()
    else:
        frame = frame.interpolate(method="time", limit_direction="both")
    return frame.to_numpy(dtype=np.float64)


def frequency_of(dates):
    """The step between ``dates`` (sorted) and where they leave it: ``(alias, uneven)``.
    ``alias`` is pandas' frequency alias when it can name one (even steps, in the calendar
    sense for months and business days); else calendar steps with gaps (months with one
    missing, months on another day than the first or the last, business days with
    holidays: :func:`_calendar_steps`); else the median gap's. ``uneven`` is ``None``, or a
    one-line description of the steps that differ from it."""
    inferred = None
    if len(dates) >= 3:
        try:
            inferred = pd.DatetimeIndex(dates, freq="infer").freq
        except ValueError:  # irregular or non-unique dates
            inferred = None
    if inferred is not None:
        return inferred.freqstr, None
    if len(dates) >= 2:  # (two dates: Jan 31, Feb 28 are month ends, not 28 days)
        calendar = _calendar_steps(dates)
        if calendar is not None:
            alias, odd = calendar
            return alias, _uneven(dates, odd, alias)
    if len(dates) < 2:
        raise DataError("need at least 2 dates to infer the frequency of the series")
    gaps = pd.Series(dates[1:] - dates[:-1])
    usual = gaps.median()
    alias = _step_alias(usual)
    return alias, _uneven(dates, np.flatnonzero((gaps != usual).to_numpy()), alias)


def _uneven(dates, odd, alias):
    """The warning for the steps ``odd`` (indices into the gaps) that are not one step of
    ``alias``, or ``None``."""
    if not len(odd):
        return None
    r = int(odd[0])
    return (f"the dates are not evenly spaced: {len(odd)} of {len(dates) - 1} steps differ "
            f"from the usual {alias} (the first: {_fmt_date(dates[r])} to "
            f"{_fmt_date(dates[r + 1])}); the windows run across those gaps. Add the missing "
            "dates (empty values, then fill) if the steps should be even")  # fmt: skip


_MONTH_STEPS = (1, 2, 3, 4, 6, 12)
#: fastgru's alias for k calendar months on day d (``M@15``, ``3M@15``): pandas has none.
_MONTH_DAY = re.compile(r"^(\d*)M@(\d{1,2})$")


def _calendar_steps(dates):
    """Calendar steps with gaps, which pandas' inference does not name: ``(alias, odd)``
    (``odd``: the indices of the steps that are not one step), or ``None``. At least half
    the steps must be one step. Months: k months (1, 2, 3, 4, 6 or 12) on the first of the
    month (``kMS``), on month ends (``kME``) or on another day d, the last day of shorter
    months standing for it (``kM@d``); business days (``B``: only weekdays, gaps counted
    in weekdays, as holidays leave them)."""
    wall = pd.DatetimeIndex(dates)
    if wall.tz is not None:
        wall = wall.tz_localize(None)
    if len(set(wall.time)) != 1:  # calendar steps keep the time of day
        return None
    months = np.diff((wall.year * 12 + wall.month).to_numpy())
    k = int(np.median(months))
    if k in _MONTH_STEPS:
        n = "" if k == 1 else str(k)
        if wall.is_month_start.all():
            alias = f"{n}MS"
        elif wall.is_month_end.all():
            alias = f"{n}ME"
        else:
            day = int(wall.day.max())
            on_day = (wall.day == np.minimum(day, wall.days_in_month)).all()
            alias = f"{n}M@{day}" if on_day else None
        odd = np.flatnonzero(months != k)
        if alias is not None and 2 * len(odd) <= len(months):
            return alias, odd
    if (wall.day_of_week < 5).all():
        days = wall.normalize().to_numpy().astype("datetime64[D]")
        steps = np.busday_count(days[:-1], days[1:])
        odd = np.flatnonzero(steps != 1)
        weekend = (np.diff(days).astype(np.int64) > steps).any()  # else days: D
        if weekend and 2 * len(odd) <= len(steps):
            return "B", odd
    return None


def step_offset(freq):
    """The pandas offset of a frequency alias (``freq_``), fastgru's ``kM@d`` (k calendar
    months on day d, the last day of shorter months) included."""
    m = _MONTH_DAY.match(str(freq))
    if m:
        return pd.DateOffset(months=int(m.group(1) or 1), day=int(m.group(2)))
    return pd.tseries.frequencies.to_offset(freq)


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
    m = _MONTH_DAY.match(str(freq))
    if m:
        return max(1, round(12 / int(m.group(1) or 1)))
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
