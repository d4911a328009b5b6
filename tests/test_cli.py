"""The ``fastgru`` command line, through Typer's ``CliRunner`` and as a real subprocess.

Every kind of bad input must end in one line on stderr that starts with ``Error:`` and names
the problem, exit code 2, no traceback and no output file. The happy paths train, forecast
and evaluate on a small CSV with a tiny network.
"""

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fastgru import GRUForecaster, GRURegressor
from fastgru.cli import app
from fastgru.io import read_model, write_model

runner = CliRunner()
N = 120
TINY = ["--window", "10", "--units", "8", "--epochs", "1", "--device", "cpu"]


def data_frame(n=N):
    t = np.arange(n)
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "Date": pd.date_range("2020-01-01", periods=n).strftime("%Y-%m-%d"),
            "Temp": np.round(20 + 5 * np.sin(2 * np.pi * t / 7) + rng.normal(size=n) * 0.3, 3),
            "Hum": np.round(50 + 10 * np.cos(t / 5), 3),
        }
    )


def write_bad_csvs(folder):
    good = data_frame().astype(str)
    good.to_csv(folder / "good.csv", index=False)
    bad = good.copy()
    bad.loc[5, "Temp"] = "abc"
    bad.to_csv(folder / "nonnumeric.csv", index=False)
    bad = good.copy()
    bad.loc[[5, 6], "Temp"] = ""
    bad.to_csv(folder / "gaps.csv", index=False)
    bad = good.copy()
    bad.loc[[5, 6]] = bad.loc[[6, 5]].to_numpy()
    bad.to_csv(folder / "unsorted.csv", index=False)
    bad = good.copy()
    bad.loc[6, "Date"] = bad.loc[5, "Date"]
    bad.to_csv(folder / "duplicate.csv", index=False)
    bad = good.copy()
    bad.loc[3, "Date"] = "notadate"
    bad.to_csv(folder / "baddate.csv", index=False)
    good.head(8).to_csv(folder / "short.csv", index=False)
    good[["Date", "Hum"]].to_csv(folder / "notemp.csv", index=False)
    (folder / "empty.csv").write_text("")
    (folder / "header.csv").write_text("Date,Temp\n")
    (folder / "latin1.csv").write_bytes(b"Date,Temp\n2020-01-01,\xff\xfe\n")
    (folder / "ragged.csv").write_text("Date,Temp\n2020-01-01,1\n2020-01-02,2,3,4\n")
    (folder / "adir.csv").mkdir()


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A folder with CSVs (good and bad) and model files (good and unreadable)."""
    folder = tmp_path_factory.mktemp("cli")
    write_bad_csvs(folder)
    model = folder / "model.fgru"
    result = runner.invoke(app, ["train", str(folder / "good.csv"), "--target", "Temp", *TINY,
                                 "--out", str(model)])  # fmt: skip
    assert result.exit_code == 0, result.output
    raw = model.read_bytes()
    (folder / "garbage.fgru").write_bytes(b"this is not a model\n")
    (folder / "truncated.fgru").write_bytes(raw[:100])
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0x10
    (folder / "flipped.fgru").write_bytes(bytes(flipped))
    newer = bytearray(raw)
    newer[8] = 9
    (folder / "newer.fgru").write_bytes(bytes(newer))
    rng = np.random.default_rng(0)
    GRURegressor(units=4, epochs=1, device="cpu", random_state=0).fit(
        rng.normal(size=(20, 5, 1)), rng.normal(size=20)
    ).save(folder / "regressor.fgru")
    (folder / "adir.fgru").mkdir()
    header, arrays = read_model(model)
    header["metadata"]["regressor"]["spec"]["units"] = [5]  # the weights are for 8 units
    write_model(folder / "badmeta.fgru", "GRUForecaster", header["metadata"], arrays)
    return folder


# name: (arguments, details the error line must contain, files that must not appear)
TRAIN = ["train", "good.csv", "--target", "Temp", *TINY]
CASES = {
    "missing_file": (["train", "missing.csv", "--target", "Temp", "--out", "o1.fgru"],
                     ["missing.csv does not exist"], ["o1.fgru"]),
    "missing_column": ([*TRAIN[:3], "Tmp", *TINY, "--out", "o2.fgru"],
                       ["no column 'Tmp'; available columns: Temp, Hum"], ["o2.fgru"]),
    "missing_date_column": ([*TRAIN, "--date-col", "Day", "--out", "o3.fgru"],
                            ["no date column 'Day'; available columns: Date, Temp, Hum"],
                            ["o3.fgru"]),
    "missing_feature": ([*TRAIN, "--features", "Hum,Wind", "--out", "o4.fgru"],
                        ["no column 'Wind'; available columns: Temp, Hum"], ["o4.fgru"]),
    "no_target": (["train", "good.csv", *TINY, "--out", "o5.fgru"],
                  ["--target", "available columns: Temp, Hum"], ["o5.fgru"]),
    "non_numeric": (["train", "nonnumeric.csv", "--target", "Temp", *TINY, "--out", "o6.fgru"],
                    ["column 'Temp' has a non-numeric value 'abc' at row 6 (2020-01-06)"],
                    ["o6.fgru"]),
    "nan_gaps": (["train", "gaps.csv", "--target", "Temp", *TINY, "--out", "o7.fgru"],
                 ["column 'Temp' has missing values at rows 6 (2020-01-06), 7 (2020-01-07)",
                  "--fill"], ["o7.fgru"]),
    "unsorted": (["train", "unsorted.csv", "--target", "Temp", *TINY, "--out", "o8.fgru"],
                 ["dates are not sorted: row 7 (2020-01-06) comes after 2020-01-07"],
                 ["o8.fgru"]),
    "duplicate": (["train", "duplicate.csv", "--target", "Temp", *TINY, "--out", "o9.fgru"],
                  ["duplicate date 2020-01-06 at rows 6 and 7"], ["o9.fgru"]),
    "bad_date": (["train", "baddate.csv", "--target", "Temp", *TINY, "--out", "o10.fgru"],
                 ["date column 'Date' has a value that is not a date at row 4: 'notadate'"],
                 ["o10.fgru"]),
    "too_short": (["train", "short.csv", "--target", "Temp", *TINY, "--out", "o11.fgru"],
                  ["the series has 8 rows; window + horizon = 11 are needed"], ["o11.fgru"]),
    "too_short_horizon": (["train", "short.csv", "--target", "Temp", "--window", "6",
                           "--horizon", "3", "--out", "o12.fgru"],
                          ["the series has 8 rows; window + horizon = 9"], ["o12.fgru"]),
    "empty_csv": (["train", "empty.csv", "--out", "o13.fgru"],
                  ["empty.csv is empty; expected a CSV with a header row"], ["o13.fgru"]),
    "header_only": (["train", "header.csv", "--out", "o14.fgru"],
                    ["header.csv has a header but no data rows"], ["o14.fgru"]),
    "not_utf8": (["train", "latin1.csv", "--out", "o15.fgru"],
                 ["latin1.csv is not UTF-8 text (", "save it as UTF-8"], ["o15.fgru"]),
    "ragged": (["train", "ragged.csv", "--out", "o16.fgru"],
               ["ragged.csv is not a readable CSV file", "line 3"], ["o16.fgru"]),
    "csv_is_folder": (["train", "adir.csv", "--out", "o17.fgru"],
                      ["adir.csv is a folder, not a CSV file"], ["o17.fgru"]),
    "bad_units": ([*TRAIN, "--units", "8,x", "--out", "o18.fgru"],
                  ["--units must be comma-separated integers like 50,50, got '8,x'"],
                  ["o18.fgru"]),
    "out_folder_missing": ([*TRAIN, "--out", "nowhere/o19.fgru"],
                           ["cannot write nowhere/o19.fgru: folder nowhere does not exist"],
                           ["nowhere"]),
    "out_is_folder": ([*TRAIN, "--out", "adir.fgru"], ["cannot write adir.fgru: it is a folder"],
                      []),
    # forecast: unreadable model files and bad history
    "model_missing": (["forecast", "missing.fgru", "good.csv", "--out", "f1.csv"],
                      ["model file missing.fgru does not exist"], ["f1.csv"]),
    "model_garbage": (["forecast", "garbage.fgru", "good.csv", "--out", "f2.csv"],
                      ["garbage.fgru is not a fastgru model file"], ["f2.csv"]),
    "model_truncated": (["forecast", "truncated.fgru", "good.csv", "--out", "f3.csv"],
                        ["truncated.fgru is truncated (100 bytes); save the model again"],
                        ["f3.csv"]),
    "model_flipped": (["forecast", "flipped.fgru", "good.csv", "--out", "f4.csv"],
                      ["flipped.fgru is corrupted or truncated (checksum mismatch)"], ["f4.csv"]),
    "model_newer": (["forecast", "newer.fgru", "good.csv", "--out", "f5.csv"],
                    ["newer.fgru uses model-file format 9, newer than this fastgru reads (1)"],
                    ["f5.csv"]),
    "model_other_kind": (["forecast", "regressor.fgru", "good.csv", "--out", "f6.csv"],
                         ["regressor.fgru holds a GRURegressor, not a GRUForecaster"], ["f6.csv"]),
    "model_is_folder": (["forecast", "adir.fgru", "good.csv", "--out", "f7.csv"],
                        ["adir.fgru is a folder, not a fastgru model file"], ["f7.csv"]),
    "model_bad_metadata": (["forecast", "badmeta.fgru", "good.csv", "--out", "f15.csv"],
                           ["badmeta.fgru: ", "weights, but the stored settings need"],
                           ["f15.csv"]),
    "model_is_csv": (["forecast", "good.csv", "good.csv", "--out", "f8.csv"],
                     ["good.csv is not a fastgru model file"], ["f8.csv"]),
    "forecast_missing_csv": (["forecast", "model.fgru", "missing.csv", "--out", "f9.csv"],
                             ["file missing.csv does not exist"], ["f9.csv"]),
    "forecast_short": (["forecast", "model.fgru", "short.csv", "--out", "f10.csv"],
                       ["the data has 8 rows; the model needs the last window = 10 rows"],
                       ["f10.csv"]),
    "forecast_gaps": (["forecast", "model.fgru", "gaps.csv", "--out", "f11.csv"],
                      ["column 'Temp' has missing values at rows 6 (2020-01-06)", "--fill"],
                      ["f11.csv"]),
    "forecast_missing_column": (["forecast", "model.fgru", "notemp.csv", "--out", "f12.csv"],
                                ["no column 'Temp'; available columns: Hum"], ["f12.csv"]),
    "forecast_unsorted": (["forecast", "model.fgru", "unsorted.csv", "--out", "f13.csv"],
                          ["dates are not sorted"], ["f13.csv"]),
    "forecast_out_folder_missing": (["forecast", "model.fgru", "good.csv", "--out",
                                     "nowhere/f14.csv"],
                                    ["cannot write nowhere/f14.csv: folder nowhere"], ["nowhere"]),
    # evaluate
    "evaluate_too_short": (["evaluate", "short.csv", "--target", "Temp", "--window", "6",
                            "--test-size", "3", "--units", "4"],
                           ["only 5 rows before the test period; window + horizon = 7"], []),
    "evaluate_missing_column": (["evaluate", "good.csv", "--target", "Nope", *TINY],
                                ["no column 'Nope'; available columns: Temp, Hum"], []),
    "evaluate_non_numeric": (["evaluate", "nonnumeric.csv", "--target", "Temp", *TINY],
                             ["non-numeric value 'abc' at row 6"], []),
    "evaluate_bad_test_size": (["evaluate", "good.csv", "--target", "Temp", "--test-size", "0",
                                *TINY], ["test_size must be a fraction in (0, 1)"], []),
}  # fmt: skip

# The main ones again as a real process: `python -m fastgru ...`
SUBPROCESS_CASES = ["missing_file", "missing_column", "non_numeric", "nan_gaps", "unsorted",
                    "duplicate", "too_short", "model_garbage", "model_truncated",
                    "model_bad_metadata", "forecast_short"]  # fmt: skip


def assert_one_line_error(code, stdout, stderr, details, folder, absent):
    assert code == 2, (stdout, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("Error: "), line
    for detail in details:
        assert detail in line, (detail, line)
    assert "Traceback" not in stdout + stderr
    for name in absent:
        assert not (folder / name).exists(), name
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers  # no temporary files
    return line


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_cli_runner(case, ws, monkeypatch):
    args, details, absent = CASES[case]
    monkeypatch.chdir(ws)
    result = runner.invoke(app, args)
    assert isinstance(result.exception, SystemExit), result.exception  # no other exception
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, details, ws, absent)
    if args[0] != "evaluate":
        assert result.stdout == ""  # nothing printed before the error


@pytest.fixture(scope="module")
def subprocess_results(ws):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    def run(case):
        cmd = [sys.executable, "-m", "fastgru", *CASES[case][0]]
        return subprocess.run(cmd, cwd=ws, capture_output=True, text=True, env=env, timeout=120)

    with ThreadPoolExecutor(max_workers=2) as pool:  # two processes at a time
        return dict(zip(SUBPROCESS_CASES, pool.map(run, SUBPROCESS_CASES), strict=True))


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_bad_input_subprocess(case, ws, subprocess_results):
    args, details, absent = CASES[case]
    proc = subprocess_results[case]
    assert_one_line_error(proc.returncode, proc.stdout, proc.stderr, details, ws, absent)
    assert proc.stdout == ""


def test_cli_runner_and_subprocess_agree(ws, monkeypatch, subprocess_results):
    monkeypatch.chdir(ws)
    for case in ("non_numeric", "model_garbage"):
        result = runner.invoke(app, CASES[case][0])
        assert result.stderr == subprocess_results[case].stderr


# ------------------------------------------------------------------ plot needs matplotlib
def test_plot_without_matplotlib(ws, monkeypatch):
    monkeypatch.chdir(ws)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    result = runner.invoke(app, ["forecast", "model.fgru", "good.csv", "--out", "p.csv",
                                 "--plot", "p.png"])  # fmt: skip
    line = assert_one_line_error(result.exit_code, result.stdout, result.stderr, [], ws,
                                 ["p.csv", "p.png"])  # fmt: skip
    assert line == ('Error: --plot needs matplotlib, which is not installed: '
                    'pip install "fastgru[plot]"')  # fmt: skip
    assert result.stdout == ""


def test_failed_write_leaves_no_partial_file(ws, monkeypatch):
    monkeypatch.chdir(ws)

    def half_written(self, path, **kwargs):
        Path(path).write_text("Date,Temp\n2020-04-30,")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_written)
    result = runner.invoke(app, ["forecast", "model.fgru", "good.csv", "--out", "half.csv"])
    assert result.exit_code == 2
    assert result.stderr == "Error: [Errno 28] No space left on device\n"
    assert not (ws / "half.csv").exists()
    assert [p.name for p in ws.iterdir() if p.name.startswith(".")] == []


def test_cuda_not_usable_is_one_line(ws, monkeypatch):
    import fastgru.estimator as est

    monkeypatch.setattr(est, "_cuda_status", lambda: (False, "no NVIDIA driver"))
    monkeypatch.chdir(ws)
    result = runner.invoke(app, [*TRAIN, "--device", "cuda", "--out", "cuda.fgru"])
    assert_one_line_error(result.exit_code, result.stdout, result.stderr,
                          ["device='cuda' was requested but CUDA is not usable: no NVIDIA driver"],
                          ws, ["cuda.fgru"])  # fmt: skip


def test_option_errors_exit_2(ws, monkeypatch):
    monkeypatch.chdir(ws)
    result = runner.invoke(app, ["forecast", "model.fgru", "good.csv", "--steps", "0"])
    assert result.exit_code == 2 and "--steps" in result.output
    result = runner.invoke(app, [*TRAIN, "--fill", "zero"])
    assert result.exit_code == 2 and "--fill" in result.output
    assert "Traceback" not in result.output
    for args, message in (
        ([*TRAIN, "--lr", "0"], "Error: --lr must be a number > 0, got 0.0"),
        ([*TRAIN, "--units", "4,,4"], "Error: --units must be comma-separated integers"),
        (["evaluate", "good.csv", "--target", "Temp", "--test-size", "2.5"],
         "Error: --test-size must be a fraction in (0, 1) or a whole number of rows, got 2.5"),
        (["demo", "--units", "0", "-q"], "Error: --units must be positive integers"),
    ):  # fmt: skip
        result = runner.invoke(app, [*args, "--out", "never.fgru"] if args[0] == "train"
                               else args)  # fmt: skip
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(message), result.stderr
    assert not (ws / "never.fgru").exists()


# ------------------------------------------------------------------ happy paths
def test_train_forecast_evaluate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    df = data_frame()
    df.to_csv("data.csv", index=False)
    result = runner.invoke(app, ["train", "data.csv", "--target", "Temp", "--date-col", "Date",
                                 "--window", "10", "--units", "8,4", "--epochs", "2",
                                 "--batch-size", "16", "--lr", "0.01", "--device", "auto",
                                 "--out", "m.fgru"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"Trained GRU\(8\) -> GRU\(4\) -> Dense\(1\) on 120 rows of 'Temp' "
                        r"\(2 epochs on cpu, final loss \S+, \d+\.\d s\); saved m\.fgru\n",
                        result.stdout), result.stdout  # fmt: skip
    assert "Epoch 1/2 [" in result.stderr and "Epoch 2/2 [" in result.stderr  # progress bar
    assert sorted(os.listdir(".")) == ["data.csv", "m.fgru"]
    fc = GRUForecaster.load("m.fgru")
    assert fc.window == 10 and fc.regressor_.spec_.units == (8, 4) and fc.learning_rate == 0.01

    result = runner.invoke(app, ["forecast", "m.fgru", "data.csv", "--steps", "7",
                                 "--out", "forecast.csv"])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Temp"] and lines[1].split() == ["Date"]
    assert [ln.split()[0] for ln in lines[2:]] == ["2020-04-30"] + [
        f"2020-05-0{d}" for d in range(1, 7)
    ]
    assert all(re.fullmatch(r"\S+\s+-?\d+\.\d{4}", ln) for ln in lines[2:])
    out = pd.read_csv("forecast.csv")
    assert list(out.columns) == ["Date", "Temp"] and len(out) == 7
    assert out["Date"].tolist() == ["2020-04-30"] + [f"2020-05-0{d}" for d in range(1, 7)]
    expected = fc.predict(steps=7, data=pd.read_csv("data.csv"))
    np.testing.assert_allclose(out["Temp"], expected.to_numpy(), atol=1e-6)
    printed = [float(ln.split()[1]) for ln in lines[2:]]
    np.testing.assert_allclose(printed, expected.to_numpy(), atol=1e-4)

    result = runner.invoke(app, ["evaluate", "data.csv", "--target", "Temp", "--test-size", "12",
                                 "--season-length", "7", *TINY, "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Backtest: 12 forecast origins, horizon 1, seasonal period 7"
    assert lines[1].split() == ["MAE", "RMSE", "MAPE", "origins"]
    assert [ln.split()[-1] for ln in lines[2:]] == ["12", "12", "12"]
    assert [ln.split()[0] for ln in lines[2:]] == ["model", "naive", "seasonal_naive"]
    y = df["Temp"].to_numpy()
    naive_mae = np.mean(np.abs(y[-12:] - y[-13:-1]))
    seasonal_mae = np.mean(np.abs(y[-12:] - y[-19:-7]))
    assert lines[3].split()[1] == f"{naive_mae:.4f}"
    assert lines[4].split()[1] == f"{seasonal_mae:.4f}"
    assert "Epoch" not in result.stderr  # --quiet


def test_train_with_features_horizon_and_fill(ws, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gaps = str(ws / "gaps.csv")
    result = runner.invoke(app, ["train", gaps, "--target", "Temp", "--features", "Hum",
                                 "--horizon", "2", "--fill", "interpolate", *TINY, "-q",
                                 "--out", "f.fgru"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "GRU(8) -> Dense(2)" in result.stdout and result.stderr == ""
    fc = GRUForecaster.load("f.fgru")
    assert fc.columns_ == ["Temp", "Hum"] and fc.horizon == 2 and fc.fill == "interpolate"
    result = runner.invoke(app, ["forecast", "f.fgru", gaps, "--steps", "2", "--out", "o.csv"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv("o.csv")) == 2
    # more steps than the horizon needs future values of the features: one line
    result = runner.invoke(app, ["forecast", "f.fgru", gaps, "--steps", "5", "--out", "x.csv"])
    assert_one_line_error(result.exit_code, result.stdout, result.stderr,
                          ["needs future values of Hum"], tmp_path, ["x.csv"])  # fmt: skip
    # without --steps: the horizon (7 steps would need the future values)
    result = runner.invoke(app, ["forecast", "f.fgru", gaps, "--out", "d.csv"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv("d.csv")) == 2


@pytest.mark.parametrize("column,option", [("timestamp", []), ("when", ["--date-col", "when"])])
def test_forecast_names_the_date_column_as_the_data_does(tmp_path, monkeypatch, column, option):
    """Found by name ("timestamp") or given at training (--date-col when): the printed table
    and the --out CSV use that name, not "Date"."""
    monkeypatch.chdir(tmp_path)
    data_frame().rename(columns={"Date": column}).to_csv("data.csv", index=False)
    result = runner.invoke(app, ["train", "data.csv", "--target", "Temp", *option, *TINY, "-q",
                                 "--out", "m.fgru"])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["forecast", "m.fgru", "data.csv", "--steps", "3",
                                 "--out", "f.csv"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].split() == [column]
    out = pd.read_csv("f.csv")
    assert list(out.columns) == [column, "Temp"] and out[column].iloc[0] == "2020-04-30"


def test_forecast_fill_option(ws, monkeypatch):
    monkeypatch.chdir(ws)
    result = runner.invoke(app, ["forecast", "model.fgru", "gaps.csv", "--steps", "3",
                                 "--fill", "ffill"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 5


def test_forecast_csv_gets_the_umask_permissions(ws, monkeypatch):
    import os

    monkeypatch.chdir(ws)
    old = os.umask(0o022)
    try:
        result = runner.invoke(app, ["forecast", "model.fgru", "good.csv", "--steps", "2",
                                     "--out", "perm.csv"])  # fmt: skip
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert (ws / "perm.csv").stat().st_mode & 0o777 == 0o644


def test_date_warnings_are_one_line_on_stderr(ws, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = pd.read_csv(ws / "good.csv")
    good.drop(index=[20, 21]).to_csv("gappy.csv", index=False)
    result = runner.invoke(app, ["train", "gappy.csv", "--target", "Temp", *TINY, "-q",
                                 "--out", "g.fgru"])  # fmt: skip
    assert result.exit_code == 0, result.output
    warning = [ln for ln in result.stderr.splitlines() if ln.startswith("Warning:")]
    assert len(warning) == 1 and "the dates are not evenly spaced: 1 of" in warning[0]
    assert "DateWarning" not in result.stderr and (tmp_path / "g.fgru").exists()


def test_evaluate_refit_every(ws, monkeypatch):
    monkeypatch.chdir(ws)
    result = runner.invoke(app, ["evaluate", "good.csv", "--target", "Temp", "--test-size", "0.05",
                                 "--refit-every", "3", "--horizon", "2", *TINY, "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "Backtest: 5 forecast origins, horizon 2, seasonal period 365"
    )
    assert "seasonal_naive" in result.stdout and "NaN" in result.stdout  # a year > the data


def test_demo():
    result = runner.invoke(app, ["demo", "--epochs", "1", "--window", "20", "--units", "8",
                                 "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"The predicted temperature for the next day is: -?\d+\.\d\d°C",
                        result.stdout.splitlines()[-1])  # fmt: skip
    assert "Bundled data: 8000 daily temperatures from 2010-01-01" in result.stderr
    assert "Epoch 1/1" in result.stderr


def test_info():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    keys = [ln.split()[0] for ln in result.stdout.splitlines()]
    assert keys == ["fastgru", "python", "numpy", "numba", "pandas", "scikit-learn", "cpu",
                    "compile", "cuda"]  # fmt: skip
    assert result.stdout.startswith("fastgru        0.1.0\n")
    assert re.search(r"^cuda +(usable|not usable): ", result.stdout, re.M)


def test_help():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "forecast", "evaluate", "demo", "info"):
        assert command in result.stdout
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    for option in ("--target", "--date-col", "--features", "--window", "--horizon", "--units",
                   "--epochs", "--batch-size", "--lr", "--device", "--out", "--fill"):  # fmt: skip
        assert option in result.stdout


def test_help_texts_are_shown_whole():
    """Rich renders help texts as markup: a [bracketed] part vanished from the forecast
    help ("Future steps to forecast ."). Every option's and argument's text is shown.

    In a process of its own: Rich reads the width (TERMINAL_WIDTH) once, at import, and a
    narrow table wraps one column's text between rows of another's."""
    import typer.main

    env = {**os.environ, "TERMINAL_WIDTH": "250", "COLUMNS": "250"}
    for name, command in typer.main.get_command(app).commands.items():
        proc = subprocess.run([sys.executable, "-m", "fastgru", name, "--help"], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        shown = " ".join(proc.stdout.replace("│", " ").split())
        for param in command.params:
            if getattr(param, "help", None):
                assert " ".join(param.help.split()) in shown, (name, param.help)
        if name == "forecast":
            assert "Future steps to forecast (default: 7; for a model with" in shown


def test_version():
    from fastgru import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"fastgru {__version__}\n"


def test_python_m_fastgru_and_console_script(tmp_path):
    """A real process: train and forecast with `python -m fastgru`; the console script."""
    data_frame().to_csv(tmp_path / "d.csv", index=False)
    run = [sys.executable, "-m", "fastgru"]
    proc = subprocess.run([*run, "train", "d.csv", "--target", "Temp", *TINY, "--out", "m.fgru"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Trained GRU(8) -> Dense(1) on 120 rows of 'Temp'")
    assert "Epoch 1/1" in proc.stderr
    proc = subprocess.run([*run, "forecast", "m.fgru", "d.csv", "--steps", "3", "--out", "f.csv"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 5 and proc.stderr == ""
    assert len(pd.read_csv(tmp_path / "f.csv")) == 3
    script = Path(sys.executable).parent / "fastgru"
    if not script.exists():
        pytest.skip("no fastgru console script beside this Python")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "forecast" in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["info"],  # a few lines, still buffered: they fail to go out when main() flushes
        ["forecast", "model.fgru", "good.csv", "--steps", "2000"],  # fails inside the command
        ["evaluate", "good.csv", "--target", "Temp", "--test-size", "12", *TINY, "-q"],
    ],
    ids=["info", "forecast", "evaluate"],
)
def test_closed_stdout_exits_quietly(ws, args):
    """``fastgru ... | head -1``: a reader that stops early is no error. No message, no
    traceback, no "Exception ignored" at exit, and the status of a tool SIGPIPE ends."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write
    try:
        proc = subprocess.run([sys.executable, "-m", "fastgru", *args], cwd=ws, stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)  # fmt: skip
    finally:
        os.close(write)
    assert proc.returncode == 141, proc.stderr
    for text in ("Error", "Traceback", "Exception ignored", "BrokenPipe"):
        assert text not in proc.stderr, proc.stderr


# Imported by GRUForecaster.load, not needed to forecast from a model file (~0.9 s of start-up).
HEAVY = ("sklearn", "scipy.stats", "fastgru.estimator", "fastgru.forecasting")
_REPORT_MODULES = (f"import sys; from fastgru.cli import main; rc = main(); "
                   f"print([m for m in {HEAVY!r} if m in sys.modules]); sys.exit(rc)")  # fmt: skip


def test_forecast_runs_without_scikit_learn(ws, tmp_path):
    """A real process, through main() as the console script calls it: the forecast (printed
    and written) is the estimator's, and scikit-learn is never imported."""
    from fastgru.forecasting import read_csv

    out = tmp_path / "f.csv"
    args = ["forecast", "model.fgru", "gaps.csv", "--steps", "4", "--fill", "ffill", "--out",
            str(out)]  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", _REPORT_MODULES, *args], cwd=ws,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    *table, loaded = proc.stdout.splitlines()
    assert loaded == "[]"
    fc = GRUForecaster.load(ws / "model.fgru")
    fc.fill = "ffill"
    pred = fc.predict(steps=4, data=read_csv(ws / "gaps.csv")).to_frame("Temp")
    pred.index.name = "Date"
    assert table == pred.to_string(float_format=lambda v: f"{v:.4f}").splitlines()
    assert out.read_text() == pred.to_csv(float_format="%.6f")


@pytest.mark.parametrize(
    "args,detail",
    [
        (["forecast", "m.fgru", "x.csv", "--steps", "0"], "Invalid value for '--steps'"),
        (["train", "x.csv", "--fill", "zero"], "'zero' is not one of"),
        (["nosuch"], "No such command 'nosuch'"),
        (["info", "--bogus"], "No such option: --bogus"),
    ],
)
def test_usage_errors_are_one_line_through_the_entry_point(args, detail, capsys):
    from fastgru.cli import main

    assert main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and detail in lines[0]
    assert captured.out == ""


def test_entry_point_help_and_success_exit_zero(capsys):
    from fastgru.cli import main

    assert main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert main(["info"]) == 0


def test_plot_writes_a_png_of_history_and_forecast(ws, monkeypatch, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (fastgru[plot])")
    monkeypatch.chdir(ws)
    png = tmp_path / "forecast.png"
    result = runner.invoke(app, ["forecast", "model.fgru", "good.csv", "--steps", "5",
                                 "--plot", str(png)])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
    # the format follows the suffix; one matplotlib cannot write is refused, nothing written
    for name, exit_code in (("f.svg", 0), ("f.xyz", 2)):
        result = runner.invoke(app, ["forecast", "model.fgru", "good.csv", "--steps", "2",
                                     "--plot", str(tmp_path / name)])  # fmt: skip
        assert result.exit_code == exit_code, result.stderr
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()[:500]
    assert "--plot cannot write .xyz files; use one of" in result.stderr
    assert not (tmp_path / "f.xyz").exists()
