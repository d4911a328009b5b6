"""GRUForecaster and its data checks: dated frames, scaling, windows, recursive forecasts,
features, backtests against hand-computed baselines, save/load, fill modes and the one-line
``DataError`` messages. Small synthetic data and tiny networks (CPU) keep every test fast."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from fastgru import GRUForecaster, make_windows
from fastgru.data import DateWarning
from fastgru.forecasting import (
    DataError,
    default_season_length,
    forecast_metrics,
    infer_frequency,
    prepare_frame,
    read_csv,
)

TINY = dict(window=10, units=8, epochs=1, random_state=0, device="cpu")


def frame(n=120, freq="D", start="2020-01-01", seed=0, period=20):
    """A dated DataFrame: Date, Temp (seasonal + noise) and Hum (a second, numeric column)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.DataFrame(
        {
            "Date": pd.date_range(start, periods=n, freq=freq),
            "Temp": 20 + 5 * np.sin(2 * np.pi * t / period) + 0.2 * rng.normal(size=n),
            "Hum": 50 + 10 * np.cos(2 * np.pi * t / 7) + rng.normal(size=n),
        }
    )


@pytest.fixture(scope="module")
def df():
    return frame()


@pytest.fixture(scope="module")
def fitted(df):
    return GRUForecaster(target="Temp", horizon=1, **TINY).fit(df)


@pytest.fixture(scope="module")
def fitted_h3(df):
    return GRUForecaster(target="Temp", horizon=3, **TINY).fit(df)


@pytest.fixture(scope="module")
def fitted_feat(df):
    return GRUForecaster(target="Temp", features=["Hum"], horizon=2, **TINY).fit(df)


def test_a_csv_path_works_wherever_a_frame_does(df, fitted, tmp_path):
    """fit, predict(data=...) and backtest take the path of a CSV (str or Path) as they
    take the frame it holds: the same forecasts."""
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    from_path = GRUForecaster(target="Temp", horizon=1, **TINY).fit(str(path))
    pd.testing.assert_series_equal(from_path.predict(steps=3), fitted.predict(steps=3),
                                   rtol=1e-6)  # fmt: skip
    pd.testing.assert_series_equal(fitted.predict(steps=2, data=path),
                                   fitted.predict(steps=2, data=df))  # fmt: skip
    small = GRUForecaster(target="Temp", **{**TINY, "window": 5})
    pd.testing.assert_frame_equal(small.backtest(path, test_size=5),
                                  small.backtest(df, test_size=5))  # fmt: skip
    with pytest.raises(FileNotFoundError, match="missing.csv does not exist"):
        GRUForecaster(target="Temp", **TINY).fit(tmp_path / "missing.csv")


def test_a_failed_refit_leaves_the_forecaster_as_it_was(df, fitted, monkeypatch):
    """A refit interrupted in training (after the data checks set the new columns and
    scaler) keeps the fitted forecaster: its columns, scaler and network still go
    together."""
    import copy

    import fastgru.estimator as est

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    fc = copy.deepcopy(fitted)
    fc.set_params(features=["Hum"])
    before = dict(vars(fc))
    monkeypatch.setattr(est, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fc.fit(df)
    assert vars(fc).keys() == before.keys()
    assert all(vars(fc)[k] is v for k, v in before.items())
    fc.set_params(features=None)
    pd.testing.assert_series_equal(fc.predict(steps=3), fitted.predict(steps=3))


def manual_predict(fc, hist):
    """One direct forecast from a window in original units, computed outside predict()."""
    scaled = (hist - fc.scale_offset_) / fc.scale_
    out = np.atleast_1d(fc.regressor_.predict(scaled[None])[0])
    return out * fc.scale_[0] + fc.scale_offset_[0]


# ------------------------------------------------------------------ windows and fit
def test_make_windows_on_dated_values(df):
    X, y = make_windows(df[["Temp", "Hum"]], window=10, horizon=3)
    assert X.shape == (len(df) - 12, 10, 2) and y.shape == (len(df) - 12, 3)
    np.testing.assert_array_equal(X[5], df[["Temp", "Hum"]].to_numpy()[5:15])
    np.testing.assert_array_equal(y[5], df["Temp"].to_numpy()[15:18])


def test_fit_attributes(df, fitted):
    assert fitted.columns_ == ["Temp"]
    assert fitted.freq_ == "D"
    assert fitted.last_date_ == pd.Timestamp("2020-04-29")
    assert fitted.n_train_ == len(df)
    np.testing.assert_array_equal(fitted.history_[:, 0], df["Temp"].to_numpy()[-10:])
    assert fitted.regressor_.n_timesteps_in_ == 10
    assert fitted.regressor_.n_iter_ == 1


def test_predict_daily_dates(fitted):
    pred = fitted.predict(steps=4)
    assert isinstance(pred, pd.Series) and pred.name == "Temp"
    expected = pd.DatetimeIndex(["2020-04-30", "2020-05-01", "2020-05-02", "2020-05-03"])
    assert pred.index.equals(expected)
    assert pred.dtype == np.float64 and np.isfinite(pred).all()
    assert len(fitted.predict()) == 1  # default: horizon steps


@pytest.mark.parametrize(
    "freq, start, n, last, expected",
    [
        ("h", "2021-03-01", 60, "2021-03-03 11:00", ["2021-03-03 12:00", "2021-03-03 13:00"]),
        ("MS", "2010-01-01", 60, "2014-12-01", ["2015-01-01", "2015-02-01"]),
        ("W-SUN", "2020-01-05", 40, "2020-10-04", ["2020-10-11", "2020-10-18"]),
        ("15min", "2021-01-01", 50, "2021-01-01 12:15", ["2021-01-01 12:30", "2021-01-01 12:45"]),
    ],
)
def test_predict_other_frequencies(freq, start, n, last, expected):
    s = frame(n, freq=freq, start=start).set_index("Date")["Temp"]  # a Series indexed by dates
    fc = GRUForecaster(**TINY).fit(s)
    assert fc.freq_ == freq
    assert fc.last_date_ == pd.Timestamp(last)
    pred = fc.predict(steps=2)
    assert pred.index.equals(pd.DatetimeIndex(expected)) and pred.name == "Temp"
    assert pred.index.freqstr == freq


def test_dates_are_read_in_one_order_throughout():
    """Day-first dates are read day first (one value at a time, 01/02 read month first and
    13/01 day first); dates that read both ways in increasing order are read month first,
    with a DateWarning; mixed formats still parse."""
    import warnings

    days = pd.date_range("2010-01-01", periods=40)
    for fmt in ("%d/%m/%Y", "%m/%d/%Y", "%Y-%m-%d", "%d.%m.%Y %H:%M"):
        frame_ = pd.DataFrame({"Date": days.strftime(fmt), "v": np.arange(40.0)})
        with warnings.catch_warnings():
            warnings.simplefilter("error", DateWarning)
            dates = prepare_frame(frame_)[0]
        assert (dates == days).all(), fmt
    monthly = pd.DataFrame({"Date": ["01/02/2010", "01/03/2010", "01/04/2010"], "v": [1.0, 2, 3]})
    with pytest.warns(DateWarning, match=r"dates such as '01/02/2010' \(row 1\) can be read "
                      r"month first or day first; read month first as 2010-01-02"):  # fmt: skip
        dates = prepare_frame(monthly)[0]
    assert list(dates.strftime("%Y-%m-%d")) == ["2010-01-02", "2010-01-03", "2010-01-04"]
    mixed = pd.DataFrame({"Date": ["2010-01-01", "Jan 2 2010", "2010/01/03"], "v": [1.0, 2, 3]})
    assert list(prepare_frame(mixed)[0].day) == [1, 2, 3]


def test_uneven_dates_are_reported_once(df):
    """Gaps in the dates (here after dropping rows) give one DateWarning naming the first
    gap, from fit and from backtest (not once per refit); even steps give none."""
    import warnings

    gappy = df.drop(index=[30, 31, 60])
    expected = (r"^the dates are not evenly spaced: 2 of 116 steps differ from the usual D "
                r"\(the first: 2020-01-30 to 2020-02-02\)")  # fmt: skip
    with pytest.warns(DateWarning, match=expected):
        GRUForecaster(target="Temp", **TINY).fit(gappy)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        GRUForecaster(target="Temp", **TINY).backtest(gappy, test_size=4, refit_every=2)
    assert [w.category for w in seen] == [DateWarning]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DateWarning)
        GRUForecaster(target="Temp", **TINY).fit(df)
        monthly = frame(n=40, freq="MS")
        GRUForecaster(target="Temp", **TINY).fit(monthly)  # calendar months: even


def test_infer_frequency_and_season_length():
    assert infer_frequency(pd.date_range("2020-01-01", periods=5, freq="D")) == "D"
    # irregular dates (a dropped row): the median gap
    dates = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-04", "2020-01-05"])
    assert infer_frequency(dates) == "D"
    assert infer_frequency(pd.DatetimeIndex(["2020-01-01", "2020-01-03"])) == "2D"
    assert [default_season_length(f) for f in ("D", "h", "MS", "ME", "W-SUN", "QS-JAN", "B")] == [
        365,
        24,
        12,
        12,
        52,
        4,
        5,
    ]
    # the multiple counts; sub-daily steps get a day, steps of days a year
    assert [default_season_length(f) for f in ("15min", "2h", "7D", "2W", "2D", "3MS")] == [
        96,
        12,
        52,
        26,
        183,
        4,
    ]


MONTHS = pd.date_range("2019-01-01", periods=40, freq="MS")
HOLIDAYS = pd.to_datetime(["2024-01-15", "2024-02-19", "2024-03-29"])
BDAYS = pd.bdate_range("2024-01-02", "2024-04-30")


@pytest.mark.parametrize(
    "dates, freq, n_odd, expected",
    [
        (MONTHS.delete(30), "MS", 1, ["2022-05-01", "2022-06-01", "2022-07-01"]),
        (MONTHS + pd.Timedelta(days=14), "M@15", 0, ["2022-05-15", "2022-06-15", "2022-07-15"]),
        ((MONTHS + pd.Timedelta(days=14)).delete(3), "M@15", 1,
         ["2022-05-15", "2022-06-15", "2022-07-15"]),
        (pd.DatetimeIndex([d.replace(day=min(30, d.days_in_month)) for d in MONTHS]), "M@30",
         0, ["2022-05-30", "2022-06-30", "2022-07-30"]),
        (pd.date_range("2019-01-31", periods=40, freq="ME").delete(5), "ME", 1,
         ["2022-05-31", "2022-06-30", "2022-07-31"]),
        (pd.date_range("2010-01-01", periods=20, freq="QS").delete(3), "3MS", 1,
         ["2015-01-01", "2015-04-01", "2015-07-01"]),
        (BDAYS[~BDAYS.isin(HOLIDAYS)], "B", 3, ["2024-05-01", "2024-05-02", "2024-05-03"]),
    ],
)  # fmt: skip
def test_calendar_steps_with_gaps(dates, freq, n_odd, expected):
    """Where pandas infers no frequency (a missing month, holidays, months on the 15th),
    the steps are still calendar months or business days, not the median gap ('31D' made
    the forecast dates drift: 03-03, 04-03, 05-04; 'D' forecast Saturdays)."""
    from fastgru.data import frequency_of
    from fastgru.serving import forecast_dates

    alias, uneven = frequency_of(dates)
    assert alias == freq
    assert (uneven is None) == (n_odd == 0)
    if n_odd:
        assert f"{n_odd} of {len(dates) - 1} steps differ from the usual {freq}" in uneven
    assert list(forecast_dates(dates[-1], alias, 3)) == list(pd.DatetimeIndex(expected))
    s = pd.Series(np.sin(np.arange(len(dates)) / 3), index=dates, name="v")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DateWarning)
        fc = GRUForecaster(window=5, units=3, epochs=1, random_state=0, device="cpu").fit(s)
    assert fc.freq_ == freq
    assert list(fc.predict(steps=3).index) == list(pd.DatetimeIndex(expected))
    assert default_season_length(freq) == {"B": 5, "3MS": 4}.get(freq, 12)


def test_a_model_of_months_on_the_15th_saves_and_loads(tmp_path):
    from fastgru.serving import load_forecaster

    s = pd.Series(np.arange(30.0), index=MONTHS[:30] + pd.Timedelta(days=14), name="v")
    fc = GRUForecaster(window=5, units=3, epochs=1, random_state=0, device="cpu").fit(s)
    fc.save(tmp_path / "m.fgru")
    for loaded in (GRUForecaster.load(tmp_path / "m.fgru"), load_forecaster(tmp_path / "m.fgru")):
        assert loaded.freq_ == "M@15"
        pd.testing.assert_series_equal(loaded.predict(steps=2), fc.predict(steps=2))


def test_weekly_data_with_a_gap_gets_a_yearly_seasonal_baseline():
    dates = pd.date_range("2015-01-04", periods=200, freq="W-SUN").delete(50)  # a missing week
    t = np.arange(len(dates))
    s = pd.Series(10 + 5 * np.sin(2 * np.pi * t / 52), index=dates, name="v")
    fc = GRUForecaster(window=8, units=4, epochs=1, random_state=0, device="cpu")
    with pytest.warns(DateWarning, match=r"usual 7D \(the first: 2015-12-13 to 2015-12-27\)"):
        metrics = fc.backtest(s, test_size=20)
    assert fc.season_length_ == 52  # not 365 "days" of weeks
    assert np.isfinite(metrics.loc["seasonal_naive"]).all()


# ------------------------------------------------------------------ recursion and inverse scaling
def test_predict_is_inverse_scaled_direct_prediction(fitted):
    pred = fitted.predict(steps=1)
    np.testing.assert_allclose(pred.to_numpy(), manual_predict(fitted, fitted.history_), rtol=1e-12)
    # in original units: near the data (20 +- 5), not in [0, 1]
    assert 10 < pred.iloc[0] < 30


def test_recursive_beyond_horizon(fitted_h3):
    fc = fitted_h3
    direct = fc.predict(steps=3)
    pred = fc.predict(steps=7)
    assert pred.shape == (7,)
    assert pred.index[0] == fc.last_date_ + pd.Timedelta(days=1)
    assert pred.index[-1] == fc.last_date_ + pd.Timedelta(days=7)
    np.testing.assert_array_equal(pred.to_numpy()[:3], direct.to_numpy())
    np.testing.assert_allclose(direct.to_numpy(), manual_predict(fc, fc.history_), rtol=1e-12)
    # steps 4-6 come from the window extended by the first three forecasts
    hist = np.vstack([fc.history_, pred.to_numpy()[:3, None]])[-fc.window :]
    np.testing.assert_allclose(pred.to_numpy()[3:6], manual_predict(fc, hist), rtol=1e-6)
    hist = np.vstack([hist, pred.to_numpy()[3:6, None]])[-fc.window :]
    np.testing.assert_allclose(pred.to_numpy()[6], manual_predict(fc, hist)[0], rtol=1e-6)


def test_new_history_at_another_frequency_is_an_error(df, fitted):
    hourly = df.assign(Date=pd.date_range("2021-01-01", periods=len(df), freq="h"))
    with pytest.raises(DataError, match=r"do not step by the model's frequency D \(e\.g\. "
                       r"2021-01-05 22:00:00 to 2021-01-05 23:00:00\)"):  # fmt: skip
        fitted.predict(steps=2, data=hourly)
    gap = df.drop(index=df.index[-3])  # one step of two days: still daily data
    assert len(fitted.predict(steps=2, data=gap)) == 2


def test_predict_from_new_history(df, fitted):
    part = df.iloc[:80]
    pred = fitted.predict(steps=2, data=part)
    assert pred.index.equals(pd.date_range(part["Date"].iloc[-1], periods=3, freq="D")[1:])
    hist = part[["Temp"]].to_numpy()[-10:]
    np.testing.assert_allclose(pred.to_numpy()[0], manual_predict(fitted, hist)[0], rtol=1e-12)
    assert not np.allclose(pred.to_numpy()[0], fitted.predict(1).to_numpy()[0])
    with pytest.raises(DataError, match=r"the data has 5 rows; .* last window = 10 rows"):
        fitted.predict(data=df.iloc[:5])
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        fitted.predict(steps=0)


# ------------------------------------------------------------------ features
def test_features_are_inputs(df, fitted_feat):
    fc = fitted_feat
    assert fc.columns_ == ["Temp", "Hum"] and fc.regressor_.n_features_in_ == 2
    assert fc.history_.shape == (10, 2)
    pred = fc.predict()  # up to horizon: no future values needed
    assert len(pred) == 2
    np.testing.assert_allclose(pred.to_numpy(), manual_predict(fc, fc.history_), rtol=1e-12)
    # the feature's history changes the forecast
    other = df.assign(Hum=df["Hum"] * 3)
    assert not np.allclose(fc.predict(data=other).to_numpy(), pred.to_numpy())


@pytest.mark.parametrize(
    "last,freq,expected",
    [
        ("2001-03-07", "W-SUN", ["2001-03-11", "2001-03-18"]),  # a Wednesday: next Sunday
        ("2001-03-04", "W-SUN", ["2001-03-11", "2001-03-18"]),
        ("2001-03-15", "MS", ["2001-04-01", "2001-05-01"]),
        ("2020-01-04", "B", ["2020-01-06", "2020-01-07"]),  # a Saturday
        ("2020-01-31", "D", ["2020-02-01", "2020-02-02"]),
        ("2020-01-31 23:00", "h", ["2020-02-01 00:00", "2020-02-01 01:00"]),
    ],
)
def test_forecast_dates_do_not_skip_a_step(last, freq, expected):
    """The first forecast date is one step after the last date, also when the last date is
    not on an anchored frequency (pd.date_range(start=last) would roll it forward first
    and skip a step)."""
    from fastgru.serving import forecast_dates

    assert list(forecast_dates(pd.Timestamp(last), freq, 2)) == [pd.Timestamp(e) for e in expected]


def test_features_need_future_values(fitted_feat):
    fc = fitted_feat
    with pytest.raises(DataError, match=r"forecasting 5 steps past a horizon of 2 needs future "
                       r"values of Hum: pass future=DataFrame with those columns, or forecast "
                       r"at most 2 steps \(--steps\)"):  # fmt: skip
        fc.predict(steps=5)
    with pytest.raises(DataError, match="future has no column 'Hum'"):
        fc.predict(steps=5, future=pd.DataFrame({"Other": np.zeros(5)}))
    with pytest.raises(DataError, match="future column 'Hum' needs 5 numeric values"):
        fc.predict(steps=5, future=pd.DataFrame({"Hum": np.zeros(4)}))
    with pytest.raises(DataError, match="future column 'Hum' needs 5 numeric values"):
        fc.predict(steps=5, future=pd.DataFrame({"Hum": [1, 2, "x", 4, 5]}))
    future = pd.DataFrame({"Hum": [50.0, 55, 60, 65, 70]})
    pred = fc.predict(steps=5, future=future)
    assert len(pred) == 5
    np.testing.assert_array_equal(pred.to_numpy()[:2], fc.predict().to_numpy())
    # steps 3-4 use the future feature values at steps 1-2 in the extended window
    hist = np.vstack([fc.history_, np.column_stack([pred.to_numpy()[:2], [50.0, 55]])])[-10:]
    np.testing.assert_allclose(pred.to_numpy()[2:4], manual_predict(fc, hist), rtol=1e-6)
    changed = fc.predict(steps=5, future=future * 0.5)
    np.testing.assert_array_equal(changed.to_numpy()[:2], pred.to_numpy()[:2])
    assert not np.allclose(changed.to_numpy()[2:], pred.to_numpy()[2:])
    # indexed by dates: the rows of the forecast dates, wherever they are in the frame
    calendar = pd.DataFrame(
        {"Hum": np.arange(130.0)},
        index=pd.date_range(fc.last_date_ - pd.Timedelta(days=119), periods=130),
    )
    calendar.loc[pred.index, "Hum"] = future["Hum"].to_numpy()
    np.testing.assert_array_equal(fc.predict(steps=5, future=calendar), pred)
    np.testing.assert_array_equal(fc.predict(steps=5, future=calendar.iloc[::-1]), pred)
    np.testing.assert_array_equal(fc.predict(steps=5, future=future["Hum"]), pred)  # a Series
    with pytest.raises(DataError, match=r"future has no row for 2020-05-03; indexed by dates, "
                       r"it needs the forecast dates 2020-04-30 to 2020-05-04"):  # fmt: skip
        fc.predict(steps=5, future=calendar.drop(index=pd.Timestamp("2020-05-03")))


# ------------------------------------------------------------------ scaling
def test_minmax_scaler_fitted_on_training_data_only(df):
    train = df.iloc[:100]
    fc = GRUForecaster(target="Temp", features=["Hum"], **TINY).fit(train)
    vals = train[["Temp", "Hum"]].to_numpy()
    np.testing.assert_array_equal(fc.scale_offset_, vals.min(axis=0))
    np.testing.assert_array_equal(fc.scale_, vals.max(axis=0) - vals.min(axis=0))
    big = df.assign(Temp=df["Temp"] + 100.0)  # out of the training range
    before = fc.scale_.copy(), fc.scale_offset_.copy()
    pred = fc.predict(data=big)
    np.testing.assert_array_equal(fc.scale_, before[0])
    np.testing.assert_array_equal(fc.scale_offset_, before[1])
    np.testing.assert_allclose(
        pred.to_numpy(), manual_predict(fc, big[["Temp", "Hum"]].to_numpy()[-10:]), rtol=1e-12
    )


def test_standard_and_no_scaler(df):
    vals = df[["Temp"]].to_numpy()
    fc = GRUForecaster(target="Temp", scaler="standard", **TINY).fit(df)
    np.testing.assert_array_equal(fc.scale_offset_, vals.mean(axis=0))
    np.testing.assert_array_equal(fc.scale_, vals.std(axis=0))
    fc = GRUForecaster(target="Temp", scaler="none", **TINY).fit(df)
    np.testing.assert_array_equal(fc.scale_offset_, [0.0])
    np.testing.assert_array_equal(fc.scale_, [1.0])
    const = df.assign(Temp=5.0)
    fc = GRUForecaster(target="Temp", **TINY).fit(const)  # constant column: scale 1, no 0/0
    np.testing.assert_array_equal(fc.scale_, [1.0])
    assert np.isfinite(fc.predict(3)).all()


# ------------------------------------------------------------------ dates as users write them
def write(path, text):
    path.write_text(text)
    return path


def test_offsets_that_change_with_summer_time(tmp_path):
    """ISO dates with the UTC offsets of a summer-time zone (the usual export of meters and
    APIs) were refused with pandas' 'Mixed timezones detected'."""
    hours = pd.date_range("2021-03-27", periods=96, freq="h", tz="Europe/Berlin")
    days = pd.date_range("2021-03-01", periods=60, freq="D", tz="Europe/Berlin")
    for stamps, freq, tz in ((hours, "h", "UTC"), (days, "D", None)):
        rows = "".join(f"{t.isoformat()},{i}\n" for i, t in enumerate(stamps))
        dates, values, _ = prepare_frame(write(tmp_path / "tz.csv", "timestamp,load\n" + rows))
        assert str(dates.tz) == str(tz) and infer_frequency(dates) == freq
        # hours: the same instants, in UTC; days: the local dates as written
        expected = stamps.tz_convert("UTC") if tz else stamps.tz_localize(None)
        assert list(dates) == list(expected)


@pytest.mark.parametrize("tz", ["Europe/Berlin", "UTC", None])
def test_save_and_load_keep_the_time_zone(tmp_path, tz):
    from fastgru.serving import load_forecaster

    s = pd.Series(np.sin(np.arange(60) / 3), name="v",
                  index=pd.date_range("2021-01-27", periods=60, freq="D", tz=tz))  # fmt: skip
    fc = GRUForecaster(window=5, units=3, epochs=1, random_state=0, device="cpu").fit(s)
    fc.save(tmp_path / "m.fgru")
    pred = fc.predict(steps=3)  # after the change to summer time on 2021-03-28
    for loaded in (GRUForecaster.load(tmp_path / "m.fgru"), load_forecaster(tmp_path / "m.fgru")):
        assert loaded.predict(steps=3).index.equals(pred.index)
        assert str(loaded.last_date_.tz) == str(pred.index.tz)


def test_csv_files_as_spreadsheets_write_them(tmp_path):
    # spaces after the commas, and rows of separators only at the end
    df = read_csv(write(tmp_path / "a.csv", "Date, Temp\n2021-01-01, 1.5\n2021-01-02, 2.5\n"
                        "2021-01-03, 3\n,\n,\n"))  # fmt: skip
    dates, values, columns = prepare_frame(df, target="Temp")
    assert columns == ["Temp"] and len(dates) == 3 and list(values[:, 0]) == [1.5, 2.5, 3.0]
    # semicolons, decimal commas, dotted day-first dates, a date column not named Date
    df = read_csv(write(tmp_path / "b.csv", "Datum;Wert\n01.02.2021;10,5\n02.02.2021;1.234,5\n"
                        "03.02.2021;9\n"))  # fmt: skip
    with pytest.warns(DateWarning, match=r"01.02.2021. \(row 1\).*read day first as 2021-02-01"):
        dates, values, columns = prepare_frame(df)
    assert columns == ["Wert"] and list(values[:, 0]) == [10.5, 1234.5, 9.0]
    assert list(dates) == list(pd.date_range("2021-02-01", periods=3))
    # tabs
    dates, values, _ = prepare_frame(write(tmp_path / "c.tsv", "Date\tv\n2021-01-01\t1\n"
                                           "2021-01-02\t2\n"))  # fmt: skip
    assert list(values[:, 0]) == [1.0, 2.0]
    # thousands separators: the value and the fix, not "name the column to forecast"
    with pytest.raises(
        DataError,
        match=r"column 'Temp' has a non-numeric value '10,013.0' at "
        r"row 1 \(2021-01-01\); write numbers without thousands separators",
    ):
        prepare_frame(write(tmp_path / "d.csv", 'Date,Temp\n2021-01-01,"10,013.0"\n'
                            '2021-01-02,"11,000.5"\n'))  # fmt: skip
    with pytest.raises(DataError, match=r"date column 'Date' is empty at row 2"):
        prepare_frame(write(tmp_path / "e.csv", "Date,v\n2021-01-01,1\n,2\n2021-01-03,3\n"))


def test_an_index_of_dates_outranks_a_column_that_looks_like_dates():
    idx = pd.date_range("2021-01-01", periods=5, name="when")
    df = pd.DataFrame({"v": np.arange(5.0), "note": ["2020-12-31"] * 5}, index=idx)
    dates, _, columns = prepare_frame(df, target="v")
    assert list(dates) == list(idx) and columns == ["v"]


def test_separators_decimal_commas_and_dates_that_are_not(tmp_path):
    """From a review of the readers above: a header's comma does not make a semicolon file
    a comma file; dots group thousands in semicolon files; NA stays missing there; tab files
    with decimal commas; version numbers are not dates."""
    df = read_csv(write(tmp_path / "a.csv", "Datum;Temperatur (°C, Mittel)\n01.01.2021;10,5\n"
                        "02.01.2021;11,5\n03.01.2021;12,5\n"))  # fmt: skip
    assert list(df.columns) == ["Datum", "Temperatur (°C, Mittel)"]
    dates, values, _ = prepare_frame(df)
    assert list(values[:, 0]) == [10.5, 11.5, 12.5] and dates[0] == pd.Timestamp("2021-01-01")
    df = read_csv(write(tmp_path / "b.csv", "Datum;Wert;Menge\n01.01.2021;1.234;10,5\n"
                        "02.01.2021;987;NA\n03.01.2021;1.500;12,5\n"))  # fmt: skip
    _, values, _ = prepare_frame(df, target="Wert", features=["Menge"], fill="ffill")
    assert values.tolist() == [[1234.0, 10.5], [987.0, 10.5], [1500.0, 12.5]]
    df = read_csv(write(tmp_path / "c.tsv", "Datum\tWert\n2021-01-01\t10,5\n2021-01-02\t1.250\n"))
    assert list(prepare_frame(df)[1][:, 0]) == [10.5, 1250.0]  # (with decimal commas)
    with pytest.raises(DataError, match="no dates found"):
        prepare_frame(write(tmp_path / "d.csv", "build,value\n1.2.10,5\n1.2.11,6\n1.2.12,7\n"))
    idx = pd.Index(["2021-01-01", "2021-01-02", "2021-01-03"])
    frame = pd.DataFrame({"ver": ["01.02.2010", "01.02.2011", "01.02.2012"], "y": [1.0, 2, 3]},
                         index=idx)  # fmt: skip
    assert list(prepare_frame(frame, target="y")[0]) == list(pd.to_datetime(idx))


def test_more_dates_as_written(tmp_path):
    # day first with changing UTC offsets; some dates with an offset and some without
    rows = ["12.03.2021 00:00+01:00", "13.03.2021 00:00+01:00", "01.04.2021 00:00+02:00"]
    text = "Date,v\n" + "".join(f"{r},{i}\n" for i, r in enumerate(rows))
    dates, _, _ = prepare_frame(write(tmp_path / "a.csv", text))
    assert list(dates) == list(pd.to_datetime(["2021-03-12", "2021-03-13", "2021-04-01"]))
    hourly = ["01.04.2021 10:00+02:00", "01.04.2021 11:00+02:00", "31.10.2021 02:30+02:00",
              "31.10.2021 02:30+01:00"]  # fmt: skip
    text = "Date,v\n" + "".join(f"{r},{i}\n" for i, r in enumerate(hourly))
    dates, _, _ = prepare_frame(write(tmp_path / "b.csv", text))
    assert str(dates.tz) == "UTC" and dates[2] == pd.Timestamp("2021-10-31 00:30", tz="UTC")
    assert dates[3] - dates[2] == pd.Timedelta(hours=1)
    text = "Date,v\n2021-03-27T00:00:00,1\n2021-03-28T00:00:00+01:00,2\n"
    with pytest.raises(DataError, match=r"date column 'Date' cannot be read as dates in one "
                       r"way .*all with a UTC offset, or none"):  # fmt: skip
        prepare_frame(write(tmp_path / "c.csv", text))
    with pytest.raises(DataError, match="column 'v' has no values"):
        prepare_frame(write(tmp_path / "d.csv", "Date,v\n2021-01-01,\n2021-01-02,\n"), fill="ffill")


@pytest.mark.parametrize(
    "dates, freq",
    [
        (pd.date_range("2021-01-15 10:00", periods=24, freq="MS") + pd.Timedelta(days=14), "M@15"),
        (pd.DatetimeIndex(["2021-01-31", "2021-02-28"]), "ME"),
        (pd.DatetimeIndex(["2021-01-01", "2021-02-01"]), "MS"),
        (pd.DatetimeIndex(["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-08"]), "D"),
    ],
)  # fmt: skip
def test_calendar_steps_at_a_time_of_day_and_from_two_dates(dates, freq):
    from fastgru.data import frequency_of

    assert frequency_of(dates)[0] == freq  # (weekdays without a weekend between: days)


def test_a_frame_without_rows_says_so():
    # (it raised IndexError from the look at the first date for UTC offsets)
    empty = pd.DataFrame({"Date": pd.Series([], dtype=object), "v": pd.Series([], dtype=float)})
    with pytest.raises(DataError, match="the series has 0 rows; window"):
        GRUForecaster(window=3, units=2, epochs=1, device="cpu").fit(empty)


def test_backtest_without_training_values_says_so():
    y = np.arange(40.0)
    y[:30] = np.nan
    s = pd.Series(y, index=pd.date_range("2021-01-01", periods=40), name="y")
    fc = GRUForecaster(window=3, units=2, epochs=1, device="cpu", fill="interpolate")
    with pytest.raises(DataError, match="column 'y' has no values in the 30 rows before the test"):
        fc.backtest(s, test_size=10)


def test_dates_in_the_index_as_pandas_gives_them():
    months = pd.period_range("2020-01", periods=30, freq="M")
    dates, _, _ = prepare_frame(pd.Series(np.arange(30.0), index=months, name="v"))
    assert list(dates) == list(months.to_timestamp()) and infer_frequency(dates) == "MS"
    df = pd.DataFrame(
        {"Temp": np.arange(5.0)},
        index=pd.Index([f"2021-01-0{i}" for i in range(1, 6)], name="Date"),
    )
    for date_col in (None, "Date"):  # read_csv(..., index_col="Date"): strings
        dates, _, _ = prepare_frame(df, date_col=date_col)
        assert list(dates) == list(pd.date_range("2021-01-01", periods=5))


@pytest.mark.parametrize("scaler, scale", [("standard", 1e160), ("minmax", 9e307)])
def test_values_too_large_to_scale_are_an_error(df, scaler, scale):
    # The spread overflows float64 (std beyond ~1e154, max - min beyond ~1.8e308): it was a
    # NaN forecast (standard) or a "values contain NaN or inf" error (minmax).
    huge = df.assign(Hum=scale * np.sin(np.arange(len(df)) / 5))
    fc = GRUForecaster(target="Temp", features=["Hum"], scaler=scaler, **TINY)
    with pytest.raises(DataError, match=r"column 'Hum' is too large to scale .*divide it"):
        fc.fit(huge)
    assert not hasattr(fc, "scale_")


# ------------------------------------------------------------------ backtest
Y = np.array([1.0, 2, 4, 7, 11, 16, 22, 29, 37, 46, 56, 67])


def tiny_series():
    return pd.Series(Y, index=pd.date_range("2022-01-01", periods=len(Y)), name="y")


@pytest.fixture(scope="module")
def tiny_backtest():
    fc = GRUForecaster(window=2, horizon=2, units=4, season_length=3, **{
        k: v for k, v in TINY.items() if k not in ("window", "units")})  # fmt: skip
    return fc, fc.backtest(tiny_series(), test_size=4)


def test_backtest_baselines_by_hand(tiny_backtest):
    fc, metrics = tiny_backtest
    assert list(metrics.index) == ["model", "naive", "seasonal_naive"]
    assert list(metrics.columns) == ["MAE", "RMSE", "MAPE", "origins"]
    assert metrics["origins"].tolist() == [3, 3, 3]
    # n = 12, test_size 4 -> origins 8, 9, 10 (first forecast row), horizon 2.
    # naive: the last value before the origin (29, 37, 46) for both steps.
    # actual: (37, 46), (46, 56), (56, 67) -> errors 8, 17, 9, 19, 10, 21
    naive = metrics.loc["naive"]
    assert naive["MAE"] == pytest.approx(84 / 6)
    assert naive["RMSE"] == pytest.approx(np.sqrt(1336 / 6))
    mape = np.mean([8 / 37, 17 / 46, 9 / 46, 19 / 56, 10 / 56, 21 / 67]) * 100
    assert naive["MAPE"] == pytest.approx(mape)
    # seasonal naive, m = 3: step h repeats y[origin - 1 + h - 3]: (16, 22), (22, 29), (29, 37)
    # errors 21, 24, 24, 27, 27, 30
    seasonal = metrics.loc["seasonal_naive"]
    assert seasonal["MAE"] == pytest.approx(153 / 6)
    assert seasonal["RMSE"] == pytest.approx(np.sqrt(3951 / 6))
    assert fc.season_length_ == 3

    preds = fc.backtest_predictions_
    assert list(preds.columns) == ["origin", "step", "actual", "model", "naive", "seasonal_naive"]
    assert preds["origin"].tolist() == list(pd.to_datetime(["2022-01-08"] * 2 + ["2022-01-09"] * 2
                                                          + ["2022-01-10"] * 2))  # fmt: skip
    assert preds["step"].tolist() == [1, 2, 1, 2, 1, 2]
    assert preds["actual"].tolist() == [37, 46, 46, 56, 56, 67]
    assert preds["naive"].tolist() == [29, 29, 37, 37, 46, 46]
    assert preds["seasonal_naive"].tolist() == [16, 22, 22, 29, 29, 37]
    model = forecast_metrics(preds["actual"], preds["model"])
    assert metrics.loc["model", ["MAE", "RMSE", "MAPE"]].to_dict() == pytest.approx(model)


def test_backtest_model_trained_before_test_period(tiny_backtest):
    fc, _ = tiny_backtest
    s = tiny_series()
    ref = clone(fc).fit(s.iloc[:8])  # same settings, fitted on the rows before the test only
    np.testing.assert_array_equal(ref.scale_offset_, [1.0])
    np.testing.assert_array_equal(ref.scale_, [28.0])  # max 29 - min 1 of the training rows
    expected = np.concatenate([ref.predict(data=s.iloc[:o]).to_numpy() for o in (8, 9, 10)])
    np.testing.assert_allclose(fc.backtest_predictions_["model"], expected, rtol=1e-6)


def test_backtest_seasonal_naive_needs_a_season_of_history():
    fc = GRUForecaster(window=2, horizon=2, units=4, season_length=9, epochs=1, random_state=0,
                       device="cpu")  # fmt: skip
    metrics = fc.backtest(tiny_series(), test_size=4)
    # origin 8 has no value 9 steps back for step 1: left out. origins 9, 10: (1, 2), (2, 4)
    # against (46, 56), (56, 67) -> errors 45, 54, 54, 63
    assert metrics.loc["seasonal_naive", "MAE"] == pytest.approx(216 / 4)
    assert metrics["origins"].tolist() == [3, 3, 2]  # the table says so
    # the default season of daily data (365 days) is longer than the series: no baseline
    fc.set_params(season_length=None)
    metrics = fc.backtest(tiny_series(), test_size=4)
    assert fc.season_length_ == 365
    assert metrics.loc["seasonal_naive", ["MAE", "RMSE", "MAPE"]].isna().all()
    assert metrics["origins"].tolist() == [3, 3, 0]
    assert metrics.loc["naive", "MAE"] == pytest.approx(14.0)


def test_backtest_refit_every():
    s = tiny_series()
    fc = GRUForecaster(window=2, horizon=2, units=4, epochs=1, random_state=0, device="cpu")
    metrics = fc.backtest(s, test_size=4, refit_every=1)
    assert metrics.shape == (3, 4) and np.isfinite(metrics.loc["model"]).all()
    # each origin's forecast comes from a model retrained on all rows before it
    expected = [clone(fc).fit(s.iloc[:o]).predict(data=s.iloc[:o]) for o in (8, 9, 10)]
    np.testing.assert_allclose(fc.backtest_predictions_["model"],
                               np.concatenate([e.to_numpy() for e in expected]),
                               rtol=1e-6)  # fmt: skip
    assert metrics.loc["naive", "MAE"] == pytest.approx(14.0)
    with pytest.raises(ValueError, match="refit_every must be an integer >= 1, got 0"):
        fc.backtest(s, test_size=4, refit_every=0)


@pytest.mark.parametrize("fill", ["interpolate", "ffill"])
def test_backtest_fills_without_the_future(fill):
    """Filled over the whole series, a gap before the test period interpolated towards its
    first value (naive forecast 514 = (28 + 1000) / 2; training and the scaler saw it), and
    filled test values were scored as actuals (ffill: a free zero error for naive)."""
    y = np.arange(40, dtype=float)
    y[29] = y[35] = np.nan  # the last training row, and one in the test period
    fc = GRUForecaster(window=5, fill=fill, units=3, epochs=1, random_state=0, device="cpu")
    first = {}
    for y30 in (1000.0, -7.0):
        y[30] = y30
        s = pd.Series(y, index=pd.date_range("2021-01-01", periods=40, freq="D"), name="v")
        table = fc.backtest(s, test_size=10)
        pred = fc.backtest_predictions_
        first[y30] = pred["model"].iloc[0]
        assert pred["naive"].iloc[0] == 28.0  # the last value seen before the origin
        assert np.isnan(pred["actual"].iloc[5]) and pred["naive"].iloc[5] == 34.0
        assert table.loc["model", "origins"] == 9  # the origin whose actual is missing
        seen = pred["actual"].notna()
        assert table.loc["naive", "MAE"] == pytest.approx(
            (pred["actual"] - pred["naive"])[seen].abs().mean()
        )
    assert first[1000.0] == first[-7.0]  # the first forecast knows nothing after its origin


def test_backtest_errors():
    s = tiny_series()
    fc = GRUForecaster(window=2, horizon=2, units=4, epochs=1, device="cpu")
    with pytest.raises(DataError, match=r"the test period has 1 rows, fewer than horizon = 2"):
        fc.backtest(s, test_size=1)
    with pytest.raises(DataError, match=r"only 3 rows before the test period; window \+ "
                       r"horizon = 4 are needed to train"):  # fmt: skip
        fc.backtest(s, test_size=9)
    with pytest.raises(DataError, match=r"the test period of 100 rows leaves none of the "
                       r"data's 12 rows to train on; use a smaller test_size"):  # fmt: skip
        fc.backtest(s, test_size=100)
    with pytest.raises(ValueError, match="test_size must be a fraction in"):
        fc.backtest(s, test_size=0)
    with pytest.raises(ValueError, match="test_size must be a fraction in"):
        fc.backtest(s, test_size=1.5)


def test_learned_quality_beats_naive():
    n = 600
    rng = np.random.default_rng(0)
    t = np.arange(n)
    s = pd.Series(np.sin(2 * np.pi * t / 20) + 0.05 * rng.normal(size=n),
                  index=pd.date_range("2020-01-01", periods=n), name="y")  # fmt: skip
    fc = GRUForecaster(window=20, units=16, epochs=10, learning_rate=1e-2, random_state=0,
                       device="cpu", season_length=20)  # fmt: skip
    metrics = fc.backtest(s, test_size=100)
    assert metrics.loc["model", "RMSE"] < 0.6 * metrics.loc["naive", "RMSE"]


# ------------------------------------------------------------------ save / load
@pytest.mark.parametrize("model", ["fitted", "fitted_feat", "fitted_h3"])
def test_save_load_round_trip(model, request, df, tmp_path):
    fc = request.getfixturevalue(model)
    path = tmp_path / "m.fgru"
    fc.save(path)
    back = GRUForecaster.load(path)
    assert back.get_params() == fc.get_params()
    assert back.columns_ == fc.columns_ and back.freq_ == fc.freq_
    assert back.last_date_ == fc.last_date_ and back.n_train_ == fc.n_train_
    np.testing.assert_array_equal(back.history_, fc.history_)
    np.testing.assert_array_equal(back.scale_, fc.scale_)
    np.testing.assert_array_equal(back.scale_offset_, fc.scale_offset_)
    pd.testing.assert_series_equal(back.predict(), fc.predict())
    pd.testing.assert_series_equal(back.predict(data=df.iloc[:90]), fc.predict(data=df.iloc[:90]))
    if model == "fitted_h3":
        pd.testing.assert_series_equal(back.predict(8), fc.predict(8))


def test_save_unfitted_and_generator_seed(df, tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GRUForecaster().save(tmp_path / "x.fgru")
    assert not (tmp_path / "x.fgru").exists()
    fc = GRUForecaster(target="Temp", **{**TINY, "random_state": np.random.default_rng(0)})
    fc.fit(df).save(tmp_path / "g.fgru")
    back = GRUForecaster.load(tmp_path / "g.fgru")
    assert back.random_state is None
    pd.testing.assert_series_equal(back.predict(2), fc.predict(2))


# ------------------------------------------------------------------ fill modes
def gap_frame():
    return pd.DataFrame(
        {
            "Date": pd.date_range("2020-01-01", periods=8),
            "v": [1.0, 2.0, 3.0, np.nan, np.nan, 6.0, 7.0, 8.0],
        }
    )


def test_missing_values_error_names_rows():
    with pytest.raises(DataError, match=r"^column 'v' has missing values at rows 4 \(2020-01-04\), "
                       r"5 \(2020-01-05\); fill them with fill='ffill', 'interpolate' or 'drop' "
                       r"\(--fill\)$"):  # fmt: skip
        prepare_frame(gap_frame())
    many = gap_frame().assign(v=[np.nan] * 7 + [1.0])
    with pytest.raises(DataError, match=r"rows 1 \(2020-01-01\), 2 .*, 5 \(2020-01-05\) and 2 "
                       "more; fill"):  # fmt: skip
        prepare_frame(many)


def test_missing_value_texts_in_a_csv_are_missing_values(tmp_path):
    """Texts such as "NA", "NaN", "null" (as pandas reads them) are missing values, which --fill can
    fill, not non-numeric ones; a real non-number is still reported as such."""
    from fastgru.data import read_csv

    path = tmp_path / "na.csv"
    path.write_text("Date,v\n2020-01-01,1\n2020-01-02,NA\n2020-01-03, null \n2020-01-04,NaN\n"
                    "2020-01-05,#N/A\n2020-01-06,6\n")  # fmt: skip
    with pytest.raises(DataError, match=r"missing values at rows 2 \(2020-01-02\), 3 .*, 5 "
                       r"\(2020-01-05\); fill them"):  # fmt: skip
        prepare_frame(read_csv(path))
    np.testing.assert_array_equal(prepare_frame(read_csv(path), fill="ffill")[1][:, 0],
                                  [1, 1, 1, 1, 1, 6])  # fmt: skip
    path.write_text("Date,v\n2020-01-01,1\n2020-01-02,n.a.\n")
    with pytest.raises(DataError, match=r"non-numeric value 'n.a.' at row 2"):
        prepare_frame(read_csv(path))


def test_fill_ffill_interpolate_drop():
    dates, vals, cols = prepare_frame(gap_frame(), fill="ffill")
    assert cols == ["v"] and len(dates) == 8
    np.testing.assert_array_equal(vals[:, 0], [1, 2, 3, 3, 3, 6, 7, 8])
    _, vals, _ = prepare_frame(gap_frame(), fill="interpolate")
    np.testing.assert_allclose(vals[:, 0], [1, 2, 3, 4, 5, 6, 7, 8])
    dates, vals, _ = prepare_frame(gap_frame(), fill="drop")
    np.testing.assert_array_equal(vals[:, 0], [1, 2, 3, 6, 7, 8])
    assert list(dates.strftime("%d")) == ["01", "02", "03", "06", "07", "08"]
    # leading gaps: ffill takes the first value, interpolate extends it
    lead = gap_frame().assign(v=[np.nan, 2.0, 3, 4, 5, 6, 7, 8])
    np.testing.assert_array_equal(prepare_frame(lead, fill="ffill")[1][:2, 0], [2, 2])
    np.testing.assert_array_equal(prepare_frame(lead, fill="interpolate")[1][:2, 0], [2, 2])
    # interpolation in time: an irregular gap is weighted by the days between values
    irregular = pd.DataFrame({"Date": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-05"]),
                              "v": [0.0, np.nan, 4.0]})  # fmt: skip
    np.testing.assert_allclose(prepare_frame(irregular, fill="interpolate")[1][:, 0], [0, 1, 4])


def test_forecaster_with_fill(df):
    gappy = df.copy()
    gappy.loc[[50, 51, 52], "Temp"] = np.nan
    with pytest.raises(DataError, match=r"rows 51 \(2020-02-20\), 52 .*, 53 \(2020-02-22\)"):
        GRUForecaster(target="Temp", **TINY).fit(gappy)
    with pytest.warns(DateWarning, match="not evenly spaced: 1 of 116 steps"):
        fc = GRUForecaster(target="Temp", fill="drop", **TINY).fit(gappy)
    # the gap makes the dates irregular: the median step is still a day ("D", not "24h"), so
    # the seasonal period stays a year of days
    assert fc.n_train_ == len(df) - 3 and fc.freq_ == "D"
    assert default_season_length(fc.freq_) == 365
    assert fc.predict(2).index[0] == pd.Timestamp("2020-04-30")
    fc = GRUForecaster(target="Temp", fill="interpolate", **TINY).fit(gappy)
    assert fc.n_train_ == len(df)
    assert np.isfinite(fc.predict(data=gappy)).all()


# ------------------------------------------------------------------ DataError messages
def test_prepare_frame_forms(df):
    dates, vals, cols = prepare_frame(df, target="Temp", features=["Hum"])
    assert cols == ["Temp", "Hum"] and vals.shape == (len(df), 2) and vals.dtype == np.float64
    assert dates.equals(pd.DatetimeIndex(df["Date"]))
    # strings, as read_csv gives them; the date column found by name
    strings = df.astype(str).rename(columns={"Date": "timestamp"})
    d2, v2, _ = prepare_frame(strings, target="Temp", features=["Hum"])
    assert d2.equals(dates)
    np.testing.assert_allclose(v2, vals)
    # a Series indexed by dates; the only numeric column as target
    s = df.set_index("Date")["Temp"]
    assert prepare_frame(s)[2] == ["Temp"]
    assert prepare_frame(df[["Date", "Temp"]])[2] == ["Temp"]
    assert prepare_frame(df.rename(columns={"Date": "when"}), "Temp", date_col="when")[2] == [
        "Temp"
    ]


@pytest.mark.parametrize(
    "case, kwargs, message",
    [
        ("good", dict(fill="zero"),
         "fill must be one of ffill, interpolate, drop or None, got 'zero'"),
        ("series", dict(target="Hum"), "the series is named 'Temp', not 'Hum'"),
        ("array", {}, "expected a pandas Series or DataFrame indexed by dates .*got ndarray"),
        ("good", dict(date_col="When"),
         "no date column 'When'; available columns: Date, Temp, Hum"),
        ("nodate", {}, r"no dates found: index the data by dates or name the date column "
                       r"\(date_col / --date-col\); columns: Day, Temp"),
        ("good", {}, r"name the column to forecast \(target / --target\); available columns: "
                     "Temp, Hum"),
        ("good", dict(target="Nope"), "no column 'Nope'; available columns: Temp, Hum"),
        ("good", dict(target="Temp", features=["Hum", "Wind"]),
         "no column 'Wind'; available columns: Temp, Hum"),
        ("good", dict(target="Temp", features=["Temp"]),
         "column 'Temp' is the target; do not list it in features too"),
        ("nonnum", dict(target="Temp"),
         r"column 'Temp' has a non-numeric value 'abc' at row 4 \(2020-01-04\)"),
        ("inf", dict(target="Temp"), "column 'Temp' has an infinite value at row 3"),
        ("unsorted", dict(target="Temp"),
         r"dates are not sorted: row 3 \(2020-01-02\) comes after 2020-01-03; sort the data"),
        ("dup", dict(target="Temp"),
         "duplicate date 2020-01-02 at rows 2 and 3; keep one row per date"),
        ("baddate", dict(target="Temp"),
         "date column 'Date' has a value that is not a date at row 2: 'yesterday'"),
        ("hourly_dup", dict(target="Temp"),
         "duplicate date 2020-01-01 02:00:00 at rows 3 and 4; keep one row per date"),
    ],
)  # fmt: skip
def test_prepare_frame_errors(case, kwargs, message):
    base = frame(6).astype({"Temp": object})
    data = {
        "good": base,
        "series": base.set_index("Date")["Temp"].astype(float),
        "array": base[["Temp"]].to_numpy(),
        # (a column of dates under another name is found: see the spreadsheet test)
        "nodate": base.drop(columns="Hum")
        .rename(columns={"Date": "Day"})
        .assign(Day=lambda d: "day " + d.index.astype(str)),
        "nonnum": base.assign(Temp=base["Temp"].where(base.index != 3, "abc")),
        "inf": base.assign(Temp=base["Temp"].where(base.index != 2, np.inf)),
        "unsorted": base.iloc[[0, 2, 1, 3, 4, 5]],
        "dup": base.assign(Date=base["Date"].where(base.index != 2, base["Date"][1])),
        "baddate": base.astype({"Date": str}).assign(
            Date=lambda d: d["Date"].where(d.index != 1, "yesterday")
        ),
        "hourly_dup": frame(6, freq="h").assign(
            Date=lambda d: d["Date"].where(d.index != 3, d["Date"][2])
        ),
    }[case]
    with pytest.raises(DataError, match=message):
        prepare_frame(data, **kwargs)


def test_forecaster_errors(df):
    short = (r"^the series has 8 rows; window \+ horizon = 12 are needed for one training "
             "sample. Use a smaller window or more data$")  # fmt: skip
    with pytest.raises(DataError, match=short):
        GRUForecaster(target="Temp", window=10, horizon=2, device="cpu").fit(df.iloc[:8])
    with pytest.raises(DataError, match="need at least 2 dates to infer the frequency"):
        infer_frequency(pd.DatetimeIndex(["2020-01-01"]))
    for params, message in [
        (dict(window=0), "window must be an integer >= 1, got 0"),
        (dict(horizon=1.5), "horizon must be an integer >= 1, got 1.5"),
        (dict(scaler="robust"), "scaler must be one of minmax, standard, none, got 'robust'"),
        (dict(fill="bfill"), "fill must be one of ffill, interpolate, drop or None"),
        (dict(season_length=0), "season_length must be an integer >= 1, got 0"),
        (dict(features="Hum"), "features must be a list of column names"),
        (dict(units=0), "units must be a positive int"),
    ]:
        with pytest.raises(ValueError, match=message):
            GRUForecaster(target="Temp", **params).fit(df)
    with pytest.raises(DataError):  # DataError is a ValueError: one except clause for both
        raise DataError("x")
    assert issubclass(DataError, ValueError)


def test_read_csv(tmp_path, df):
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    raw = read_csv(path, "Date")
    assert list(raw.columns) == ["Date", "Temp", "Hum"] and len(raw) == len(df)
    # strings, converted by prepare_frame (which names the row of a bad value)
    assert not pd.api.types.is_numeric_dtype(raw["Temp"])
    dates, vals, _ = prepare_frame(raw, "Temp")
    np.testing.assert_allclose(vals[:, 0], df["Temp"], rtol=1e-12)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_csv(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="is a folder, not a CSV file"):
        read_csv(tmp_path)
    with pytest.raises(DataError, match="no date column 'Day'; available columns: Date, Temp, Hum"):
        read_csv(path, "Day")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DataError, match="is empty; expected a CSV with a header row"):
        read_csv(tmp_path / "e.csv")
    (tmp_path / "h.csv").write_text("Date,Temp\n")
    with pytest.raises(DataError, match="has a header but no data rows"):
        read_csv(tmp_path / "h.csv")
    (tmp_path / "b.csv").write_bytes(b"Date,Temp\n2020-01-01,\xff\xfe\n")
    with pytest.raises(DataError, match=r"b.csv is not UTF-8 text \(invalid start "
                       r"byte\); save it as UTF-8"):  # fmt: skip
        read_csv(tmp_path / "b.csv")


# ------------------------------------------------------------------ serving without sklearn
@pytest.fixture(scope="module")
def fitted_f64(df):
    return GRUForecaster(target="Temp", horizon=2, reset_after=True, dtype="float64",
                         **{**TINY, "units": 4}).fit(df)  # fmt: skip


def _light_and_full(fc, path):
    from fastgru.serving import SavedForecaster, load_forecaster

    fc.save(path)
    light = load_forecaster(path)
    assert isinstance(light, SavedForecaster)  # not the fallback to the estimator
    return light, GRUForecaster.load(path)


@pytest.mark.parametrize(
    "model, steps, history, future",
    [
        ("fitted", 1, 60, False),
        ("fitted", 5, 120, False),
        ("fitted_h3", 7, 80, False),  # recursive past the horizon
        ("fitted_feat", 2, 100, False),  # a feature column, direct
        ("fitted_feat", 5, 100, True),  # a feature column, recursive with future values
        ("fitted_f64", 3, 90, False),  # float64 weights, reset_after
        ("fitted_h3", None, None, False),  # from the stored history
    ],
)  # fmt: skip
def test_light_forecast_is_bit_identical(model, steps, history, future, request, df, tmp_path):
    fc = request.getfixturevalue(model)
    light, full = _light_and_full(fc, tmp_path / "m.fgru")
    kwargs = {"steps": steps}
    if history is not None:
        kwargs["data"] = df.iloc[:history]
    if future:
        kwargs["future"] = df[["Hum"]].iloc[history:]
    expected = full.predict(**kwargs)
    got = light.predict(**kwargs)
    assert np.array_equal(got.to_numpy(), expected.to_numpy())
    assert got.index.equals(expected.index) and got.name == expected.name
    assert np.array_equal(got.to_numpy(), fc.predict(**kwargs).to_numpy())


def test_light_forecast_errors_are_the_estimators(fitted_feat, df, tmp_path):
    light, full = _light_and_full(fitted_feat, tmp_path / "m.fgru")
    for kwargs in ({"steps": 0}, {"steps": 5, "data": df}, {"data": df.iloc[:5]},
                   {"data": df[["Date", "Temp"]]}):  # fmt: skip
        with pytest.raises(ValueError) as expected:
            full.predict(**kwargs)
        with pytest.raises(type(expected.value)) as got:
            light.predict(**kwargs)
        assert str(got.value) == str(expected.value)
    light.fill = full.fill = "ffill"
    gaps = df.astype({"Temp": float}).copy()
    gaps.loc[[110, 111], "Temp"] = np.nan
    assert np.array_equal(light.predict(2, data=gaps).to_numpy(),
                          full.predict(2, data=gaps).to_numpy())  # fmt: skip


def _rewrite(path, change):
    from fastgru.io import read_model, write_model

    header, arrays = read_model(path)
    change(header["metadata"], arrays)
    write_model(path, "GRUForecaster", header["metadata"], arrays)


def _set(*keys, value):
    def change(meta, arrays):
        d = meta
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return change


def _drop_array(name):
    return lambda meta, arrays: arrays.pop(name)


# Files with a valid checksum but metadata the estimator rejects or must handle itself.
BAD_METADATA = {
    "units": _set("regressor", "spec", "units", value=[5]),
    "spec_dtype": _set("regressor", "spec", "dtype", value="float16"),
    "spec_n_features": _set("regressor", "spec", "n_features", value=3),
    "units_zero": _set("regressor", "params", "units", value=[0]),
    "learning_rate": _set("regressor", "params", "learning_rate", value=-1.0),
    "epochs": _set("regressor", "params", "epochs", value=1.5),
    "dtype": _set("regressor", "params", "dtype", value="float16"),
    "reset_after": _set("regressor", "params", "reset_after", value="yes"),
    "unknown_regressor_param": _set("regressor", "params", "speed", value=1),
    "unknown_param": _set("params", "speed", value=1),
    "window": _set("params", "window", value=7),
    "columns": _set("columns", value=["Temp", "Hum"]),
    "last_date": _set("last_date", value="not a date"),
    "n_train": _set("n_train", value=None),
    "fitted": _set("regressor", "fitted", value=[]),
    "n_features": _set("regressor", "fitted", "n_features_in_", value=3),
    "no_history": _drop_array("history"),
    "no_theta": _drop_array("theta"),
    "no_adam": _drop_array("adam_m"),
    "no_regressor": lambda meta, arrays: meta.pop("regressor"),
}


@pytest.mark.parametrize("case", list(BAD_METADATA))
def test_light_loader_reports_the_estimators_errors(case, fitted, tmp_path):
    from fastgru.io import ModelFileError
    from fastgru.serving import load_forecaster

    path = tmp_path / "m.fgru"
    fitted.save(path)
    _rewrite(path, BAD_METADATA[case])
    with pytest.raises(ModelFileError) as expected:
        GRUForecaster.load(path)
    with pytest.raises(ModelFileError) as got:
        load_forecaster(path)
    assert str(got.value) == str(expected.value)


def test_light_loader_hands_over_to_the_estimator(fitted, df, tmp_path):
    from fastgru.serving import SavedForecaster, load_forecaster

    path = tmp_path / "m.fgru"
    fitted.save(path)
    _rewrite(path, _set("regressor", "params", "device", value="cuda"))
    assert isinstance(load_forecaster(path), GRUForecaster)  # may need CUDA: the estimator
    fitted.save(path)
    _rewrite(path, lambda meta, arrays: arrays["scale"].__setitem__(0, np.nan))
    light = load_forecaster(path)
    assert isinstance(light, SavedForecaster)
    with pytest.raises(ValueError, match="Input X contains NaN") as expected:
        GRUForecaster.load(path).predict(data=df)
    with pytest.raises(ValueError) as got:  # a non-finite window: the estimator's checks
        light.predict(data=df)
    assert str(got.value) == str(expected.value)
    gaps = df.copy()
    gaps.loc[[110, 111], "Temp"] = np.nan
    light.fill = "ffill"  # kept when the estimator takes over
    with pytest.raises(ValueError, match="Input X contains NaN"):
        light.predict(data=gaps)


def test_light_loader_knows_the_estimators_settings():
    import inspect

    from fastgru import GRURegressor, serving
    from fastgru.estimator import resolve_device

    assert serving._FORECASTER_PARAMS == set(inspect.signature(GRUForecaster).parameters)
    assert serving._REGRESSOR_PARAMS == set(inspect.signature(GRURegressor).parameters)
    bad = {"epochs": [0, 1.0, True], "batch_size": [0], "n_iter_no_change": [0], "verbose": [-1],
           "learning_rate": [0, -1e-3, float("inf"), "1"], "huber_delta": [0.0],
           "validation_fraction": [0, 1], "tol": [-1], "beta_1": [1.0], "beta_2": [1],
           "epsilon": [0], "momentum": [1.5], "optimizer": ["rmsprop"], "loss": ["l1"],
           "device": ["gpu"], "dtype": ["float16"], "clip_norm": [0, -1.0],
           "units": [0, [], [4, 0], [True], "4", [4.0]], "reset_after": [1],
           "shuffle": [None], "warm_start": ["no"], "nesterovs_momentum": [0]}  # fmt: skip
    good = {"epochs": [1, 100], "learning_rate": [1, 0.5], "clip_norm": [None, 1],
            "units": [4, [4, 3]], "momentum": [0, 1], "tol": [0], "validation_fraction": [0.5],
            "device": ["auto", "cpu", "cuda"], "dtype": ["float32", "float64"]}  # fmt: skip
    for expect_ok, table in ((False, bad), (True, good)):
        for name, values in table.items():
            for value in values:
                try:
                    GRURegressor(**{name: value})._check_params()
                    ok = True
                except (TypeError, ValueError):
                    ok = False
                assert ok is expect_ok, (name, value)
                assert serving.settings_ok({name: value}) is ok, (name, value)
    for device in ("auto", "cpu", "cuda"):
        if serving._runs_on_cpu(device):
            assert resolve_device(device) == "cpu"
