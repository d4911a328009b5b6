"""CUDA kernels against the CPU engine and the NumPy float64 oracle.

Without a GPU these run under Numba's CUDA simulator (see ``conftest.py``), where every GPU
thread is a Python thread: shapes stay tiny, and the launch shapes (``Tuning``) are chosen to
exercise the paths a real GPU takes with its larger defaults: several blocks with a partial
last one, fewer threads than (sequence, unit) pairs, recurrent weights in shared or in global
memory, GEMM tiles that do not divide the matrices.
"""

import os
import subprocess
import sys

import naive
import numpy as np
import pytest

from fastgru import cpu
from fastgru import cuda as fc
from fastgru.engine import CPURunner, OptimizerState, TrainConfig, predict_cpu, train
from fastgru.params import NetworkSpec, pack

CUDA_OK, CUDA_WHY = fc.cuda_status()
needs_cuda = pytest.mark.skipif(not CUDA_OK, reason=f"CUDA is not usable: {CUDA_WHY}")
SIM = CUDA_OK and CUDA_WHY == "CUDA simulator"
CONVENTIONS = [False, True]
TOL = {"float32": 1e-5, "float64": 1e-10}


@pytest.fixture(autouse=True, scope="module")
def _fast_simulator_switching():
    # The simulator's block manager busy-polls its threads; a short GIL switch interval
    # makes syncthreads hand-offs about 4x faster. Restored after this module.
    old = sys.getswitchinterval()
    if SIM:
        sys.setswitchinterval(5e-5)
    yield
    sys.setswitchinterval(old)


def random_layer(rng, F, H, reset_after, scale=0.6):
    return {
        "W": rng.normal(size=(F, 3 * H)) * scale,
        "U": rng.normal(size=(H, 3 * H)) * scale,
        "b": rng.normal(size=3 * H) * 0.3,
        "bh": rng.normal(size=3 * H) * 0.3 if reset_after else None,
    }


def cast(p, dtype):
    return {k: (None if v is None else np.asarray(v, dtype)) for k, v in p.items()}


# ---------------------------------------------------------------------------- status
def test_cuda_status_never_raises_and_explains():
    ok, why = fc.cuda_status()
    assert isinstance(ok, bool) and isinstance(why, str) and why
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        assert (ok, why) == (True, "CUDA simulator")


def test_cuda_status_reasons(monkeypatch):
    monkeypatch.setattr(fc, "cuda", None)
    ok, why = fc.cuda_status()
    assert not ok and "numba-cuda" in why

    class NoDriver:
        def is_available(self):
            return False

        def list_devices(self):
            raise RuntimeError("Error at driver init: CUDA driver library cannot be found.")

    class NoGPU(NoDriver):
        def list_devices(self):
            return []

    monkeypatch.setattr(fc, "_simulator", lambda: False)
    monkeypatch.setattr(fc, "cuda", NoDriver())
    assert fc.cuda_status() == (False, "no NVIDIA driver (the CUDA driver library cannot be found)")
    monkeypatch.setattr(fc, "cuda", NoGPU())
    assert fc.cuda_status() == (False, "no CUDA GPU found")


def test_a_gpu_that_cannot_run_kernels_is_not_usable(monkeypatch):
    """cuda.is_available() only finds the driver and NVVM: a missing libnvrtc, an old
    driver or an old GPU fail at the first launch, which device='auto' must not choose."""

    class Dev:
        name = b"Some GPU"
        compute_capability = (7, 0)

    class Driver:
        def is_available(self):
            return True

        def get_current_device(self):
            return Dev()

    monkeypatch.setattr(fc, "_simulator", lambda: False)
    monkeypatch.setattr(fc, "cuda", Driver())
    monkeypatch.setattr(fc, "_kernel_probe", lambda: "NVRTC library not found")
    assert fc.cuda_status() == (
        False, "Some GPU (compute capability 7.0) cannot run kernels: NVRTC library not found"
    )  # fmt: skip
    monkeypatch.setattr(fc, "_kernel_probe", lambda: None)
    assert fc.cuda_status() == (True, "Some GPU (compute capability 7.0)")


@needs_cuda
def test_kernel_probe_runs_a_kernel():
    assert fc._kernel_probe.__wrapped__() is None  # (the simulator runs it)


def test_launch_shapes_and_memory_for_a_real_gpu(monkeypatch):
    # Plans as on hardware (not the simulator's tiny shapes): computed, nothing allocated.
    monkeypatch.setattr(fc, "_simulator", lambda: False)
    for H in (50, 256, 1024):
        plan = fc._Plan(NetworkSpec(1, (H, H), 1, False, "float32"), 100, 512, np.float32,
                        fc.Tuning(), train=True)  # fmt: skip
        assert all(r.nt <= 512 and r.nt % 32 == 0 for r in plan.layers)  # 80 registers each
    spec = NetworkSpec(1, (50, 50), 1, False, "float32")
    chunk = fc._predict_chunk(spec, 100, 7900, np.float32, fc.Tuning())
    assert 32 < chunk <= 7900  # not the CPU's 32: each pass is 100 dependent steps
    assert fc._predict_chunk(spec, 100, 5, np.float32, fc.Tuning()) == 5

    class Context:
        def get_memory_info(self):
            return 2**30, 8 * 2**30

    class Driver:
        def current_context(self):
            return Context()

    monkeypatch.setattr(fc, "cuda", Driver())
    fc._check_memory(2**29, "training on the GPU", "Lower batch_size.")
    with pytest.raises(RuntimeError, match=r"^training on the GPU needs 1\.5 GiB of GPU memory; "
                       r"1\.0 of 8\.0 GiB are free\. Lower batch_size\.$"):  # fmt: skip
        fc._check_memory(3 * 2**29, "training on the GPU", "Lower batch_size.")


def test_float32_gates_stay_float32():
    # The shared _math.sigmoid's 1.0 literals made the float32 kernels compute in float64.
    from fastgru import _math

    sig = fc._typed_sigmoid(np.float32)
    for x in (-30.0, -2.5, 0.0, 0.7, 40.0):
        got = sig(np.float32(x))
        assert isinstance(got, np.float32)
        assert abs(got - _math.sigmoid(x)) <= 1.2e-7 * _math.sigmoid(x)


@pytest.mark.skipif(os.path.exists("/dev/nvidiactl"), reason="checks a machine without a GPU")
def test_import_without_gpu_or_simulator():
    # Lazy kernel signatures: importing (and asking) must work where no launch can.
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    code = "import fastgru.cuda as c; ok, why = c.cuda_status(); print(ok); print(why)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "False" and lines[1]
    assert not lines[1].startswith("CUDA check failed")  # a diagnosed reason, not the fallback


# ---------------------------------------------------------------------------- one layer
# (B, T, F, H, tuning): several blocks with a partial last one, fewer threads than pairs,
# U in shared vs global memory, T = 1, and one case with the GPU's GEMM micro-tiling.
LAYER_CASES = [
    pytest.param(
        5,
        4,
        3,
        7,
        fc.Tuning(seq_tile=2, threads=14, gemm_threads=2, micro=2, kt=4, poison=True),
        id="B5T4F3H7-tile2",
    ),
    pytest.param(3, 3, 2, 5, fc.Tuning(seq_tile=2, threads=3, shared=False), id="global-U"),
    pytest.param(1, 1, 1, 1, fc.Tuning(), id="T1-H1"),
    pytest.param(2, 2, 3, 6, fc.Tuning(threads=4, gemm_threads=4, micro=4, kt=16), id="micro4"),
]


@needs_cuda
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reset_after", CONVENTIONS)
@pytest.mark.parametrize("B,T,F,H,tuning", LAYER_CASES)
def test_layer_forward_backward_match_cpu_and_oracle(dtype, reset_after, B, T, F, H, tuning):
    rng = np.random.default_rng(B * 100 + T * 10 + H)
    p = cast(random_layer(rng, F, H, reset_after), dtype)
    X = rng.normal(size=(B, T, F)).astype(dtype)
    h0 = (rng.normal(size=(B, H)) * 0.5).astype(dtype)
    G = rng.normal(size=(B, T, H)).astype(dtype)
    tol = TOL[dtype]

    out, cache = fc.layer_forward(X, h0, p, reset_after, tuning=tuning)
    ref_cpu, cpu_cache = cpu.layer_forward(X, h0, p, reset_after)
    ref = naive.gru_layer(X, h0, p, reset_after)
    assert out.shape == (B, T, H) and out.dtype == np.dtype(dtype)
    assert np.max(np.abs(ref)) > 0.1  # the inputs exercise the gates
    assert naive.rel_err(out, ref) < tol
    assert naive.rel_err(out, ref_cpu) < tol

    g = fc.layer_backward(cache, G)
    g_cpu = cpu.layer_backward(cpu_cache, G)
    for name in ("W", "U", "b", "bh", "X", "h0"):
        if name == "bh" and not reset_after:
            assert g["bh"] is None
            continue
        assert g[name].shape == g_cpu[name].shape, name
        assert naive.rel_err(g[name], g_cpu[name]) < tol, name


@needs_cuda
@pytest.mark.parametrize("reset_after", CONVENTIONS)
def test_layer_gradients_match_oracle_finite_differences(reset_after):
    rng = np.random.default_rng(21)
    B, T, F, H = 3, 3, 2, 4
    p = random_layer(rng, F, H, reset_after)
    X = rng.normal(size=(B, T, F))
    h0 = rng.normal(size=(B, H))
    G = rng.normal(size=(B, T, H))  # loss = sum(G * H_seq)
    _, cache = fc.layer_forward(X, h0, p, reset_after, tuning=fc.Tuning(seq_tile=2))
    g = fc.layer_backward(cache, G)

    def loss():
        return np.sum(G * naive.gru_layer(X, h0, p, reset_after))

    for name in ["W", "U", "b"] + (["bh"] if reset_after else []):
        assert naive.rel_err(g[name], naive.central_diff(loss, p[name])) < 1e-7, name
    assert naive.rel_err(g["X"], naive.central_diff(loss, X)) < 1e-7
    assert naive.rel_err(g["h0"], naive.central_diff(loss, h0)) < 1e-7


# ---------------------------------------------------------------------------- network
def network_case(rng, units, reset_after, n_out, B, T, F, dtype):
    spec = NetworkSpec(F, units, n_out, reset_after, dtype)
    layers = [
        random_layer(rng, f, h, reset_after) for f, h in zip((F, *units[:-1]), units, strict=True)
    ]
    head = {"W": rng.normal(size=(units[-1], n_out)), "b": rng.normal(size=n_out)}
    theta = pack(spec, layers, head)
    X = rng.normal(size=(B, T, F)).astype(dtype)
    yhat = naive.network(X, layers, head, reset_after)
    # Targets away from the kinks of mae (e = 0) and huber (|e| = 1).
    offs = rng.choice([-1.7, -0.6, 0.4, 1.5], size=yhat.shape) + rng.uniform(-0.1, 0.1, yhat.shape)
    return spec, theta, X, (yhat + offs).astype(dtype), layers, head


def cpu_loss_grad(spec, theta, X, y, loss):
    layout, head, _ = spec.layout()
    B, T, _ = X.shape
    ws = np.zeros(cpu.workspace_size(layout, head, T, B), theta.dtype)
    grad = np.zeros_like(theta)
    Xt = np.ascontiguousarray(X.transpose(1, 0, 2))
    value = cpu.network_loss_grad(
        theta, layout, head, spec.reset_after, Xt, y, fc.config.LOSSES[loss], 1.0, ws, grad
    )
    return value, grad


@needs_cuda
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reset_after", CONVENTIONS)
@pytest.mark.parametrize(
    "units,n_out,B,T,F,loss",
    [((5, 3), 2, 4, 3, 2, "mse"), ((4,), 1, 3, 1, 3, "huber"), ((3, 2), 1, 2, 2, 1, "mae")],
    ids=["2layers-mse", "T1-huber", "mae"],
)
def test_network_loss_grad_matches_cpu_and_oracle(dtype, reset_after, units, n_out, B, T, F, loss):
    rng = np.random.default_rng(len(units) * 10 + T)
    spec, theta, X, y, layers, head = network_case(rng, units, reset_after, n_out, B, T, F, dtype)
    tol = TOL[dtype]
    value, grad = fc.network_loss_grad(spec, theta, X, y, loss, tuning=fc.Tuning(seq_tile=2))
    ref_value, ref_grad = cpu_loss_grad(spec, theta, X, y, loss)
    assert grad.dtype == theta.dtype
    assert abs(value - ref_value) <= tol * abs(ref_value)
    assert abs(value - naive.loss(naive.network(X, layers, head, reset_after), y, loss)) <= (
        tol * abs(ref_value)
    )
    assert naive.rel_err(grad, ref_grad) < tol


@needs_cuda
def test_network_gradient_matches_oracle_finite_differences():
    rng = np.random.default_rng(3)
    spec, theta, X, y, _, _ = network_case(rng, (3, 2), True, 2, 2, 3, 2, "float64")
    _, grad = fc.network_loss_grad(spec, theta, X, y, "huber")
    from fastgru.params import unpack

    def loss():
        layers, head = unpack(spec, theta)
        return naive.loss(naive.network(X, layers, head, True), y, "huber")

    assert naive.rel_err(grad, naive.central_diff(loss, theta)) < 1e-7


@needs_cuda
@pytest.mark.parametrize("reset_after", CONVENTIONS)
def test_predict_matches_cpu(reset_after):
    rng = np.random.default_rng(8)
    spec, theta, _, _, _, _ = network_case(rng, (4, 3), reset_after, 2, 1, 1, 2, "float64")
    X = rng.normal(size=(7, 3, 2))
    out = fc.predict_cuda(spec, theta, X, chunk=3)  # chunks of 3, 3, 1
    assert out.shape == (7, 2)
    assert naive.rel_err(out, predict_cpu(spec, theta, X)) < 1e-10
    assert fc.predict_cuda(spec, theta, X[:0]).shape == (0, 2)


# ---------------------------------------------------------------------------- training
EPOCH_CASES = [
    # dtype, reset_after, optimizer, loss, clip_norm, nesterov
    ("float64", False, "adam", "mse", 0.5, False),
    ("float64", True, "sgd", "huber", None, True),
    ("float32", False, "sgd", "mae", 0.3, False),
    ("float32", True, "adam", "mse", None, False),
]


def runners(dtype, reset_after, optimizer, loss, clip_norm, nesterov, y_nan=None, n=7):
    rng = np.random.default_rng(11)
    spec, theta, X, y, _, _ = network_case(rng, (5, 3), reset_after, 2, n, 3, 2, dtype)
    if y_nan is not None:
        y[y_nan, 0] = np.nan
    cfg = TrainConfig(
        batch_size=3, optimizer=optimizer, learning_rate=0.05, loss=loss, clip_norm=clip_norm,
        momentum=0.8, nesterov=nesterov,
    )  # fmt: skip
    out = []
    for make in (CPURunner, fc.CUDARunner):
        opt = OptimizerState.zeros(theta.size, theta.dtype)
        opt.step[0] = 4  # a resumed fit: Adam's bias correction must count on from here
        kw = {"tuning": fc.Tuning(seq_tile=2, poison=True)} if make is fc.CUDARunner else {}
        out.append(make(spec, theta.copy(), opt, cfg, X, y, **kw))
    return out, X, y, theta


@needs_cuda
@pytest.mark.parametrize("dtype,reset_after,optimizer,loss,clip_norm,nesterov", EPOCH_CASES)
def test_epoch_matches_cpu_runner(dtype, reset_after, optimizer, loss, clip_norm, nesterov):
    (cpu_r, gpu_r), X, _, theta0 = runners(dtype, reset_after, optimizer, loss, clip_norm, nesterov)
    order = np.array([4, 0, 6, 2, 5, 1, 3])  # batches of 3, 3 and 1
    tol = TOL[dtype]
    loss_c, bad_c = cpu_r.epoch(order)
    loss_g, bad_g = gpu_r.epoch(order)
    assert bad_c == bad_g == -1
    assert abs(loss_g - loss_c) <= tol * abs(loss_c)
    theta, opt = gpu_r.finish()
    assert theta is gpu_r.theta and theta.dtype == np.dtype(dtype)
    assert int(opt.step[0]) == int(cpu_r.opt.step[0]) == 4 + 3
    # Every parameter moved (the updates are not trivial) and agrees with the CPU engine.
    assert np.all(theta != theta0)
    assert naive.rel_err(theta, cpu_r.theta) < tol
    assert naive.rel_err(opt.m, cpu_r.opt.m) < tol
    if optimizer == "adam":
        assert naive.rel_err(opt.v, cpu_r.opt.v) < tol
    assert naive.rel_err(gpu_r.predict(X[:4]), cpu_r.predict(X[:4])) < tol


@needs_cuda
def test_bad_batch_reports_start_and_skips_the_rest():
    (cpu_r, gpu_r), _, _, _ = runners("float64", False, "adam", "mse", None, False, y_nan=5)
    order = np.array([0, 1, 2, 3, 4, 5, 6])  # sample 5 is in the second batch
    loss_c, bad_c = cpu_r.epoch(order)
    loss_g, bad_g = gpu_r.epoch(order)
    assert bad_g == bad_c == 3
    assert abs(loss_g - loss_c) <= 1e-10 * abs(loss_c)
    theta, opt = gpu_r.finish()
    assert int(opt.step[0]) == int(cpu_r.opt.step[0]) == 5  # only the first batch applied
    assert naive.rel_err(theta, cpu_r.theta) < 1e-10


@needs_cuda
def test_snapshot_restore_and_train_loop():
    (cpu_r, gpu_r), X, y, _ = runners("float64", True, "adam", "mse", None, False, n=4)
    token = gpu_r.snapshot()
    before = gpu_r.predict(X)
    gpu_r.epoch(np.arange(4))
    assert np.max(np.abs(gpu_r.predict(X) - before)) > 1e-6
    gpu_r.restore(token)
    assert np.array_equal(gpu_r.predict(X), before)
    assert int(gpu_r.opt.step[0]) == 4
    assert gpu_r.params_finite() and cpu_r.params_finite()
    inf = token[0].copy_to_host()
    inf[-1] = np.inf
    gpu_r.restore((inf,) + token[1:])
    last = cpu_r.theta[-1]
    cpu_r.theta[-1] = np.inf
    assert not gpu_r.params_finite() and not cpu_r.params_finite()
    gpu_r.restore(token)
    cpu_r.theta[-1] = last
    # The engine's loop over both backends, same shuffles: same history and weights.
    cfg = gpu_r.cfg
    cfg.epochs = 2
    h_gpu = train(gpu_r, cfg, np.random.default_rng(0), 4, X_val=X, y_val=y)
    h_cpu = train(cpu_r, cfg, np.random.default_rng(0), 4, X_val=X, y_val=y)
    assert np.allclose(h_gpu.loss, h_cpu.loss, rtol=1e-10, atol=0)
    assert np.allclose(h_gpu.val_loss, h_cpu.val_loss, rtol=1e-10, atol=0)
    assert naive.rel_err(gpu_r.finish()[0], cpu_r.theta) < 1e-10


@needs_cuda
def test_validation_set_is_uploaded_once(monkeypatch):
    (_, gpu_r), X, _, _ = runners("float64", False, "adam", "mse", None, False, n=4)
    first = gpu_r.predict(X)
    uploads = []
    real = fc.cuda.to_device
    monkeypatch.setattr(fc.cuda, "to_device", lambda a, *k, **kw: uploads.append(a.shape)
                        or real(a, *k, **kw))  # fmt: skip
    np.testing.assert_array_equal(gpu_r.predict(X), first)
    assert uploads == []  # the same array: its device copy is reused
    np.testing.assert_array_equal(gpu_r.predict(X.copy()), first)
    assert uploads == [X.shape]


@needs_cuda
def test_runner_rejects_unknown_loss():
    rng = np.random.default_rng(0)
    spec, theta, X, y, _, _ = network_case(rng, (2,), False, 1, 2, 2, 1, "float64")
    opt = OptimizerState.zeros(theta.size, theta.dtype)
    with pytest.raises(ValueError, match="loss"):
        fc.CUDARunner(spec, theta, opt, TrainConfig(loss="l3"), X, y)


@needs_cuda
def test_each_kernel_has_one_argument_signature(monkeypatch):
    # On a GPU a second signature is a second compilation, or a typing error where the
    # simulator, which does not type, runs fine (e.g. a float array passed as an index array).
    seen = {}
    launch = fc._Engine.launch

    def kind(a):
        if hasattr(a, "dtype") and hasattr(a, "ndim"):
            return (np.dtype(a.dtype).name, a.ndim)
        return type(a).__name__

    def recording(self, name, *cfg):
        run = launch(self, name, *cfg)

        def call(*args):
            seen.setdefault(name, set()).add(tuple(kind(a) for a in args))
            return run(*args)

        return call

    monkeypatch.setattr(fc._Engine, "launch", recording)
    (_, gpu_r), X, _, _ = runners("float32", True, "adam", "mse", 0.5, False, n=4)
    gpu_r.epoch(np.arange(4))
    gpu_r.predict(X)
    rng = np.random.default_rng(0)
    spec, theta, X, y, _, _ = network_case(rng, (3,), True, 1, 2, 2, 2, "float32")
    fc.network_loss_grad(spec, theta, X, y)
    fc.predict_cuda(spec, theta, X)
    p = cast(random_layer(rng, 2, 3, True), "float32")
    out, cache = fc.layer_forward(X, np.zeros((2, 3), np.float32), p, True)
    fc.layer_backward(cache, out)
    assert set(seen) == {"gather", "gemm", "fwd_loop", "head_train", "head_predict", "bwd_loop",
                         "sumsq", "update"}  # fmt: skip
    for name, sigs in seen.items():
        assert len(sigs) == 1, (name, sigs)
