"""The training loop over either backend.

``train`` runs epochs: it draws each epoch's shuffle from a seeded
``numpy.random.Generator``, calls a backend *runner* for the compiled epoch, evaluates the
optional validation set, keeps the best weights for early stopping and stops cleanly when
the loss stops being finite. The estimator is a thin layer over it.

A runner (``CPURunner`` here, ``fastgru.cuda.CUDARunner`` for the GPU) holds the
network's parameters, the optimizer state and the data for one fit, and offers:

``epoch(order) -> (mean_loss, bad_start)``
    one epoch over the samples in ``order``; ``bad_start`` is -1 or the first sample of the
    batch whose loss or gradient was not finite (that batch's update is not applied).
``predict(X) -> ndarray``
    head output for ``X (N, T, F)``.
``snapshot() -> object`` / ``restore(token)``
    save and restore the parameters (for early stopping and for NaN recovery).
``finish() -> (theta, opt_state)``
    the parameters and optimizer state as host NumPy arrays.
"""

import contextlib
import functools
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from . import _precompile, config
from .params import NetworkSpec  # noqa: F401  (re-exported for the backends)


@dataclass
class TrainConfig:
    """Hyperparameters of the loop and of the optimizer (validated by the caller)."""

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    beta1: float = config.ADAM_BETA1
    beta2: float = config.ADAM_BETA2
    epsilon: float = config.ADAM_EPSILON
    momentum: float = 0.9
    nesterov: bool = False
    loss: str = "mse"
    huber_delta: float = 1.0
    clip_norm: float | None = None
    shuffle: bool = True
    early_stopping: bool = False
    n_iter_no_change: int = 10
    tol: float = 1e-4


@dataclass
class OptimizerState:
    """Adam's moments (or SGD's velocity in ``m``) and the step counter."""

    m: np.ndarray
    v: np.ndarray
    step: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))

    @classmethod
    def zeros(cls, n, dtype):
        return cls(np.zeros(n, dtype), np.zeros(n, dtype))


@dataclass
class History:
    """What a call of :func:`train` did, epoch by epoch."""

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    best_loss: float = np.inf
    best_epoch: int = -1
    stopped_early: bool = False
    diverged: bool = False
    seconds: list = field(default_factory=list)


class CPURunner:
    """Runner over the ``@njit`` kernels of :mod:`fastgru.cpu`.

    Each mini-batch is split into ``n_parts`` row slices trained in parallel: one per
    thread (``numba.get_num_threads()``), or one per sequence for small batches
    (``default_parts``).
    Results are bit-for-bit reproducible for a given ``n_parts``.
    Every work buffer is allocated here, once per fit, and sized by the batch (not by the
    data): ``n_parts`` x ``cpu.part_workspace_size`` plus one gradient vector per part.
    """

    def __init__(self, spec, theta, opt_state, cfg, X, y, T_max=None, n_parts=None):
        from . import cpu

        self._cpu = cpu
        _precompile.start(theta.dtype)  # cold cache: compile the driver alongside
        self._ready = False
        self.spec = spec
        self.cfg = cfg
        self.theta = theta
        self.opt = opt_state
        self.layout, self.head, _ = _layout(spec)
        self.X = X
        self.y = y
        dtype = theta.dtype
        T = X.shape[1] if T_max is None else T_max
        B = int(cfg.batch_size)
        self.n_parts = int(n_parts or default_parts(B))
        Bp = -(-B // self.n_parts)  # rows of the largest part
        # Work buffers for the whole fit, sized for the largest batch; zeroed so that the
        # lanes the float32 kernels read past a row (and discard) hold ordinary numbers.
        size = _part_ws_size(self.layout, self.head, T, Bp)
        self.ws = np.zeros((self.n_parts, size), dtype)
        self.grads = np.zeros((self.n_parts, theta.size), dtype)
        self.wpack = np.zeros(_pack_size(self.layout), dtype)
        self.part_loss = np.zeros(self.n_parts)

    def epoch_args(self, order):
        """The arguments of ``cpu.train_epoch`` for one epoch over ``order``."""
        c = self.cfg
        return (
            self.theta, self.layout, self.head, self.spec.reset_after,
            config.LOSSES[c.loss], float(c.huber_delta), self.X, self.y,
            np.ascontiguousarray(order, dtype=np.int64), int(c.batch_size),
            config.OPTIMIZERS[c.optimizer], float(c.learning_rate), float(c.beta1),
            float(c.beta2), float(c.epsilon), float(c.momentum), bool(c.nesterov),
            float(c.clip_norm or 0.0), self.opt.m, self.opt.v, self.opt.step,
            self.ws, self.grads, self.wpack, self.part_loss,
        )  # fmt: skip

    def prepare(self):
        """Compile (or load from the cache) the training kernels now, so that the first
        epoch's time is training only."""
        if self._ready:
            return
        import numba

        dtype = self.theta.dtype
        # The entry point here; the optimizer step, packing and the driver (perhaps) in the
        # helper process meanwhile, loaded from the cache once it is done.
        self._cpu.ensure_entries(dtype, ("part",))
        _precompile.wait(dtype, "train")
        self._cpu.ensure_entries(dtype, ("gemm", "pack", "update"))
        args = self.epoch_args(np.arange(len(self.X), dtype=np.int64))
        self._cpu.epoch_driver().compile(tuple(numba.typeof(a) for a in args))
        self._ready = True

    def epoch(self, order):
        self.prepare()
        with _blas_threads(self.theta.dtype, self.n_parts):
            return self._cpu.train_epoch(*self.epoch_args(order))

    def predict(self, X):
        return predict_cpu(self.spec, self.theta, X)

    def snapshot(self):
        return (self.theta.copy(), self.opt.m.copy(), self.opt.v.copy(), self.opt.step.copy())

    def params_finite(self):
        return bool(np.isfinite(self.theta).all())

    def restore(self, token):
        theta, m, v, step = token
        self.theta[:] = theta
        self.opt.m[:] = m
        self.opt.v[:] = v
        self.opt.step[:] = step

    def finish(self):
        return self.theta, self.opt


def no_gpu_device_node():
    """True when this is Linux and no NVIDIA device node exists: no driver is loaded, so
    CUDA cannot be usable and importing numba-cuda (~0.5 s, ~40 MB) to find that out can
    be skipped. ``/dev/dxg`` is the GPU of WSL2."""
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return False
    return not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/dxg"))


def auto_is_cpu_without_asking():
    """True when ``device="auto"`` means the CPU without asking CUDA: Numba's simulator is
    on (never chosen automatically) or there is no NVIDIA device node."""
    from numba.core import config as numba_config

    return bool(numba_config.ENABLE_CUDASIM) or no_gpu_device_node()


def finite_float_sequences(X, n_features):
    """True when ``X`` is a plain float32/float64 ndarray ``(n >= 1, T >= 1, n_features)``
    with finite values: input the predict paths can take without scikit-learn's checks."""
    return (
        type(X) is np.ndarray
        and X.ndim == 3
        and X.dtype in (np.float32, np.float64)
        and X.shape[0] > 0
        and X.shape[1] > 0
        and X.shape[2] == n_features
        and bool(np.isfinite(X).all())
    )


@functools.lru_cache(maxsize=64)
def _layout(spec):
    # NetworkSpec is frozen (hashable); the tables are only ever read.
    return spec.layout()


def default_parts(batch_size):
    """Row slices per training batch: one part per sequence when that is at most
    ``config.MIN_PART_ROWS`` per Numba thread (one sequence runs as matrix-vector products,
    several pad to a whole vector of 8: see ``config.MIN_PART_ROWS``); otherwise one part
    per thread, or whole rounds of the threads when parts would be wider than
    ``config.MAX_PART_ROWS`` sequences."""
    import numba

    B = int(batch_size)
    threads = numba.get_num_threads()
    if B <= config.MIN_PART_ROWS * threads:
        return max(1, B)
    parts = max(threads, -(-B // config.MAX_PART_ROWS))
    return -(-parts // threads) * threads


def _blas_threads(dtype, workers):
    """One BLAS thread while ``workers`` > 1 threads each call BLAS (the float64 kernels):
    BLAS threads started inside parallel workers oversubscribe the cores. float32 does
    not call BLAS."""
    if workers <= 1 or np.dtype(dtype) != np.float64:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


_scratch = threading.local()


def _buffers(shape, dtype, key):
    """Zeroed work arrays kept per thread between calls of ``predict_cpu`` on small inputs
    (a single window: two allocations saved per call). Larger buffers are not kept."""
    cache = getattr(_scratch, "arrays", None)
    if cache is None:
        cache = _scratch.arrays = {}
    arr = cache.get(key)
    if arr is None or arr.shape != shape or arr.dtype != dtype:
        arr = np.zeros(shape, dtype)
        if arr.nbytes <= (1 << 20):
            cache[key] = arr
    return arr


def predict_cpu(spec, theta, X, chunk=None, n_workers=None):
    """Head output ``(N, n_outputs)`` of the network for ``X (N, T, F)`` on the CPU.

    ``chunk`` sequences go through the network together (default: ``N`` shared evenly by
    the workers, at most ``config.PREDICT_CHUNK``, or one sequence at a time when that is
    at most ``config.MIN_PART_ROWS`` sequences per worker); with more than one chunk they
    are spread over ``n_workers`` threads (default ``numba.get_num_threads()``), each with
    its own work buffer. Every row is computed by the same code whatever the number of
    workers for a given ``chunk``, so the output does not depend on ``n_workers`` then.
    (An even share, not chunks of 32: 16 windows take 1.4 ms on two threads instead of
    2.3 ms on one. One at a time for a few: a chunk of 2-8 sequences computes a whole
    vector of 8, ~0.8 ms for the seed network, against ~0.15 ms for one sequence, the
    matrix-vector path; as for training parts, ``engine.default_parts``.)
    """
    from . import cpu

    layout, head, n_params = _layout(spec)
    X = np.ascontiguousarray(X, dtype=theta.dtype)
    # The kernels read X and theta through raw addresses: shapes that do not match the
    # network would read past their ends, so they never get there.
    if X.ndim != 3 or X.shape[2] != spec.n_features or theta.shape != (n_params,):
        raise ValueError(f"X must have shape (N, T, {spec.n_features}) and theta "
                         f"({n_params},); got {X.shape} and {theta.shape}")  # fmt: skip
    n, T, F = X.shape
    out = np.empty((n, spec.n_outputs), theta.dtype)
    if n == 0:
        return out
    if n_workers is None and n > 1:  # (asking Numba costs ~5 us of a 150 us window)
        import numba

        n_workers = numba.get_num_threads()
    if not chunk:  # None (or 0, which meant the default before)
        share = -(-n // max(1, int(n_workers or 1)))
        chunk = 1 if share <= config.MIN_PART_ROWS else min(config.PREDICT_CHUNK, share)
    chunk = int(min(chunk, n))
    n_chunks = -(-n // chunk)
    P = max(1, min(int(n_workers or 1), n_chunks))
    pack, size = _predict_sizes(spec, T, chunk)
    dtype = theta.dtype
    wpack = _buffers((pack,), dtype, ("wpack", spec))
    if _precompile.pending(dtype, "predict") and cpu.entries_loaded(
        dtype, ("gemm", "part", "pack")
    ):
        # A cold process that has just fitted: the training entry point, forward only, gives
        # the same output now, while the helper is still compiling the prediction kernels.
        run = cpu.predict_by_parts
        size = _part_ws_size(layout, head, T, chunk)
        ws = np.zeros((size,) if P == 1 else (P, size), dtype)
    else:
        run = cpu.predict
        ws = _buffers((size,) if P == 1 else (P, size), dtype, ("ws", spec))
        _precompile.wait(dtype, "predict")
    with _blas_threads(dtype, P):
        run(theta, layout, head, spec.reset_after, X, chunk, out, wpack, ws)
    return out


@functools.lru_cache(maxsize=256)
def _predict_sizes(spec, T, chunk):
    # ~12 us of NumPy on tiny arrays per call otherwise: a tenth of a one-window predict.
    layout = _layout(spec)[0]
    return _pack_size(layout), _predict_ws_size(layout, T, chunk)


# Sizes of the work buffers, computed here as cpu.pack_size and cpu.predict_workspace_size
# do (benchmarks/test_bench_cpu.py checks that they agree), so that predicting calls no
# Numba dispatcher besides the kernel itself.
def _pack_size(layout):
    F, H = layout[:, 0].astype(np.int64), layout[:, 1].astype(np.int64)
    return int(np.sum(6 * F * H + 6 * H * H + 4 * H)) + _GUARD


def _part_ws_size(layout, head, T, B):
    # As cpu.part_workspace_size; in Python, so that a cold first fit compiles two kernels
    # fewer before the training entry point (~0.5 s). (padded_width's Python function: the
    # same code, not compiled.)
    from . import cpu

    Bv = cpu.padded_width.py_func(B)
    total = T * Bv * int(layout[0, 0]) + 3 * Bv * int(head[1]) + T * Bv + _GUARD
    for H in layout[:, 1].tolist():
        total += (T + 1) * Bv * H + 6 * T * Bv * H + 2 * Bv * H
    return int(total)


def _predict_ws_size(layout, T, B):
    from . import cpu

    Hmax = int(layout[:, 1].max())
    Bv = cpu.padded_width.py_func(B)
    return int(T * Bv * layout[0, 0] + 2 * (T + 1) * Bv * Hmax + 4 * T * Bv * Hmax) + _GUARD


_GUARD = 16


def loss_value(yhat, y, cfg):
    """The training loss of predictions ``yhat`` against ``y`` (float64)."""
    e = np.asarray(yhat, np.float64) - np.asarray(y, np.float64)
    if cfg.loss == "mse":
        return float(np.mean(e * e))
    if cfg.loss == "mae":
        return float(np.mean(np.abs(e)))
    a = np.abs(e)
    d = cfg.huber_delta
    return float(np.mean(np.where(a <= d, 0.5 * e * e, d * (a - 0.5 * d))))


def train(runner, cfg, rng, n_samples, X_val=None, y_val=None, on_epoch=None):
    """Run ``cfg.epochs`` epochs on ``runner``.

    Parameters
    ----------
    runner : CPURunner or CUDARunner
    cfg : TrainConfig
    rng : numpy.random.Generator
        Draws each epoch's shuffle; the same generator state gives the same fit.
    n_samples : int
        Number of training samples held by the runner.
    X_val, y_val : ndarray, optional
        Validation data, scored after every epoch with the training loss.
    on_epoch : callable, optional
        Called as ``on_epoch(epoch, history)`` after every epoch; returning ``True`` stops.

    Returns
    -------
    History
        Per-epoch losses. With early stopping the runner holds the best weights at the end
        (scored on the validation loss when given, else on the training loss); if the loss
        or the weights became non-finite, it holds the weights of the last finite epoch and
        ``history.diverged`` is set.
    """
    hist = History()
    use_val = X_val is not None and len(X_val) > 0
    best_token = None
    last_good = runner.snapshot()
    no_improve = 0
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        order = rng.permutation(n_samples) if cfg.shuffle else np.arange(n_samples)
        loss, bad = runner.epoch(order)
        # A finite loss and gradient can still overflow the weights in the epoch's last
        # update (every earlier one shows in the next batch's loss).
        if bad >= 0 or not np.isfinite(loss) or not runner.params_finite():
            runner.restore(last_good)
            hist.diverged = True
            break
        hist.loss.append(float(loss))
        score = float(loss)
        if use_val:
            val = loss_value(runner.predict(X_val), y_val, cfg)
            if not np.isfinite(val):
                runner.restore(last_good)
                hist.loss.pop()
                hist.diverged = True
                break
            hist.val_loss.append(val)
            score = val
        hist.seconds.append(time.perf_counter() - t0)
        last_good = runner.snapshot()
        no_improve = 0 if score < hist.best_loss - cfg.tol else no_improve + 1
        if score < hist.best_loss:
            hist.best_loss = score
            hist.best_epoch = epoch
            if cfg.early_stopping:
                best_token = last_good
        if on_epoch is not None and on_epoch(epoch, hist):
            break
        if cfg.early_stopping and no_improve >= cfg.n_iter_no_change:
            hist.stopped_early = True
            break
    if cfg.early_stopping and best_token is not None:
        runner.restore(best_token)
    return hist
