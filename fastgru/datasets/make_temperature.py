"""Generate the synthetic daily temperature series shipped as ``temperature.csv``.

The packaged data set is *synthetic*: it is produced by this module, not
measured, so it can be redistributed freely and regenerated bit-for-bit.

Model
-----
For day ``t = 0, 1, ..., n_days - 1`` (``t = 0`` is ``start``) the temperature
in degrees Celsius is

.. code-block:: text

    Temp[t] = MEAN_C
              + TREND_C_PER_YEAR * t / 365.25                         (slow warming)
              + ANNUAL_AMPLITUDE_C * cos(2*pi*(doy[t] - PEAK_DOY) / 365.25)
              + SEMIANNUAL_AMPLITUDE_C * cos(4*pi*(doy[t] - PEAK_DOY) / 365.25)
              + e[t]

    e[0] = NOISE_SD_C * z[0]
    e[t] = AR_PHI * e[t-1] + NOISE_SD_C * sqrt(1 - AR_PHI**2) * z[t]

where ``doy`` is the calendar day of the year (1 = 1 January) and ``z`` are
independent standard normal draws from ``numpy.random.default_rng(seed)``.
The climate is Southern-hemisphere-like: the annual cycle peaks in mid
January (``PEAK_DOY``), so December-February is warm and June-August cold.
The mean is about 15 degC, the annual amplitude about 7 degC with a small
second (semi-annual) harmonic, the trend is +0.02 degC per year, and the
weather noise ``e`` is a stationary AR(1) process with lag-one
autocorrelation 0.7 and marginal standard deviation 2 degC. Values are
rounded to 2 decimals.

Regenerating
------------
The file is fully determined by the constants below and :data:`SEED`::

    python -m fastgru.datasets.make_temperature

rewrites ``fastgru/datasets/temperature.csv`` with identical bytes: a
``Date,Temp`` header, 8,000 rows from 2010-01-01, ISO dates, temperatures
formatted with two decimals, ``\\n`` line endings and no index column.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SEED", "generate_temperature", "main"]

#: Seed of ``numpy.random.default_rng`` used for the packaged file.
SEED = 20100101

MEAN_C = 15.0
ANNUAL_AMPLITUDE_C = 7.0
SEMIANNUAL_AMPLITUDE_C = 0.8
PEAK_DOY = 15  # mid January: the warmest point of the annual cycle
TREND_C_PER_YEAR = 0.02
AR_PHI = 0.7
NOISE_SD_C = 2.0
DAYS_PER_YEAR = 365.25

#: Location of the packaged CSV written by :func:`main`.
CSV_PATH = Path(__file__).with_name("temperature.csv")


def generate_temperature(
    n_days: int = 8000, start: str = "2010-01-01", seed: int = SEED
) -> pd.DataFrame:
    """Generate a synthetic daily temperature series.

    Parameters
    ----------
    n_days : int, default 8000
        Number of consecutive daily rows.
    start : str, default "2010-01-01"
        First date (anything :func:`pandas.Timestamp` accepts).
    seed : int, default :data:`SEED`
        Seed for :func:`numpy.random.default_rng`. The default reproduces the
        packaged ``temperature.csv`` exactly.

    Returns
    -------
    pandas.DataFrame
        Columns ``Date`` (``datetime64[ns]``, daily, no gaps) and ``Temp``
        (``float64``, degrees Celsius rounded to 2 decimals).

    Notes
    -----
    See the module docstring for the model (seasonal cycle with two
    harmonics, linear warming trend and AR(1) weather noise).

    Examples
    --------
    >>> df = generate_temperature(n_days=3)
    >>> list(df.columns)
    ['Date', 'Temp']
    """
    if isinstance(n_days, bool) or not isinstance(n_days, (int, np.integer)) or n_days < 1:
        raise ValueError(f"n_days must be a positive int, got {n_days!r}")
    n_days = int(n_days)
    dates = pd.date_range(start=pd.Timestamp(start), periods=n_days, freq="D")
    t = np.arange(n_days, dtype=np.float64)
    doy = dates.day_of_year.to_numpy().astype(np.float64)
    phase = 2.0 * np.pi * (doy - PEAK_DOY) / DAYS_PER_YEAR

    seasonal = ANNUAL_AMPLITUDE_C * np.cos(phase) + SEMIANNUAL_AMPLITUDE_C * np.cos(2.0 * phase)
    trend = TREND_C_PER_YEAR * t / DAYS_PER_YEAR

    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n_days)
    innovation_sd = NOISE_SD_C * np.sqrt(1.0 - AR_PHI**2)
    noise = np.empty(n_days, dtype=np.float64)
    noise[0] = NOISE_SD_C * z[0]
    for i in range(1, n_days):
        noise[i] = AR_PHI * noise[i - 1] + innovation_sd * z[i]

    temp = np.round(MEAN_C + trend + seasonal + noise, 2) + 0.0  # "+ 0.0" turns -0.0 into 0.0
    return pd.DataFrame({"Date": dates.astype("datetime64[ns]"), "Temp": temp.astype(np.float64)})


def to_csv_text(df: pd.DataFrame) -> str:
    """Format a ``Date``/``Temp`` frame as the packaged CSV text.

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`generate_temperature`.

    Returns
    -------
    str
        ``Date,Temp`` header and one ``YYYY-MM-DD,T.TT`` line per row, each
        terminated by ``\\n``.
    """
    dates = pd.DatetimeIndex(df["Date"]).strftime("%Y-%m-%d")
    lines = [f"{d},{t:.2f}" for d, t in zip(dates, df["Temp"].to_numpy(), strict=True)]
    return "Date,Temp\n" + "\n".join(lines) + "\n"


def main(path: str | Path | None = None) -> Path:
    """Write the packaged CSV deterministically.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        Destination; defaults to ``temperature.csv`` next to this module.
        From the command line, an optional first argument overrides it.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    path = CSV_PATH if path is None else Path(path)
    text = to_csv_text(generate_temperature())
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    return path


if __name__ == "__main__":
    written = main(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"wrote {written}")
