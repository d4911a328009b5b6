"""Tests for fastgru.windows: sliding windows and the inference window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fastgru.windows import make_inference_window, make_windows

# ---------------------------------------------------------------------------
# make_windows: shapes and exact contents
# ---------------------------------------------------------------------------


def test_arange_exact_contents():
    X, y = make_windows(np.arange(6), window=3)
    assert X.shape == (3, 3, 1)
    assert y.shape == (3, 1)
    np.testing.assert_array_equal(X[:, :, 0], [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    np.testing.assert_array_equal(y, [[3], [4], [5]])
    assert X.dtype == np.float64
    assert y.dtype == np.float64
    assert X.flags.c_contiguous and y.flags.c_contiguous


def test_last_window_is_included():
    # The naive range(len(data) - window - 1) would stop one window early.
    n, window = 10, 4
    X, y = make_windows(np.arange(n), window=window)
    assert len(X) == n - window == 6
    np.testing.assert_array_equal(X[-1, :, 0], [5, 6, 7, 8])
    assert y[-1, 0] == 9.0  # the very last observation is a target


def test_minimum_length_gives_one_window():
    X, y = make_windows([1.0, 2.0, 3.0], window=2)
    assert X.shape == (1, 2, 1)
    np.testing.assert_array_equal(X[0, :, 0], [1.0, 2.0])
    np.testing.assert_array_equal(y, [[3.0]])


def test_step_greater_than_one():
    X, y = make_windows(np.arange(10), window=3, step=2)
    # n_windows = (10 - 3 - 1) // 2 + 1 = 4, starts 0, 2, 4, 6
    assert X.shape == (4, 3, 1)
    np.testing.assert_array_equal(X[:, :, 0], [[0, 1, 2], [2, 3, 4], [4, 5, 6], [6, 7, 8]])
    np.testing.assert_array_equal(y[:, 0], [3, 5, 7, 9])


def test_step_leaves_tail_unused():
    X, y = make_windows(np.arange(11), window=3, step=3)
    # n_windows = (11 - 3 - 1) // 3 + 1 = 3, starts 0, 3, 6; row 10 is never used
    assert X.shape == (3, 3, 1)
    np.testing.assert_array_equal(X[:, 0, 0], [0, 3, 6])
    np.testing.assert_array_equal(y[:, 0], [3, 6, 9])


def test_horizon_greater_than_one():
    X, y = make_windows(np.arange(8), window=3, horizon=2)
    assert X.shape == (4, 3, 1)
    assert y.shape == (4, 2)
    np.testing.assert_array_equal(X[:, :, 0], [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]])
    np.testing.assert_array_equal(y, [[3, 4], [4, 5], [5, 6], [6, 7]])


def test_horizon_and_step_combined():
    X, y = make_windows(np.arange(10), window=3, horizon=2, step=2)
    assert X.shape == (3, 3, 1)
    np.testing.assert_array_equal(X[:, :, 0], [[0, 1, 2], [2, 3, 4], [4, 5, 6]])
    np.testing.assert_array_equal(y, [[3, 4], [5, 6], [7, 8]])


def test_multi_feature_with_target_column():
    data = np.column_stack([np.arange(7), 100 + np.arange(7), -np.arange(7)])  # (7, 3)
    X, y = make_windows(data, window=2, target=1)
    assert X.shape == (5, 2, 3)
    assert y.shape == (5, 1)
    np.testing.assert_array_equal(X[0], [[0, 100, 0], [1, 101, -1]])
    np.testing.assert_array_equal(X[-1], [[4, 104, -4], [5, 105, -5]])
    np.testing.assert_array_equal(y[:, 0], [102, 103, 104, 105, 106])

    _, y2 = make_windows(data, window=2, horizon=2, target=2)
    np.testing.assert_array_equal(y2, [[-2, -3], [-3, -4], [-4, -5], [-5, -6]])


def test_windows_match_definition_on_random_data():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(53, 4))
    window, horizon, step, target = 7, 3, 4, 2
    X, y = make_windows(data, window, horizon=horizon, step=step, target=target)
    n_windows = (53 - window - horizon) // step + 1
    assert X.shape == (n_windows, window, 4)
    assert y.shape == (n_windows, horizon)
    for i in range(n_windows):
        s = i * step
        np.testing.assert_array_equal(X[i], data[s : s + window])
        np.testing.assert_array_equal(y[i], data[s + window : s + window + horizon, target])


def test_outputs_are_copies():
    data = np.arange(6, dtype=np.float64)
    X, y = make_windows(data, window=3)
    X[0, 0, 0] = 99.0
    y[0, 0] = 99.0
    np.testing.assert_array_equal(data, np.arange(6))


def test_float32_preserved():
    X, y = make_windows(np.arange(6, dtype=np.float32), window=2)
    assert X.dtype == np.float32
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y[:, 0], np.array([2, 3, 4, 5], dtype=np.float32))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, np.float64, np.bool_])
def test_other_dtypes_become_float64(dtype):
    X, y = make_windows(np.ones(5, dtype=dtype), window=2)
    assert X.dtype == np.float64
    assert y.dtype == np.float64


def test_list_series_and_dataframe_inputs():
    values = [0.5, 1.5, 2.5, 3.5, 4.5]
    X_list, y_list = make_windows(values, window=2)
    X_ser, y_ser = make_windows(pd.Series(values, index=list("abcde")), window=2)
    np.testing.assert_array_equal(X_list, X_ser)
    np.testing.assert_array_equal(y_list, y_ser)
    np.testing.assert_array_equal(y_list[:, 0], [2.5, 3.5, 4.5])

    df = pd.DataFrame({"a": [1, 2, 3, 4], "b": [10.0, 20.0, 30.0, 40.0]})
    X, y = make_windows(df, window=2, target=1)
    assert X.shape == (2, 2, 2)
    np.testing.assert_array_equal(X[1], [[2, 20], [3, 30]])
    np.testing.assert_array_equal(y[:, 0], [30.0, 40.0])

    X32, _ = make_windows(pd.DataFrame({"a": np.arange(4, dtype=np.float32)}), window=2)
    assert X32.dtype == np.float32


def test_pandas_nullable_dtype():
    X, y = make_windows(pd.Series([1, 2, 3, 4], dtype="Int64"), window=2)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(y[:, 0], [3.0, 4.0])


def test_two_d_single_column_equals_one_d():
    a = np.arange(9.0)
    X1, y1 = make_windows(a, window=4, horizon=2)
    X2, y2 = make_windows(a.reshape(-1, 1), window=4, horizon=2)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)


def test_numpy_integer_parameters_accepted():
    X, y = make_windows(np.arange(6), window=np.int64(3), horizon=np.int32(1), step=np.int8(1))
    assert X.shape == (3, 3, 1)


# ---------------------------------------------------------------------------
# make_windows: errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["window", "horizon", "step"])
@pytest.mark.parametrize("bad", [0, -1])
def test_non_positive_int_parameters(name, bad):
    kwargs = {"window": 2, "horizon": 1, "step": 1, name: bad}
    with pytest.raises(ValueError, match=rf"{name} must be a positive int \(>= 1\), got {bad}"):
        make_windows(np.arange(10), **kwargs)


@pytest.mark.parametrize("name", ["window", "horizon", "step"])
@pytest.mark.parametrize("bad", [2.0, "3", None, True])
def test_non_int_parameters(name, bad):
    kwargs = {"window": 2, "horizon": 1, "step": 1, name: bad}
    with pytest.raises(TypeError, match=f"{name} must be a positive int, got"):
        make_windows(np.arange(10), **kwargs)


@pytest.mark.parametrize("target", [2, 5, -1])
def test_target_out_of_range(target):
    with pytest.raises(ValueError, match=rf"target={target} is out of range for 2 feature"):
        make_windows(np.ones((10, 2)), window=2, target=target)


def test_target_out_of_range_for_1d():
    with pytest.raises(ValueError, match=r"use a column index in \[0, 0\]"):
        make_windows(np.arange(10), window=2, target=1)


def test_target_not_int():
    with pytest.raises(TypeError, match="target must be an int column index"):
        make_windows(np.ones((10, 2)), window=2, target=1.0)


@pytest.mark.parametrize(
    "values",
    [
        np.array(["a", "b", "c", "d"]),
        ["1", "2", "3", "4"],
        np.array([1, "x", 3, 4], dtype=object),
        pd.Series(["a", "b", "c", "d"]),
        pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "when": pd.date_range("2020", periods=4)}),
        np.arange(4) + 1j,
    ],
    ids=["str-array", "str-list", "object-array", "str-series", "datetime-column", "complex"],
)
def test_non_numeric_values(values):
    with pytest.raises(TypeError, match="values must be numeric"):
        make_windows(values, window=2)


def test_nan_names_first_bad_row():
    data = np.arange(10, dtype=np.float64)
    data[6] = np.nan
    data[8] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf, first at row 6"):
        make_windows(data, window=2)


def test_inf_in_second_column_names_row():
    data = np.ones((10, 3))
    data[4, 2] = -np.inf
    with pytest.raises(ValueError, match=r"NaN or inf, first at row 4.*dropna"):
        make_windows(data, window=2)


def test_missing_in_pandas_names_position():
    s = pd.Series([1.0, 2.0, None, 4.0], index=[10, 20, 30, 40])
    with pytest.raises(ValueError, match="first at row 2"):
        make_windows(s, window=1)
    with pytest.raises(ValueError, match="first at row 1"):
        make_windows(pd.Series([1, None, 3, 4], dtype="Int64"), window=1)


def test_three_d_input():
    with pytest.raises(
        ValueError, match=r"1-D \(n,\) or 2-D .*got a 3-D array of shape \(4, 2, 2\)"
    ):
        make_windows(np.zeros((4, 2, 2)), window=1)


def test_scalar_input():
    with pytest.raises(ValueError, match="got a scalar"):
        make_windows(5.0, window=1)


def test_ragged_input():
    with pytest.raises(ValueError, match="could not be converted to an array"):
        make_windows([[1, 2], [3]], window=1)


def test_zero_columns():
    with pytest.raises(ValueError, match="no feature columns"):
        make_windows(np.zeros((5, 0)), window=1)


@pytest.mark.parametrize(("n", "window", "horizon"), [(4, 4, 1), (5, 3, 3), (0, 1, 1), (1, 1, 1)])
def test_series_too_short(n, window, horizon):
    needed = window + horizon
    with pytest.raises(
        ValueError, match=rf"needs at least window \+ horizon = {needed} rows, got {n}"
    ):
        make_windows(np.arange(n), window=window, horizon=horizon)


# ---------------------------------------------------------------------------
# make_inference_window
# ---------------------------------------------------------------------------


def test_inference_window_last_rows():
    w = make_inference_window(np.arange(10), window=3)
    assert w.shape == (1, 3, 1)
    assert w.dtype == np.float64
    np.testing.assert_array_equal(w[0, :, 0], [7, 8, 9])


def test_inference_window_multi_feature_and_float32():
    data = np.arange(12, dtype=np.float32).reshape(6, 2)
    w = make_inference_window(data, window=2)
    assert w.shape == (1, 2, 2)
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w[0], [[8, 9], [10, 11]])
    assert w.flags.c_contiguous


def test_inference_window_whole_series_and_pandas():
    w = make_inference_window(pd.Series([1.0, 2.0, 3.0]), window=3)
    np.testing.assert_array_equal(w, [[[1.0], [2.0], [3.0]]])


def test_inference_window_matches_next_training_input():
    data = np.arange(20.0)
    X, _ = make_windows(data, window=5)
    w = make_inference_window(data, window=5)
    # the inference window is the window after the last training one
    np.testing.assert_array_equal(w[0, :, 0], X[-1, :, 0] + 1)


def test_inference_window_too_short():
    with pytest.raises(ValueError, match="needs at least window = 5 rows, got 3"):
        make_inference_window([1.0, 2.0, 3.0], window=5)


def test_inference_window_bad_window():
    with pytest.raises(ValueError, match="window must be a positive int"):
        make_inference_window(np.arange(5), window=0)
    with pytest.raises(TypeError, match="window must be a positive int"):
        make_inference_window(np.arange(5), window=2.5)


def test_inference_window_nan_in_used_rows_names_row():
    data = np.arange(10.0)
    data[8] = np.nan
    with pytest.raises(ValueError, match="first at row 8"):
        make_inference_window(data, window=3)


def test_inference_window_ignores_nan_before_window():
    data = np.arange(10.0)
    data[2] = np.nan
    w = make_inference_window(data, window=3)
    np.testing.assert_array_equal(w[0, :, 0], [7, 8, 9])


def test_inference_window_other_errors():
    with pytest.raises(TypeError, match="values must be numeric"):
        make_inference_window(["a", "b", "c"], window=2)
    with pytest.raises(ValueError, match="got a 3-D array"):
        make_inference_window(np.zeros((5, 2, 2)), window=2)
