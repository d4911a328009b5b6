"""Tests for the bundled synthetic temperature data set."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fastgru.datasets import generate_temperature, load_temperature
from fastgru.datasets.make_temperature import SEED, main, to_csv_text


@pytest.fixture(scope="module")
def temp() -> pd.DataFrame:
    return load_temperature()


def test_shape_columns_and_dtypes(temp):
    assert temp.shape == (8000, 2)
    assert list(temp.columns) == ["Date", "Temp"]
    assert pd.api.types.is_datetime64_dtype(temp["Date"])
    assert temp["Temp"].dtype == np.float64


def test_dates_start_2010_and_are_consecutive_days(temp):
    assert temp["Date"].iloc[0] == pd.Timestamp("2010-01-01")
    assert temp["Date"].iloc[-1] == pd.Timestamp("2010-01-01") + pd.Timedelta(days=7999)
    steps = temp["Date"].diff().iloc[1:]
    assert (steps == pd.Timedelta(days=1)).all()
    assert temp["Date"].is_unique


def test_no_missing_and_plausible_range(temp):
    assert not temp.isna().any().any()
    t = temp["Temp"].to_numpy()
    assert np.isfinite(t).all()
    assert -10.0 < t.min() < 10.0
    assert 20.0 < t.max() < 40.0
    assert 13.0 < t.mean() < 17.0
    assert 3.0 < t.std() < 8.0
    np.testing.assert_array_equal(t, np.round(t, 2))  # two decimals


def test_seasonal_southern_hemisphere(temp):
    by_month = temp.groupby(temp["Date"].dt.month)["Temp"].mean()
    assert by_month[1] > by_month[7] + 10.0  # January much warmer than July
    summer = by_month[[12, 1, 2]].mean()
    winter = by_month[[6, 7, 8]].mean()
    assert summer - winter > 10.0
    assert by_month.idxmax() in (12, 1, 2)
    assert by_month.idxmin() in (6, 7, 8)


def test_weather_noise_is_autocorrelated(temp):
    # Remove the seasonal cycle (day-of-year mean), then check the lag-1 correlation.
    doy = temp["Date"].dt.day_of_year
    anomaly = (temp["Temp"] - temp.groupby(doy)["Temp"].transform("mean")).to_numpy()
    lag1 = np.corrcoef(anomaly[1:], anomaly[:-1])[0, 1]
    assert 0.6 < lag1 < 0.8
    assert 1.5 < anomaly.std() < 2.5


def test_warming_trend(temp):
    years = temp["Date"].dt.year
    first = temp.loc[years.between(2010, 2014), "Temp"].mean()
    last = temp.loc[years.between(2026, 2030), "Temp"].mean()
    assert -0.5 < last - first < 1.0  # 0.32 degC expected, small next to the noise


def test_regenerating_reproduces_csv_exactly(temp):
    regenerated = generate_temperature()
    pd.testing.assert_frame_equal(regenerated, temp)
    np.testing.assert_array_equal(regenerated["Temp"].to_numpy(), temp["Temp"].to_numpy())


def test_csv_bytes_match_generator():
    packaged = resources.files("fastgru.datasets").joinpath("temperature.csv").read_bytes()
    assert b"\r" not in packaged
    assert packaged.startswith(b"Date,Temp\n2010-01-01,")
    assert packaged.endswith(b"\n")
    assert packaged.count(b"\n") == 8001
    assert packaged == to_csv_text(generate_temperature()).encode("utf-8")
    assert len(packaged) < 200_000


def test_main_writes_identical_bytes(tmp_path):
    packaged = resources.files("fastgru.datasets").joinpath("temperature.csv").read_bytes()
    out1 = main(tmp_path / "a.csv")
    out2 = main(tmp_path / "b.csv")
    assert out1.read_bytes() == packaged
    assert out2.read_bytes() == packaged


def test_generate_parameters():
    df = generate_temperature(n_days=10, start="2020-06-01", seed=1)
    assert len(df) == 10
    assert df["Date"].iloc[0] == pd.Timestamp("2020-06-01")
    assert df["Date"].iloc[-1] == pd.Timestamp("2020-06-10")
    pd.testing.assert_frame_equal(df, generate_temperature(n_days=10, start="2020-06-01", seed=1))
    other = generate_temperature(n_days=10, start="2020-06-01", seed=2)
    assert not np.array_equal(df["Temp"].to_numpy(), other["Temp"].to_numpy())
    # the default seed is the documented one
    pd.testing.assert_frame_equal(
        generate_temperature(n_days=50), generate_temperature(n_days=50, seed=SEED)
    )
    # a prefix of a longer series is the shorter series
    pd.testing.assert_frame_equal(generate_temperature(n_days=50), generate_temperature().head(50))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_generate_rejects_bad_n_days(bad):
    with pytest.raises(ValueError, match="n_days must be a positive int"):
        generate_temperature(n_days=bad)


def test_import_does_not_pull_in_numba():
    import fastgru.datasets

    root = str(Path(fastgru.datasets.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    # fastgru/__init__.py is not this module's concern: only numba imports that
    # fastgru.datasets itself adds are flagged.
    code = (
        "import sys, fastgru; before = 'numba' in sys.modules; "
        "import fastgru.datasets as d; d.load_temperature(); d.generate_temperature(5); "
        "sys.exit(0 if before or 'numba' not in sys.modules else 3)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
