"""CPU kernels against the NumPy float64 oracle and against central finite differences."""

import naive
import numpy as np
import pytest

from fastgru import cpu
from fastgru.engine import CPURunner, OptimizerState, TrainConfig, predict_cpu, train
from fastgru.params import NetworkSpec, init_params, pack, unpack

CONVENTIONS = [False, True]


def random_layer(rng, F, H, reset_after, scale=0.6):
    return {
        "W": rng.normal(size=(F, 3 * H)) * scale,
        "U": rng.normal(size=(H, 3 * H)) * scale,
        "b": rng.normal(size=3 * H) * 0.3,
        "bh": rng.normal(size=3 * H) * 0.3 if reset_after else None,
    }


# ---------------------------------------------------------------------------- forward
@pytest.mark.parametrize("reset_after", CONVENTIONS)
@pytest.mark.parametrize("B,T,F,H", [(1, 1, 1, 1), (3, 7, 4, 5), (8, 20, 2, 33), (2, 3, 6, 64)])
def test_layer_forward_matches_oracle_float64(reset_after, B, T, F, H):
    rng = np.random.default_rng(B * 1000 + T * 10 + H)
    p = random_layer(rng, F, H, reset_after)
    X = rng.normal(size=(B, T, F))
    h0 = rng.normal(size=(B, H))
    out, _ = cpu.layer_forward(X, h0, p, reset_after)
    ref = naive.gru_layer(X, h0, p, reset_after)
    assert out.shape == (B, T, H)
    assert np.max(np.abs(out - ref)) < 1e-10
    assert np.max(np.abs(ref)) > 0.1  # the inputs exercise the gates, not a zero state


@pytest.mark.parametrize("reset_after", CONVENTIONS)
def test_layer_forward_matches_oracle_float32(reset_after):
    rng = np.random.default_rng(5)
    B, T, F, H = 6, 30, 3, 50
    p = random_layer(rng, F, H, reset_after, scale=0.3)
    X = rng.normal(size=(B, T, F))
    h0 = rng.normal(size=(B, H)) * 0.5
    p32 = {k: (None if v is None else v.astype(np.float32)) for k, v in p.items()}
    out, _ = cpu.layer_forward(X.astype(np.float32), h0.astype(np.float32), p32, reset_after)
    assert out.dtype == np.float32
    ref = naive.gru_layer(X.astype(np.float32), h0.astype(np.float32), p32, reset_after)
    assert naive.rel_err(out, ref) < 1e-5


@pytest.mark.parametrize("reset_after", CONVENTIONS)
def test_conventions_differ(reset_after):
    # Guards against one convention silently running the other's equations.
    rng = np.random.default_rng(9)
    p = random_layer(rng, 2, 4, True)
    X = rng.normal(size=(2, 5, 2))
    h0 = rng.normal(size=(2, 4))
    a, _ = cpu.layer_forward(X, h0, p, True)
    b, _ = cpu.layer_forward(X, h0, {**p, "bh": None}, False)
    assert np.max(np.abs(a - b)) > 1e-3


@pytest.mark.parametrize("reset_after", CONVENTIONS)
@pytest.mark.parametrize("units", [(4,), (5, 3), (3, 4, 2)])
def test_network_predict_matches_oracle(reset_after, units):
    rng = np.random.default_rng(len(units))
    spec = NetworkSpec(2, units, 3, reset_after, "float64")
    layers = [
        random_layer(rng, f, h, reset_after) for f, h in zip((2, *units[:-1]), units, strict=True)
    ]
    head = {"W": rng.normal(size=(units[-1], 3)), "b": rng.normal(size=3)}
    theta = pack(spec, layers, head)
    X = rng.normal(size=(7, 6, 2))
    out = predict_cpu(spec, theta, X, chunk=3)  # chunks of 3, 3, 1 sequences
    assert np.max(np.abs(out - naive.network(X, layers, head, reset_after))) < 1e-10


# ---------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("reset_after", CONVENTIONS)
@pytest.mark.parametrize("B,T,F,H", [(1, 1, 3, 4), (1, 4, 2, 3), (3, 5, 4, 2)])
def test_layer_gradients_match_finite_differences(reset_after, B, T, F, H):
    rng = np.random.default_rng(T * 7 + B)
    p = random_layer(rng, F, H, reset_after)
    X = rng.normal(size=(B, T, F))
    h0 = rng.normal(size=(B, H))
    G = rng.normal(size=(B, T, H))  # a random upstream gradient: loss = sum(G * H_seq)
    _, cache = cpu.layer_forward(X, h0, p, reset_after)
    grads = cpu.layer_backward(cache, G)

    def loss():
        return np.sum(G * naive.gru_layer(X, h0, p, reset_after))

    names = ["W", "U", "b"] + (["bh"] if reset_after else [])
    for name in names:
        assert naive.rel_err(grads[name], naive.central_diff(loss, p[name])) < 1e-6, name
    assert naive.rel_err(grads["X"], naive.central_diff(loss, X)) < 1e-6
    assert naive.rel_err(grads["h0"], naive.central_diff(loss, h0)) < 1e-6
    if not reset_after:
        assert grads["bh"] is None


def _network_case(rng, units, reset_after, n_out, B, T, F, loss):
    spec = NetworkSpec(F, units, n_out, reset_after, "float64")
    layers = [
        random_layer(rng, f, h, reset_after) for f, h in zip((F, *units[:-1]), units, strict=True)
    ]
    head = {"W": rng.normal(size=(units[-1], n_out)), "b": rng.normal(size=n_out)}
    theta = pack(spec, layers, head)
    X = rng.normal(size=(B, T, F))
    yhat = naive.network(X, layers, head, reset_after)
    # Targets away from the kinks of mae (e = 0) and huber (|e| = 1).
    offs = rng.choice([-1.7, -0.6, 0.4, 1.5], size=yhat.shape) + rng.uniform(-0.1, 0.1, yhat.shape)
    return spec, theta, X, yhat + offs


@pytest.mark.parametrize("reset_after", CONVENTIONS)
@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
@pytest.mark.parametrize(
    "units,B,T,F", [((3,), 1, 1, 2), ((4, 3), 2, 3, 3), ((3, 2, 4), 1, 4, 2)], ids=str
)
def test_network_gradient_matches_finite_differences(reset_after, loss, units, B, T, F):
    rng = np.random.default_rng(len(units) * 100 + B + T)
    n_out = 2
    spec, theta, X, y = _network_case(rng, units, reset_after, n_out, B, T, F, loss)
    layout, head, _ = spec.layout()
    ws = np.empty(cpu.workspace_size(layout, head, T, B))
    grad = np.zeros_like(theta)
    Xt = np.ascontiguousarray(X.transpose(1, 0, 2))
    code = {"mse": 0, "mae": 1, "huber": 2}[loss]
    value = cpu.network_loss_grad(theta, layout, head, reset_after, Xt, y, code, 1.0, ws, grad)

    def f():
        layers, hd = unpack(spec, theta)
        return naive.loss(naive.network(X, layers, hd, reset_after), y, loss)

    assert abs(value - f()) < 1e-12
    num = naive.central_diff(f, theta)
    assert naive.rel_err(grad, num) < 1e-6
    # Every block gets a gradient (a dead block would pass a global relative check); with
    # T = 1 the recurrent weights only ever see the zero initial state.
    layers_g, head_g = unpack(spec, grad)
    for lg in layers_g:
        for k in ("W", "U", "b") if T > 1 else ("W", "b"):
            assert np.any(lg[k] != 0), k
    assert np.any(head_g["W"] != 0)


@pytest.mark.parametrize("kind,expected", [("mse", 0.0), ("mae", 0.0), ("huber", 0.0)])
def test_loss_kernel_values(kind, expected):
    yhat = np.array([[0.5, -2.0], [3.0, 0.25]])
    y = np.array([[0.0, 0.0], [0.0, 0.0]])
    d = np.empty_like(yhat)
    code = {"mse": 0, "mae": 1, "huber": 2}[kind]
    assert cpu.loss_and_grad(yhat, y, code, 1.0, d) == pytest.approx(naive.loss(yhat, y, kind))
    if kind == "huber":
        # 0.5*0.25, 1*(2-0.5), 1*(3-0.5), 0.5*0.0625 averaged
        assert cpu.loss_and_grad(yhat, y, 2, 1.0, d) == pytest.approx(
            (0.125 + 1.5 + 2.5 + 0.03125) / 4
        )
        np.testing.assert_allclose(d, [[0.125, -0.25], [0.25, 0.0625]])


def test_float32_loss_errors_are_float64():
    # As the CUDA kernel: (3e19)^2 overflows float32 but not the float64 the loss sums in.
    yhat = np.array([[3e19], [1.0 + 2**-23]], np.float32)
    y = np.array([[0.0], [1.0]], np.float32)
    d = np.empty_like(yhat)
    assert cpu.loss_and_grad(yhat, y, 0, 1.0, d) == pytest.approx((9e38 + 2**-46) / 2, rel=1e-6)
    assert d[0, 0] == np.float32(3e19) and d[1, 0] == np.float32(2**-23)


# ---------------------------------------------------------------------------- optimizers
def test_adam_update_matches_oracle():
    rng = np.random.default_rng(0)
    theta, g = rng.normal(size=50), rng.normal(size=50)
    m, v = np.zeros(50), np.zeros(50)
    t_ref, m_ref, v_ref = theta.copy(), m.copy(), v.copy()
    for step in range(1, 4):
        cpu.adam_update(theta, g, m, v, step, 1e-2, 0.9, 0.999, 1e-7, 1.0)
        t_ref, m_ref, v_ref = naive.adam(t_ref, g, m_ref, v_ref, step, 1e-2)
    np.testing.assert_allclose(theta, t_ref, rtol=1e-13)
    np.testing.assert_allclose(v, v_ref, rtol=1e-13)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_update_matches_oracle(nesterov):
    rng = np.random.default_rng(1)
    theta, g = rng.normal(size=20), rng.normal(size=20)
    vel = np.zeros(20)
    t_ref, v_ref = theta.copy(), vel.copy()
    for _ in range(3):
        cpu.sgd_update(theta, g, vel, 0.1, 0.9, nesterov, 1.0)
        t_ref, v_ref = naive.sgd(t_ref, g, v_ref, 0.1, 0.9, nesterov)
    np.testing.assert_allclose(theta, t_ref, rtol=1e-13)


def test_clipping_by_global_norm():
    g = np.array([3.0, 4.0])
    norm = cpu.global_norm(g)
    assert norm == 5.0
    for n in (0, 1, 7, 8, 9, 23_003):  # the eight partial sums and the tail
        r = np.random.default_rng(n).standard_normal(n)
        for x in (r, r.astype(np.float32)):
            ref = np.sqrt(np.sum(x.astype(np.float64) ** 2))
            assert cpu.global_norm(x) == pytest.approx(ref, rel=1e-13, abs=0)
    assert not np.isfinite(cpu.global_norm(np.array([1.0, np.nan, 2.0])))
    assert cpu.clip_scale(norm, 1.0) == pytest.approx(0.2)
    assert cpu.clip_scale(norm, 10.0) == 1.0
    assert cpu.clip_scale(norm, 0.0) == 1.0  # 0 means no clipping


# ---------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("reset_after", CONVENTIONS)
def test_init_is_keras_like_and_pack_round_trips(reset_after):
    spec = NetworkSpec(3, (8, 5), 2, reset_after, "float64")
    theta = init_params(spec, np.random.default_rng(0))
    layers, head = unpack(spec, theta)
    for layer, (f, h) in zip(layers, [(3, 8), (8, 5)], strict=True):
        assert np.max(np.abs(layer["W"])) <= np.sqrt(6 / (f + 3 * h))
        np.testing.assert_allclose(layer["U"] @ layer["U"].T, np.eye(h), atol=1e-12)
        assert not np.any(layer["b"])
        assert (layer["bh"] is not None) == reset_after
    np.testing.assert_array_equal(pack(spec, layers, head), theta)
    again = init_params(spec, np.random.default_rng(0))
    np.testing.assert_array_equal(again, theta)


def test_pack_rejects_wrong_shapes():
    spec = NetworkSpec(3, (4,), 1, False, "float64")
    layers, head = unpack(spec, np.zeros(spec.n_params))
    layers[0]["U"] = np.zeros((4, 4))
    with pytest.raises(ValueError, match=r"layer 0 U has shape \(4, 4\); expected \(4, 12\)"):
        pack(spec, layers, head)


# ---------------------------------------------------------------------------- training
def noisy_sine(n=1200, T=20, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n + T)
    s = 0.4 * np.sin(2 * np.pi * t / 37.0) + 0.05 * rng.normal(size=t.size) + 0.5
    X = np.lib.stride_tricks.sliding_window_view(s[:-1], T)[:, :, None]
    return np.ascontiguousarray(X, np.float32), s[T:, None].astype(np.float32)


def fit(spec, X, y, cfg, seed=0):
    theta = init_params(spec, np.random.default_rng(seed))
    runner = CPURunner(spec, theta, OptimizerState.zeros(theta.size, theta.dtype), cfg, X, y)
    hist = train(runner, cfg, np.random.default_rng(seed + 1), len(X))
    return runner.theta, hist


@pytest.mark.parametrize("reset_after", CONVENTIONS)
def test_training_reduces_loss_tenfold(reset_after):
    X, y = noisy_sine()
    spec = NetworkSpec(1, (16,), 1, reset_after, "float32")
    cfg = TrainConfig(epochs=8, batch_size=32, learning_rate=1e-2)
    theta, hist = fit(spec, X, y, cfg)
    initial = float(np.mean((predict_cpu(spec, init_params(spec, np.random.default_rng(0)), X)
                             - y) ** 2))  # fmt: skip
    final = float(np.mean((predict_cpu(spec, theta, X) - y) ** 2))
    assert final < initial / 10
    assert hist.loss[-1] < hist.loss[0]


def test_sgd_and_clipping_train():
    X, y = noisy_sine(n=600)
    spec = NetworkSpec(1, (8, 8), 1, False, "float32")
    cfg = TrainConfig(epochs=6, batch_size=16, optimizer="sgd", learning_rate=0.05,
                      clip_norm=1.0, loss="huber")  # fmt: skip
    _, hist = fit(spec, X, y, cfg)
    assert hist.loss[-1] < hist.loss[0] / 3


def test_training_is_bit_deterministic():
    X, y = noisy_sine(n=300)
    spec = NetworkSpec(1, (8, 6), 1, False, "float32")
    cfg = TrainConfig(epochs=2, batch_size=32)
    a, ha = fit(spec, X, y, cfg, seed=3)
    b, hb = fit(spec, X, y, cfg, seed=3)
    assert a.tobytes() == b.tobytes()
    assert ha.loss == hb.loss
    c, _ = fit(spec, X, y, cfg, seed=4)
    assert a.tobytes() != c.tobytes()


def test_small_batches_split_into_single_sequences(monkeypatch):
    """Up to ``MIN_PART_ROWS`` sequences per thread: one part per sequence (the
    matrix-vector path; a part of 2-8 pads to 8 columns); larger batches: one part per
    thread, or whole rounds of the threads of at most ``MAX_PART_ROWS`` sequences."""
    import numba

    from fastgru.engine import default_parts

    for threads, expected in [(2, {1: 1, 2: 2, 3: 3, 7: 7, 8: 8, 9: 2, 32: 2, 64: 2,
                                   65: 4, 128: 4, 512: 16}),
                              (16, {1: 1, 2: 2, 5: 5, 64: 64, 65: 16, 256: 16, 1024: 32}),
                              (1, {1: 1, 2: 2, 4: 4, 5: 1, 32: 1, 64: 2, 512: 16})]:  # fmt: skip
        monkeypatch.setattr(numba, "get_num_threads", lambda t=threads: t)
        assert {B: default_parts(B) for B in expected} == expected


@pytest.mark.parametrize("reset_after", CONVENTIONS)
@pytest.mark.parametrize("B", [1, 5, 8, 13, 16, 32, 40])
def test_float32_batch_as_vector_gradients_match_float64(reset_after, B):
    """float32 loss and gradient of a two-layer network against the float64 path, for
    batches that fill whole 8-lane vectors (8, 16, 32: the specialised products), need
    padding columns (5, 13: zeros that must get no gradient), are one sequence (the
    matrix-vector path) or wider than the specialised widths (40)."""
    rng = np.random.default_rng(B + (100 if reset_after else 0))
    T, F = 9, 3
    spec, theta, X, y = _network_case(rng, (12, 10), reset_after, 1, B, T, F, "mse")
    layout, head, _ = spec.layout()
    Xt = np.ascontiguousarray(X.transpose(1, 0, 2))
    out = {}
    for dt in (np.float64, np.float32):
        ws = np.zeros(cpu.workspace_size(layout, head, T, B), dt)
        grad = np.zeros(theta.size, dt)
        value = cpu.network_loss_grad(theta.astype(dt), layout, head, reset_after,
                                      Xt.astype(dt), y.astype(dt), 0, 1.0, ws, grad)  # fmt: skip
        out[dt] = value, grad.astype(np.float64)
    assert out[np.float32][0] == pytest.approx(out[np.float64][0], rel=1e-5)
    assert naive.rel_err(out[np.float32][1], out[np.float64][1]) < 1e-4
    assert np.count_nonzero(out[np.float64][1]) > 0.9 * theta.size


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 2e-5)])
def test_parts_of_one_row_train_like_one_part(dtype, tol):
    """A batch of 3 split into parts of 1 and 2 rows gives the weights of the unsplit batch
    (the part gradients are summed in another order: equal to rounding)."""
    X, y = noisy_sine(n=40, T=6)
    X, y = X.astype(dtype), y.astype(dtype)
    spec = NetworkSpec(1, (5, 4), 1, False, dtype)
    cfg = TrainConfig(epochs=2, batch_size=3)
    out = []
    for parts in (1, 2):
        theta = init_params(spec, np.random.default_rng(0))
        runner = CPURunner(spec, theta, OptimizerState.zeros(theta.size, theta.dtype), cfg, X, y,
                           n_parts=parts)  # fmt: skip
        train(runner, cfg, np.random.default_rng(1), len(X))
        out.append(runner.theta)
    np.testing.assert_allclose(out[1], out[0], rtol=tol, atol=tol)
    assert not np.array_equal(out[0], init_params(spec, np.random.default_rng(0)))


def test_nan_batch_stops_and_keeps_last_good_weights():
    X, y = noisy_sine(n=200)
    y = y.copy()
    y[150] = np.nan
    spec = NetworkSpec(1, (4,), 1, False, "float32")
    cfg = TrainConfig(epochs=3, batch_size=32, shuffle=False)
    theta0 = init_params(spec, np.random.default_rng(0))
    runner = CPURunner(spec, theta0.copy(), OptimizerState.zeros(theta0.size, theta0.dtype),
                       cfg, X, y)  # fmt: skip
    hist = train(runner, cfg, np.random.default_rng(0), len(X))
    assert hist.diverged and hist.loss == []
    np.testing.assert_array_equal(runner.theta, theta0)  # the failed epoch is rolled back


def test_early_stopping_restores_best_weights():
    X, y = noisy_sine(n=400)
    Xv, yv = noisy_sine(n=100, seed=5)
    spec = NetworkSpec(1, (6,), 1, False, "float64")
    cfg = TrainConfig(epochs=30, batch_size=32, learning_rate=0.3, early_stopping=True,
                      n_iter_no_change=2, tol=0.0)  # fmt: skip
    theta = init_params(spec, np.random.default_rng(0))
    runner = CPURunner(spec, theta, OptimizerState.zeros(theta.size, theta.dtype), cfg,
                       X.astype(np.float64), y.astype(np.float64))  # fmt: skip
    hist = train(runner, cfg, np.random.default_rng(0), len(X), Xv.astype(np.float64), yv)
    assert hist.stopped_early
    assert len(hist.val_loss) < 30
    final = float(np.mean((predict_cpu(spec, runner.theta, Xv) - yv) ** 2))
    assert final == pytest.approx(min(hist.val_loss), rel=1e-9)


@pytest.mark.parametrize("units,F,O", [((4,), 1, 1), ((5, 3), 2, 3), ((50, 50), 1, 1)])
def test_buffer_sizes_computed_in_python_match_the_kernels(units, F, O):
    from fastgru import engine

    for reset_after in (False, True):
        layout, head, _ = NetworkSpec(F, units, O, reset_after).layout()
        for T, B in ((1, 1), (7, 3), (100, 16)):
            assert engine._part_ws_size(layout, head, T, B) == cpu.part_workspace_size(
                layout, head, T, B
            )
            assert engine._predict_ws_size(layout, T, B) == cpu.predict_workspace_size(
                layout, head, T, B
            )
        assert engine._pack_size(layout) == cpu.pack_size(layout)


def test_view_is_an_offset_reshape_sharing_memory():
    from numba import njit

    @njit
    def views(a, off):
        v = cpu._view(a, off, (2, 3))
        w = cpu._view(a, off + 6, 4)
        x = cpu._view(a, 1, (2, 2, 2))
        v[1, 2] = -1.0
        return v, w, x

    for dtype in (np.float32, np.float64):
        a = np.arange(20, dtype=dtype)
        v, w, x = views(a, 3)
        np.testing.assert_array_equal(v, np.array([[3, 4, 5], [6, 7, -1]], dtype))
        np.testing.assert_array_equal(w, np.arange(9, 13, dtype=dtype))
        np.testing.assert_array_equal(x, np.r_[1:8, -1].astype(dtype).reshape(2, 2, 2))
        assert a[8] == -1 and v.flags.c_contiguous and v.dtype == dtype
        del a  # the views keep the buffer alive
        assert float(v.sum() + w.sum() + x.sum()) == 24 + 42 + 27


def test_view_refuses_arrays_that_are_not_contiguous():
    from numba import njit
    from numba.core.errors import TypingError

    @njit
    def view_of_column(a):
        return cpu._view(a[:, 0], 0, 2)

    with pytest.raises(TypingError):
        view_of_column(np.zeros((3, 3), np.float32))


def test_gemm_slot_fills_itself_on_first_use_in_a_fresh_process():
    """Kernels call the float32 GEMM through a table slot; a kernel called before any
    driver (as here) goes through the trampoline, which compiles or loads the GEMM, fills
    the slot and computes the product."""
    import subprocess
    import sys

    code = """
import numpy as np
from numba import njit
from fastgru import cpu
trampoline = int(cpu._SLOTS[cpu._SLOT_SGEMM])
@njit
def product(A, B, C):
    cpu.gemm(A, B, C, False)
rng = np.random.default_rng(0)
A = rng.standard_normal((5, 7)).astype(np.float32)
B = rng.standard_normal((7, 9)).astype(np.float32)
C = np.zeros((5, 9), np.float32)
product(A, B, C)
gemm = cpu._ENTRIES[cpu._entry_name("gemm", cpu.types.float32)]
assert int(cpu._SLOTS[cpu._SLOT_SGEMM]) == gemm.address != trampoline
print(float(np.abs(C - A @ B).max()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=600)  # fmt: skip
    assert float(out.stdout.strip().splitlines()[-1]) < 1e-5


def _predict_in_forked_child(spec, theta, X):
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        return pool.apply(predict_cpu, (spec, theta, X), {"chunk": 5, "n_workers": 2})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_prediction_does_not_depend_on_the_thread_split(dtype):
    """Chunks dealt to 1, 2 or 3 threads (the last chunk short) give the same rows, equal
    to the float64 oracle; a forked child (which has no pool threads) predicts them too."""
    spec = NetworkSpec(n_features=2, units=(6, 5), n_outputs=2, dtype=dtype)
    theta = init_params(spec, np.random.default_rng(2))
    X = np.random.default_rng(3).standard_normal((43, 7, 2)).astype(dtype)
    ref = predict_cpu(spec, theta, X, chunk=5, n_workers=1)
    for workers in (2, 3):
        np.testing.assert_array_equal(predict_cpu(spec, theta, X, chunk=5, n_workers=workers), ref)
    np.testing.assert_array_equal(_predict_in_forked_child(spec, theta, X), ref)
    layers, head = unpack(spec, theta.astype(np.float64))
    expected = naive.network(X.astype(np.float64), layers, head, spec.reset_after)
    tol = 1e-5 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(ref, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_intrinsics_on_strided_views(dtype):
    """gemm and gemm_bias (emitted in the calling kernel) on a transposed left operand and a
    column block of the output, against NumPy; mixed dtypes do not compile."""
    from numba import njit
    from numba.core.errors import TypingError

    @njit
    def products(A, B, C, bias):
        cpu.gemm(A.T, B, C[:, :4], False)  # a transposed A and a strided block of C
        cpu.gemm(A.T, B, C[:, 4:8], True)
        cpu.gemm_bias(A.T, B, C[:, 8:12], bias)

    def guarded(shape):  # the products read whole 8-lane vectors of B's rows and the bias
        buf = np.zeros(int(np.prod(shape)) + cpu.GUARD, dtype)
        out = buf[: int(np.prod(shape))].reshape(shape)
        out[:] = rng.standard_normal(shape)
        return out

    rng = np.random.default_rng(7)
    A = rng.standard_normal((6, 5)).astype(dtype)  # used as A.T: 5 x 6
    B = guarded((6, 4))
    bias = guarded((4,))
    C = np.ones((5, 16), dtype)
    products(A, B, C, bias)
    expected = A.T.astype(np.float64) @ B.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(C[:, :4], expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(C[:, 4:8], expected + 1, rtol=tol, atol=tol)
    np.testing.assert_allclose(C[:, 8:12], expected + bias, rtol=tol, atol=tol)
    np.testing.assert_array_equal(C[:, 12:], 1)  # nothing written past the blocks

    @njit
    def mixed(A, B, C):
        cpu.gemm(A, B, C, False)

    with pytest.raises(TypingError):
        mixed(A, B.astype(np.float64 if dtype == np.float32 else np.float32), C[:, :4])


def test_float32_activations_are_accurate_to_the_documented_bound():
    """The 8-lane sigmoid and tanh of the float32 kernels against float64: relative error
    below 1.5e-7 over [-20, 20] and down to |x| = 1e-10 (RESULTS.md quotes 1.47e-7 and
    1.34e-7), exact at 0, saturated far out and at infinity (as the float64 path's libm),
    NaN in gives NaN out; lengths that are not a multiple of 8 take the masked last
    vector."""
    mags = np.concatenate([np.linspace(0, 20, 400_001), np.geomspace(1e-10, 1.0, 20_001)])
    x = np.concatenate([mags, -mags]).astype(np.float32)
    sig = np.empty_like(x)
    tnh = np.empty_like(x)
    cpu.activations32(x, sig, tnh)
    xd = x.astype(np.float64)
    sig_ref = 1.0 / (1.0 + np.exp(-xd))
    tnh_ref = np.tanh(xd)
    nz = xd != 0
    assert np.max(np.abs(sig / sig_ref - 1.0)) < 1.5e-7
    assert np.max(np.abs(tnh[nz] / tnh_ref[nz] - 1.0)) < 1.5e-7
    assert np.all(tnh[~nz] == 0) and np.all(sig[~nz] == 0.5)
    odd = np.array([np.nan, -np.inf, np.inf, -200.0, 200.0, 0.0, 1e-30], np.float32)
    s, t = np.empty_like(odd), np.empty_like(odd)
    cpu.activations32(odd, s, t)
    assert np.isnan(s[0]) and np.isnan(t[0])
    np.testing.assert_array_equal(t[1:5], [-1.0, 1.0, -1.0, 1.0])
    np.testing.assert_array_equal(s[2], 1.0)
    np.testing.assert_array_equal(s[4], 1.0)
    assert 0.0 <= s[1] < 1e-37 and 0.0 <= s[3] < 1e-37
    assert s[5] == 0.5 and t[5] == 0.0 and t[6] == np.float32(1e-30) and s[6] == 0.5


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reset_after", CONVENTIONS)
def test_prediction_by_parts_is_the_same_to_the_bit(dtype, reset_after):
    """``predict_by_parts`` (the training entry point run forward only: a cold process's
    first predictions while the helper compiles the prediction kernels) gives exactly the
    rows of ``predict`` with the same chunks, in one thread or two, the last chunk short.
    (The chunk size itself matters: a chunk of 4k + 1 rows takes its last row through the
    one-row GEMM tile.)"""
    from fastgru.engine import _layout, _pack_size, _part_ws_size, _predict_ws_size

    spec = NetworkSpec(n_features=2, units=(6, 5), n_outputs=2, reset_after=reset_after,
                       dtype=dtype)  # fmt: skip
    theta = init_params(spec, np.random.default_rng(4))
    X = np.random.default_rng(5).standard_normal((43, 7, 2)).astype(dtype)
    layout, head, _ = _layout(spec)
    cpu.ensure_entries(theta.dtype, ("gemm", "part", "pack", "rows"))
    assert cpu.entries_loaded(theta.dtype, ("gemm", "part", "pack"))
    chunk, T = 5, X.shape[1]
    ref = np.full((len(X), 2), np.nan, dtype)
    cpu.predict(theta, layout, head, reset_after, X, chunk, ref,
                np.zeros(_pack_size(layout), dtype),
                np.zeros((2, _predict_ws_size(layout, T, chunk)), dtype))  # fmt: skip
    for P in (1, 2):
        out = np.full_like(ref, np.nan)
        size = _part_ws_size(layout, head, T, chunk)
        cpu.predict_by_parts(theta, layout, head, reset_after, X, chunk, out,
                             np.zeros(_pack_size(layout), dtype),
                             np.zeros((P, size) if P > 1 else size, dtype))  # fmt: skip
        np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(ref, predict_cpu(spec, theta, X, chunk=chunk, n_workers=1))


def test_small_predictions_are_shared_evenly_by_the_workers(monkeypatch):
    """By default ``N`` windows go to the workers in even chunks (at most
    ``PREDICT_CHUNK``): 16 windows on two threads are two chunks of 8, with the rows of an
    explicit ``chunk=8``; a single window does not even ask Numba for its thread count."""
    import numba

    spec = NetworkSpec(n_features=1, units=(6, 5), n_outputs=1)
    theta = init_params(spec, np.random.default_rng(6))
    X = np.random.default_rng(7).standard_normal((16, 9, 1)).astype(np.float32)
    ref = predict_cpu(spec, theta, X, chunk=8, n_workers=1)
    seen = []
    real = cpu.predict
    monkeypatch.setattr(cpu, "predict", lambda *a: seen.append((a[5], a[8].shape)) or real(*a))
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    np.testing.assert_array_equal(predict_cpu(spec, theta, X), ref)
    assert seen[-1][0] == 8 and seen[-1][1][0] == 2  # chunks of 8, two work buffers

    def no_asking():
        raise AssertionError("a single window asked for the thread count")

    monkeypatch.setattr(numba, "get_num_threads", no_asking)
    one = predict_cpu(spec, theta, X[:1])
    assert one.shape == (1, 1) and np.isfinite(one).all()


@pytest.mark.parametrize("reset_after", [False, True])
def test_kept_work_buffers_hold_nothing_that_reaches_a_result(reset_after):
    """``predict_cpu`` reuses its small work arrays between calls without zeroing them:
    filled with NaN in between, they give the same rows, for one window, a few, and
    chunks."""
    from fastgru import engine

    spec = NetworkSpec(n_features=2, units=(6, 5), n_outputs=2, reset_after=reset_after)
    theta = init_params(spec, np.random.default_rng(12))
    X = np.random.default_rng(13).standard_normal((40, 9, 2)).astype(np.float32)
    for n in (1, 3, 16, 40):
        ref = predict_cpu(spec, theta, X[:n])
        kept = [a for (_, s), a in engine._scratch.arrays.items() if s == spec]
        assert len(kept) == 2  # the packed weights and the work buffer
        for arr in kept:
            arr[:] = np.nan
        np.testing.assert_array_equal(predict_cpu(spec, theta, X[:n]), ref)
        assert np.isfinite(ref).all()


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_a_few_windows_are_predicted_one_at_a_time(monkeypatch, n):
    """Up to ``MIN_PART_ROWS`` windows per worker go through the network one at a time (a
    chunk of 2-8 would compute a whole padded vector of 8): the rows of each window
    predicted alone, bit for bit. More per worker: even chunks again (other products,
    the same values to rounding)."""
    import numba

    spec = NetworkSpec(n_features=2, units=(6, 5), n_outputs=1)
    theta = init_params(spec, np.random.default_rng(10))
    X = np.random.default_rng(11).standard_normal((n, 9, 2)).astype(np.float32)
    alone = np.concatenate([predict_cpu(spec, theta, X[i : i + 1]) for i in range(n)])
    seen = []
    real = cpu.predict
    monkeypatch.setattr(cpu, "predict", lambda *a: seen.append(a[5]) or real(*a))
    for threads in (1, 2):
        monkeypatch.setattr(numba, "get_num_threads", lambda threads=threads: threads)
        out = predict_cpu(spec, theta, X)
        share = -(-n // threads)
        if share <= 4:
            assert seen[-1] == 1
            np.testing.assert_array_equal(out, alone)
        else:
            assert seen[-1] == share
            np.testing.assert_allclose(out, alone, rtol=1e-5, atol=1e-6)
