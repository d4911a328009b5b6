"""The slow, obvious NumPy float64 oracle every kernel (CPU and CUDA) is checked against.

Written independently of the kernels: batch-major, canonical parameters (gate order r, z, n;
``W (F, 3H)``, ``U (H, 3H)``, ``b``, ``bh``), one time step at a time, the equations exactly
as the ``fastgru.cpu`` module docstring states them.
"""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def gru_layer(X, h0, p, reset_after):
    """Hidden states ``(B, T, H)`` of one GRU layer."""
    X = np.asarray(X, np.float64)
    h = np.asarray(h0, np.float64).copy()
    W, U, b = (np.asarray(p[k], np.float64) for k in ("W", "U", "b"))
    H = h.shape[1]
    Wr, Wz, Wn = W[:, :H], W[:, H : 2 * H], W[:, 2 * H :]
    Ur, Uz, Un = U[:, :H], U[:, H : 2 * H], U[:, 2 * H :]
    br, bz, bn = b[:H], b[H : 2 * H], b[2 * H :]
    if reset_after:
        bh = np.asarray(p["bh"], np.float64)
        bhr, bhz, bhn = bh[:H], bh[H : 2 * H], bh[2 * H :]
    out = []
    for t in range(X.shape[1]):
        x = X[:, t, :]
        if reset_after:
            r = sigmoid(x @ Wr + br + h @ Ur + bhr)
            z = sigmoid(x @ Wz + bz + h @ Uz + bhz)
            n = np.tanh(x @ Wn + bn + r * (h @ Un + bhn))
        else:
            r = sigmoid(x @ Wr + h @ Ur + br)
            z = sigmoid(x @ Wz + h @ Uz + bz)
            n = np.tanh(x @ Wn + (r * h) @ Un + bn)
        h = (1.0 - z) * h + z * n
        out.append(h)
    return np.stack(out, axis=1)


def network(X, layers, head, reset_after):
    """Head output ``(B, O)`` of a stack of GRU layers (zero initial states)."""
    seq = np.asarray(X, np.float64)
    for p in layers:
        H = np.asarray(p["U"]).shape[0]
        seq = gru_layer(seq, np.zeros((seq.shape[0], H)), p, reset_after)
    return seq[:, -1, :] @ np.asarray(head["W"], np.float64) + np.asarray(head["b"], np.float64)


def loss(yhat, y, kind, delta=1.0):
    e = np.asarray(yhat, np.float64) - np.asarray(y, np.float64)
    if kind == "mse":
        return np.mean(e**2)
    if kind == "mae":
        return np.mean(np.abs(e))
    a = np.abs(e)
    return np.mean(np.where(a <= delta, 0.5 * e**2, delta * (a - 0.5 * delta)))


def adam(theta, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-7):
    """One Keras-form Adam step; returns new ``(theta, m, v)``."""
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    alpha = lr * np.sqrt(1 - beta2**step) / (1 - beta1**step)
    return theta - alpha * m / (np.sqrt(v) + eps), m, v


def sgd(theta, grad, vel, lr, momentum, nesterov):
    vel = momentum * vel - lr * grad
    step = momentum * vel - lr * grad if nesterov else vel
    return theta + step, vel


# ------------------------------------------------------------------ comparison helpers
def rel_err(a, b):
    """Largest absolute difference relative to the largest magnitude of ``b``."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def central_diff(f, x, eps=1e-6):
    """Central finite-difference gradient of ``f()`` with respect to the array ``x``,
    perturbed in place element by element."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        fp = f()
        x[idx] = old - eps
        fm = f()
        x[idx] = old
        g[idx] = (fp - fm) / (2 * eps)
    return g
