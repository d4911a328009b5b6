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

import time
from dataclasses import dataclass, field

import numpy as np

from . import config
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
    """Runner over the ``@njit`` kernels of :mod:`fastgru.cpu`."""

    def __init__(self, spec, theta, opt_state, cfg, X, y, T_max=None):
        from . import cpu

        self._cpu = cpu
        self.spec = spec
        self.cfg = cfg
        self.theta = theta
        self.opt = opt_state
        self.layout, self.head, _ = spec.layout()
        self.X = X
        self.y = y
        dtype = theta.dtype
        T = X.shape[1] if T_max is None else T_max
        B = cfg.batch_size
        # Work buffers for the whole fit, sized for the largest batch.
        self.ws = np.empty(cpu.workspace_size(self.layout, self.head, T, B), dtype)
        self.grad = np.zeros_like(theta)
        self.xbuf = np.empty(T * B * X.shape[2], dtype)
        self.ybuf = np.empty(B * y.shape[1], dtype)

    def epoch(self, order):
        c = self.cfg
        return self._cpu.train_epoch(
            self.theta, self.layout, self.head, self.spec.reset_after,
            config.LOSSES[c.loss], float(c.huber_delta), self.X, self.y,
            np.ascontiguousarray(order, dtype=np.int64), int(c.batch_size),
            config.OPTIMIZERS[c.optimizer], float(c.learning_rate), float(c.beta1),
            float(c.beta2), float(c.epsilon), float(c.momentum), bool(c.nesterov),
            float(c.clip_norm or 0.0), self.opt.m, self.opt.v, self.opt.step,
            self.ws, self.grad, self.xbuf, self.ybuf,
        )  # fmt: skip

    def predict(self, X):
        return predict_cpu(self.spec, self.theta, X)

    def snapshot(self):
        return (self.theta.copy(), self.opt.m.copy(), self.opt.v.copy(), self.opt.step.copy())

    def restore(self, token):
        theta, m, v, step = token
        self.theta[:] = theta
        self.opt.m[:] = m
        self.opt.v[:] = v
        self.opt.step[:] = step

    def finish(self):
        return self.theta, self.opt


def predict_cpu(spec, theta, X, chunk=None):
    """Head output ``(N, n_outputs)`` of the network for ``X (N, T, F)`` on the CPU."""
    from . import cpu

    layout, head, _ = spec.layout()
    X = np.ascontiguousarray(X, dtype=theta.dtype)
    n, T, F = X.shape
    chunk = int(min(chunk or config.PREDICT_CHUNK, max(n, 1)))
    out = np.empty((n, spec.n_outputs), theta.dtype)
    if n == 0:
        return out
    ws = np.empty(cpu.workspace_size(layout, head, T, chunk), theta.dtype)
    xbuf = np.empty(T * chunk * F, theta.dtype)
    cpu.predict(theta, layout, head, spec.reset_after, X, chunk, out, ws, xbuf)
    return out


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
        became non-finite, it holds the weights of the last finite epoch and
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
        if bad >= 0 or not np.isfinite(loss):
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
