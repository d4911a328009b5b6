"""GRURegressor as a scikit-learn estimator."""

import io
import os
import pickle
import subprocess
import sys
import warnings

import joblib
import numba
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastgru import GRURegressor, make_windows


def small(**kw):
    params = dict(units=6, epochs=2, batch_size=16, random_state=0, device="cpu")
    params.update(kw)
    return GRURegressor(**params)


@parametrize_with_checks([small(dtype="float64"), small(units=(5, 3), reset_after=True)])
def test_sklearn_estimator_checks(estimator, check):
    # No check is skipped or expected to fail. The one tag we set, poor_score, relaxes
    # check_regressors_train's R^2 > 0.5: two epochs of a GRU on tabular check data.
    check(estimator)


def seasonal_series(n=1200, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (
        10
        + 5 * np.sin(2 * np.pi * t / 30)
        + 2 * np.sin(2 * np.pi * t / 7)
        + 0.3 * rng.normal(size=n)
    )


@pytest.fixture(scope="module")
def lag_data():
    X, y = make_windows(seasonal_series(), window=24)
    return X[:, :, 0], y[:, 0]  # 2-D lag windows, 1-D target


def test_fit_predict_shapes_and_attributes(lag_data):
    X2, y = lag_data
    m = small(epochs=3).fit(X2, y)
    assert m.predict(X2[:5]).shape == (5,)
    assert m.n_features_in_ == 24 and m.n_timesteps_in_ == 24 and m.n_outputs_ == 1
    assert len(m.loss_curve_) == 3 == m.n_iter_
    assert m.validation_scores_ is None
    assert m.best_loss_ == min(m.loss_curve_)
    layers, head = m.get_weights()
    assert layers[0]["W"].shape == (1, 18) and head["W"].shape == (6, 1)


def test_multioutput_and_3d_and_other_lengths():
    s = seasonal_series(500)
    X, y = make_windows(np.c_[s, s**2 / 100], window=20, horizon=3)
    m = small().fit(X, y)
    assert m.predict(X).shape == (len(X), 3)
    assert m.n_features_in_ == 2
    # A GRU runs any sequence length: longer and shorter windows predict.
    assert m.predict(X[:, :5]).shape == (len(X), 3)
    X_long, _ = make_windows(np.c_[s, s], window=40, horizon=3)
    assert np.all(np.isfinite(m.predict(X_long)))
    with pytest.raises(ValueError, match="X has 3 features per time step, but GRURegressor was "
                       r"fitted with 2; expected shape \(n_samples, n_timesteps, 2\)"):  # fmt: skip
        m.predict(np.zeros((2, 20, 3)))
    with pytest.raises(ValueError, match="X is 2-D .* fitted with 2 features per time step"):
        m.predict(np.zeros((2, 20)))
    one = small().fit(X[:, :, :1], y)
    np.testing.assert_array_equal(one.predict(X[:, :, 0]), one.predict(X[:, :, :1]))


def test_same_random_state_gives_identical_predictions(lag_data):
    X2, y = lag_data
    a = small(epochs=2).fit(X2, y).predict(X2)
    b = small(epochs=2).fit(X2, y).predict(X2)
    assert a.tobytes() == b.tobytes()
    c = small(epochs=2, random_state=1).fit(X2, y).predict(X2)
    assert not np.array_equal(a, c)


def test_partial_fit_and_warm_start_continue(lag_data):
    X2, y = lag_data
    m = small()
    m.partial_fit(X2[:500], y[:500])
    first = m.theta_.copy()
    m.partial_fit(X2[500:], y[500:])
    assert m.n_iter_ == 2 and len(m.loss_curve_) == 2
    assert not np.array_equal(first, m.theta_)
    w = small(warm_start=True, epochs=1).fit(X2, y)
    theta1 = w.theta_.copy()
    w.fit(X2, y)
    assert len(w.loss_curve_) == 2
    assert not np.array_equal(theta1, w.theta_)
    # The same two epochs in one fit from scratch land elsewhere than warm start from the
    # first (separate shuffles), but both improve on one epoch.
    assert w.loss_curve_[1] < w.loss_curve_[0]


def test_early_stopping_holds_out_the_last_samples(lag_data):
    X2, y = lag_data
    m = small(epochs=40, early_stopping=True, n_iter_no_change=2, validation_fraction=0.2,
              learning_rate=0.05)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X2, y)
    assert m.n_iter_ < 40
    assert len(m.validation_scores_) == m.n_iter_
    n_val = int(np.ceil(len(X2) * 0.2))
    held = m.predict(X2[-n_val:])
    mse = float(np.mean((held - y[-n_val:]) ** 2))
    assert mse == pytest.approx(min(m.validation_scores_), rel=1e-5)
    assert m.best_loss_ == pytest.approx(min(m.validation_scores_))


def test_divergence_warns_and_keeps_finite_weights(lag_data):
    X2, y = lag_data
    m = small(epochs=3, learning_rate=1e30, optimizer="sgd", momentum=0.0)
    with pytest.warns(RuntimeWarning, match="lower learning_rate.*clip_norm"):
        m.fit(X2 * 1e10, y * 1e10)
    assert np.all(np.isfinite(m.theta_))
    assert np.all(np.isfinite(m.predict(X2[:3])))


@pytest.mark.parametrize("epochs", [1, 2])
def test_weights_overflowing_in_the_last_update_are_caught(epochs):
    # The loss and gradient of the epoch's last batch are finite; the update they give is
    # not: caught at the end of the epoch (it used to be kept as "the last finite epoch").
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 4, 1))
    y = 10 * rng.normal(size=8)
    m = GRURegressor(units=2, epochs=epochs, batch_size=8, optimizer="sgd", momentum=0.0,
                     learning_rate=1e38, random_state=0, device="cpu", dtype="float32")  # fmt: skip
    with pytest.warns(RuntimeWarning, match="or the weights became NaN.*weights it started"):
        m.fit(X, y)
    assert np.all(np.isfinite(m.theta_)) and m.loss_curve_ == []
    assert np.all(np.isfinite(m.predict(X[:3])))
    m.set_params(learning_rate=1e-3).fit(X, y)
    before = m.theta_.copy()
    m.set_params(learning_rate=1e38)
    with pytest.warns(RuntimeWarning, match="weights from before this call were kept"):
        m.partial_fit(X, y)
    np.testing.assert_array_equal(m.theta_, before)


@pytest.mark.filterwarnings("ignore:Early stopping did not trigger")
def test_verbose_progress_bar(lag_data, capsys):
    X2, y = lag_data
    small(epochs=2, verbose=1, early_stopping=True, n_iter_no_change=5).fit(X2, y)
    err = capsys.readouterr().err
    assert "Epoch 1/2 [" in err and "Epoch 2/2 [" in err
    assert "val_loss" in err and "ETA" in err and "Trained 2 epochs on cpu" in err


@pytest.mark.parametrize("compiled, noted", [(False, True), (True, False), (None, False)])
def test_verbose_fit_says_when_it_compiles(lag_data, capsys, monkeypatch, compiled, noted):
    import fastgru.cpu

    monkeypatch.setattr(fastgru.cpu, "kernels_compiled", lambda *dtype: compiled)
    X2, y = lag_data
    small(epochs=1, verbose=1).fit(X2, y)
    assert ("Compiling the CPU kernels" in capsys.readouterr().err) is noted


def test_kernels_compiled_after_a_fit(lag_data):
    from fastgru.cpu import kernels_compiled

    X2, y = lag_data
    small(epochs=1).fit(X2, y)
    assert kernels_compiled() is True
    assert kernels_compiled("float32") is True


def test_kernels_compiled_tells_the_dtypes_apart(monkeypatch):
    # In this process: the overloads compiled so far, by the dtype of their first argument.
    from fastgru import cpu

    f32 = (numba.types.float32[::1],)

    class Only32:
        overloads = {f32: None}

    monkeypatch.setattr(cpu, "_train_epoch", Only32)
    assert cpu.kernels_compiled("float32") is True
    assert cpu.kernels_compiled(None) is True
    # Nothing compiled for float64 and no readable cache: "cannot tell", not "compiled".
    assert cpu.kernels_compiled("float64") is None


def test_progress_rate_and_eta_leave_out_the_compiling_first_epoch():
    import io

    from fastgru.progress import EpochProgress

    p = EpochProgress(5, stream=io.StringIO())
    p.start = 0.0
    assert p.line(1, 0.5, now=30.0).endswith("30.00s/epoch ETA 2m00s")
    assert p.line(2, 0.4, now=32.0).endswith("2.00s/epoch ETA 6s")
    assert p.line(3, 0.3, now=36.0).endswith("3.00s/epoch ETA 6s")


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "X,y,match",
    [
        (np.full((5, 4, 1), np.nan), np.zeros(5), "NaN"),
        (np.full((5, 4), np.inf), np.zeros(5), "infinity"),
        (np.zeros((5, 4, 1)), np.array([0, 1, np.nan, 0, 0]), "y contains NaN"),
        (np.zeros(5), np.zeros(5), r"^X is 1-D; expected 3-D .* fastgru.make_windows"),
        (np.full((5, 4, 1), 1e39), np.zeros(5), r"^X has values beyond the range of float32"),
        (np.zeros((5, 4, 1)), np.full(5, -1e39), r"^y has values beyond the range of float32"),
        (np.zeros((5, 4, 1, 1)), np.zeros(5), "X has 4 dimensions"),
        (np.zeros((0, 4, 1)), np.zeros(0), "0 sample"),
        (np.zeros((5, 4, 1)), np.zeros(4), "X has 5, y has 4"),
        (np.zeros((5, 0, 1)), np.zeros(5), "at least one time step"),
        (np.array([["a", "b"], ["c", "d"]], dtype=object), np.zeros(2), "could not convert"),
        (np.zeros((5, 4, 1)), None, "requires y to be passed"),
        (np.zeros((5, 4, 1)), np.zeros((5, 2, 2)), "y has 3 dimensions"),
    ],
)
def test_bad_data_gets_clear_errors(X, y, match):
    with pytest.raises(ValueError, match=match):
        small().fit(X, y)


@pytest.mark.parametrize(
    "params,match",
    [
        (dict(epochs=-1), "epochs must be an integer >= 1, got -1"),
        (dict(loss="hinge"), r"loss must be one of \['mse', 'mae', 'huber'\], got 'hinge'"),
        (dict(units=0), "units must be a positive int"),
        (dict(units="big"), "units must be"),
        (dict(learning_rate=0.0), r"learning_rate must be in \(0, inf\)"),
        (dict(optimizer="rmsprop"), "optimizer must be one of"),
        (dict(validation_fraction=1.0), r"validation_fraction must be in \(0, 1\)"),
        (dict(dtype="float16"), "dtype must be one of"),
        (dict(device="tpu"), "device must be one of"),
        (dict(clip_norm=-1.0), "clip_norm must be in"),
        (dict(batch_size=2.5), "batch_size must be an integer"),
        (dict(random_state="a"), "random_state must be None, an integer >= 0, a numpy"),
        (dict(random_state=-1), "random_state must be None, an integer >= 0, .*got -1"),
    ],
)
def test_bad_hyperparameters_fail_before_compiling(params, match, monkeypatch):
    import fastgru.estimator as est

    def boom(*a, **k):  # the engine must not be reached
        raise AssertionError("engine reached")

    monkeypatch.setattr(est, "train", boom)
    with pytest.raises(ValueError, match=match):
        small(**params).fit(np.zeros((4, 3, 1)), np.zeros(4))


def test_a_failed_refit_leaves_the_model_as_it_was(monkeypatch):
    """A fit that raises part way (here: too few samples for early stopping; also Ctrl-C)
    leaves every attribute as before: the model still predicts its own inputs, and inputs
    of the failed fit's shape are refused, not read past their end."""
    from fastgru.engine import predict_cpu

    rng = np.random.default_rng(3)
    X1, X2 = rng.random((40, 6, 1)), rng.random((1, 5, 2))
    reg = small().fit(X1, X1[:, -1, 0])
    ref = reg.predict(X1)
    reg.set_params(early_stopping=True)
    before = dict(vars(reg))
    with pytest.raises(ValueError):
        reg.fit(X2, X2[:, -1, 0])
    assert vars(reg).keys() == before.keys()
    assert all(vars(reg)[k] is v for k, v in before.items())  # the very same objects
    assert reg.n_features_in_ == 1 and reg.spec_.n_features == 1
    np.testing.assert_array_equal(reg.predict(X1), ref)
    with pytest.raises(ValueError, match="features per time step"):
        reg.predict(rng.random((3, 5, 2)))
    import fastgru.estimator as est

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(est, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        reg.set_params(early_stopping=False).fit(X2, X2[:, -1, 0])
    assert reg.n_features_in_ == 1 and reg.loss_curve_ == before["loss_curve_"]
    with pytest.raises(ValueError, match=r"X must have shape \(N, T, 1\)"):
        predict_cpu(reg.spec_, reg.theta_, rng.random((3, 5, 2)))  # the engine checks too


def _fit_in_child(seed):
    rng = np.random.default_rng(5)
    X = rng.random((64, 6, 1))
    return small(random_state=seed).fit(X, X[:, -1, 0]).predict(X)


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(),
                    reason="no fork on this platform")  # fmt: skip
def test_fit_in_a_child_forked_after_fitting():
    """GNU OpenMP terminates a forked child that starts a parallel region once the parent
    has (a multiprocessing.Pool then waits forever): such a child trains with the serial
    driver, on the same parts, to the same bits."""
    import multiprocessing

    parent = _fit_in_child(1)  # the parent's parallel driver has run
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_fit_in_child, (1,)).get(timeout=120)
    np.testing.assert_array_equal(child, parent)


def test_predict_before_fit():
    with pytest.raises(NotFittedError):
        small().predict(np.zeros((2, 3, 1)))


def test_cuda_request_without_cuda_is_a_clear_error(monkeypatch):
    import fastgru.estimator as est

    monkeypatch.setattr(est, "_cuda_status", lambda: (False, "no NVIDIA driver found"))
    with pytest.raises(RuntimeError, match="CUDA is not usable: no NVIDIA driver found"):
        small(device="cuda").fit(np.zeros((4, 3, 1)), np.zeros(4))
    assert est.resolve_device("auto") == "cpu"


def test_auto_device_without_driver_node_skips_numba_cuda(monkeypatch):
    from numba.core import config as numba_config

    import fastgru.engine
    import fastgru.estimator as est

    monkeypatch.setattr(numba_config, "ENABLE_CUDASIM", 0)
    monkeypatch.setattr(fastgru.engine, "no_gpu_device_node", lambda: True)

    def must_not_run():
        raise AssertionError("auto must not probe CUDA when no driver node exists")

    monkeypatch.setattr(est, "_cuda_status", must_not_run)
    assert est.resolve_device("auto") == "cpu"


@pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or os.path.exists("/dev/nvidiactl")
    or os.path.exists("/dev/dxg"),
    reason="needs a Linux machine without an NVIDIA driver",
)
def test_auto_fit_without_driver_does_not_import_numba_cuda():
    code = (
        "import sys, numpy as np\n"
        "from fastgru import GRURegressor\n"
        "m = GRURegressor(units=(3,), epochs=1, random_state=0, device='auto')\n"
        "m.fit(np.zeros((4, 3, 1), np.float32), np.zeros(4))\n"
        "print(m.device_, 'numba.cuda' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.split() == ["cpu", "False"]


# ---------------------------------------------------------------------------- integration
def test_pipeline_with_scaler_and_transformed_target(lag_data):
    X2, y = lag_data
    pipe = make_pipeline(MinMaxScaler(), small(epochs=3))
    pipe.fit(X2, y)
    assert pipe.predict(X2).shape == y.shape
    ttr = TransformedTargetRegressor(regressor=make_pipeline(MinMaxScaler(), small(epochs=4)),
                                     transformer=MinMaxScaler())  # fmt: skip
    ttr.fit(X2, y)
    pred = ttr.predict(X2)
    # In original units: the level of the series is around 10, not the scaled [0, 1].
    assert abs(np.mean(pred) - np.mean(y)) < 2.0


def test_grid_search_time_series_split_in_two_processes(lag_data):
    X2, y = lag_data
    pipe = make_pipeline(MinMaxScaler(), small(epochs=2))
    grid = GridSearchCV(pipe, {"gruregressor__units": [4, 8]}, cv=TimeSeriesSplit(n_splits=2),
                        n_jobs=2)  # fmt: skip
    grid.fit(X2, y)
    assert grid.best_params_["gruregressor__units"] in (4, 8)
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    scores = cross_val_score(small(epochs=2), X2, y, cv=TimeSeriesSplit(n_splits=3))
    assert scores.shape == (3,) and np.all(np.isfinite(scores))


def test_random_state_as_scikit_learn_takes_it(lag_data):
    X2, y = lag_data
    a = small(random_state=np.random.RandomState(0)).fit(X2, y)  # drawn from, as sklearn does
    b = small(random_state=np.random.RandomState(0)).fit(X2, y)
    np.testing.assert_array_equal(a.predict(X2), b.predict(X2))
    small(verbose=True, epochs=1).fit(X2[:20], y[:20])  # as MLPRegressor(verbose=True)


def test_partial_fit_keeps_the_best_validation_loss(lag_data):
    X2, y = lag_data
    m = small(epochs=3, early_stopping=True).fit(X2, y)
    assert m.best_loss_ == min(m.validation_scores_)
    m.partial_fit(X2, y)  # holds nothing out: its training loss is not a validation loss
    assert m.best_loss_ == min(m.validation_scores_) and len(m.loss_curve_) == 4


def test_from_weights_refuses_settings_that_contradict_the_weights(lag_data):
    layers, head = small(units=(4,)).fit(*lag_data).get_weights()
    with pytest.raises(ValueError, match=r"units=\(9,\) contradicts the weights' layer widths "
                       r"\(4,\); leave units out"):  # fmt: skip
        GRURegressor.from_weights(layers, head, units=(9,))
    two = {"W": np.ones((4, 2)), "b": np.zeros(2)}
    with pytest.raises(ValueError, match=r"y_ndim must be None, 1 \(one output only\) or 2; "
                       r"got 1 for 2 output"):  # fmt: skip
        GRURegressor.from_weights(layers, two, y_ndim=1)
    with pytest.raises(ValueError, match="y_ndim must be None, 1"):
        GRURegressor.from_weights(layers, head, y_ndim=3)
    with pytest.raises(ValueError, match="n_timesteps must be None or an integer >= 1, got -4"):
        GRURegressor.from_weights(layers, head, n_timesteps=-4)
    assert GRURegressor.from_weights(layers, head, units=4, n_timesteps=24).n_timesteps_in_ == 24


def test_clone_pickle_joblib_round_trips(lag_data):
    X2, y = lag_data
    m = small(epochs=2).fit(X2, y)
    c = clone(m)
    assert c.get_params() == m.get_params() and not hasattr(c, "theta_")
    ref = m.predict(X2)
    p = pickle.loads(pickle.dumps(m))
    assert p.predict(X2).tobytes() == ref.tobytes()
    buf = io.BytesIO()
    joblib.dump(m, buf)
    buf.seek(0)
    assert joblib.load(buf).predict(X2).tobytes() == ref.tobytes()
    # A pickled model keeps training from where it stopped.
    p.partial_fit(X2, y)
    assert p.n_iter_ == 3


@pytest.mark.slow
def test_seed_workload_beats_naive_forecast():
    """The seed workload's shape: 8,000 daily values, windows of 100, GRU(50) -> GRU(50) ->
    Dense(1), Adam 1e-3, batch 32, 10 epochs; held-out last 10% of a seasonal series."""
    rng = np.random.default_rng(42)
    t = np.arange(8000)
    series = (15 + 7 * np.sin(2 * np.pi * t / 365.25) + 3 * np.sin(2 * np.pi * t / 7)
              + 0.5 * rng.normal(size=t.size))  # fmt: skip
    lo, hi = series[:7200].min(), series[:7200].max()
    X, y = make_windows((series - lo) / (hi - lo), window=100)
    split = int(len(X) * 0.9)
    m = GRURegressor(units=(50, 50), epochs=10, batch_size=32, learning_rate=1e-3,
                     random_state=0, device="cpu")  # fmt: skip
    m.fit(X[:split], y[:split, 0])
    pred = m.predict(X[split:]) * (hi - lo) + lo
    actual = y[split:, 0] * (hi - lo) + lo
    naive = X[split:, -1, 0] * (hi - lo) + lo
    rmse = np.sqrt(np.mean((pred - actual) ** 2))
    rmse_naive = np.sqrt(np.mean((naive - actual) ** 2))
    assert rmse < 0.5 * rmse_naive, (rmse, rmse_naive)


def test_predict_fast_path_matches_general_validation_and_keeps_its_errors():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 5, 2))
    model = small(units=4, epochs=1).fit(X, rng.standard_normal(6))
    ref = model.predict(X.tolist())  # nested lists: scikit-learn's check_array path
    for Xv in (X, X.astype(np.float32), np.asfortranarray(X), X[::-1][::-1]):
        np.testing.assert_array_equal(model.predict(Xv), ref)
    bad = X.copy()
    bad[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.predict(bad)
    bad[2, 3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        model.predict(bad)
    with pytest.raises(ValueError, match="0 sample"):
        model.predict(X[:0])
    with pytest.raises(ValueError, match="3 features per time step"):
        model.predict(np.zeros((2, 5, 3)))


def test_big_endian_float64_input_keeps_its_precision():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 5, 1))
    model = small(units=3, epochs=1, dtype="float64").fit(X, rng.standard_normal(6))
    np.testing.assert_array_equal(model.predict(X.astype(">f8")), model.predict(X))
    np.testing.assert_array_equal(model.predict(X[:, :, 0].astype(">f8")), model.predict(X))


def test_verbose_first_epoch_time_leaves_out_compilation(lag_data, capsys, monkeypatch):
    import re
    import time

    from fastgru.engine import CPURunner

    prepare = CPURunner.prepare

    def slow_prepare(self):  # stands for a cold compile
        if not self._ready:
            time.sleep(1.5)
        prepare(self)

    monkeypatch.setattr(CPURunner, "prepare", slow_prepare)
    X2, y = lag_data
    small(epochs=1, verbose=1).fit(X2[:64], y[:64])
    rate = float(re.search(r"Epoch 1/1 .* ([0-9.]+)s/epoch", capsys.readouterr().err).group(1))
    assert rate < 1.0


def test_predict_fast_path_for_lag_windows_matches_general_validation(lag_data):
    import pandas as pd

    X2, y = lag_data
    model = small(epochs=1).fit(X2, y)
    ref = model.predict(X2.tolist())
    for Xv in (X2, X2.astype(np.float32), np.asfortranarray(X2)):
        np.testing.assert_array_equal(model.predict(Xv), ref)
    bad = X2[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.predict(bad)
    with pytest.raises(ValueError, match="features"):
        model.predict(X2[:, :-1])
    # fitted on a DataFrame: an unnamed array still gets scikit-learn's warning
    cols = [f"lag{i}" for i in range(X2.shape[1])]
    named = small(epochs=1).fit(pd.DataFrame(X2, columns=cols), y)
    with pytest.warns(UserWarning, match="feature names"):
        named.predict(X2[:2])
