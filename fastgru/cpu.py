"""CPU kernels (``@njit``): GRU forward and backpropagation through time, the dense head,
the losses, gradient clipping, the optimizers and a whole training epoch.

Gate equations (gate order r, z, n everywhere; ``x`` is the layer input at step t, ``h``
the previous hidden state, row vectors, ``*`` elementwise):

Seed convention (``reset_after=False``, Cho et al. 2014; Keras ``reset_after=False``)::

    r  = sigmoid(x W_r + h U_r + b_r)
    z  = sigmoid(x W_z + h U_z + b_z)
    n  = tanh(x W_n + (r * h) U_n + b_n)
    h' = (1 - z) * h + z * n

Reset-after convention (``reset_after=True``; cuDNN, PyTorch, Keras' default)::

    r  = sigmoid(x W_r + b_r + h U_r + bh_r)
    z  = sigmoid(x W_z + b_z + h U_z + bh_z)
    n  = tanh(x W_n + b_n + r * (h U_n + bh_n))
    h' = (1 - z) * h + z * n

(PyTorch and Keras write the update as ``z * h + (1 - z) * n``: their ``z`` is our
``1 - z``, i.e. the same model with the z-gate weights and biases negated; ``interop``
does that conversion.)

Inside the kernels arrays are time-major, ``(T, B, F)``, so that the slice of one step is a
contiguous ``(B, F)`` matrix. The input projections of all steps are one matrix product
before the time loop; each step does one recurrent product per gate block; the backward
pass stores the per-step gate gradients and forms every weight gradient with one matrix
product after the loop. There is no parallel loop here, so results are bit-for-bit
deterministic.

Work arrays come from one flat buffer allocated once per fit (``workspace_size``):
allocating megabytes per mini-batch made glibc return and re-fault pages.
"""

import math

import numpy as np
from numba import njit

from . import _math
from .config import NJIT_OPTIONS
from .params import B_N, B_RZ, BH_N, BH_RZ, F_, H_, U_N, U_RZ, W_N, W_RZ

sigmoid = njit(inline="always", **NJIT_OPTIONS)(_math.sigmoid)
tanh = njit(inline="always", **NJIT_OPTIONS)(_math.tanh)


# --------------------------------------------------------------------------------------
# One GRU layer
# --------------------------------------------------------------------------------------
@njit(**NJIT_OPTIONS)
def gru_forward(X, h0, W_rz, W_n, U_rz, U_n, b_rz, b_n, bh_rz, bh_n, reset_after,
                Hs, RZ, N, AUX, XP_rz, XP_n):  # fmt: skip
    """Forward pass of one GRU layer over a time-major batch.

    Parameters
    ----------
    X : (T, B, F) input sequence.
    h0 : (B, H) initial state (may be ``Hs[0]`` itself).
    W_rz, W_n, U_rz, U_n, b_rz, b_n, bh_rz, bh_n : parameter blocks (see ``params``);
        ``bh_*`` are ignored unless ``reset_after``.
    reset_after : bool, gate convention.
    Hs : (T + 1, B, H) out: ``Hs[0] = h0``, ``Hs[t + 1]`` the state after step t.
    RZ : (T, B, 2H) out: gates r and z.
    N : (T, B, H) out: candidate n.
    AUX : (T, B, H) out: ``r * h`` (seed) or ``h U_n + bh_n`` (reset-after), kept for BPTT.
    XP_rz, XP_n : (T, B, 2H), (T, B, H) work: input projections.
    """
    T, B, F = X.shape
    H = h0.shape[1]
    H2 = 2 * H
    X2 = X.reshape((T * B, F))
    XP_rz2 = XP_rz.reshape((T * B, H2))
    XP_n2 = XP_n.reshape((T * B, H))
    np.dot(X2, W_rz, XP_rz2)
    np.dot(X2, W_n, XP_n2)
    for k in range(T * B):
        for j in range(H2):
            XP_rz2[k, j] += b_rz[j]
        for j in range(H):
            XP_n2[k, j] += b_n[j]
    if reset_after:
        # The recurrent r/z bias is constant over time: fold it into the projection.
        for k in range(T * B):
            for j in range(H2):
                XP_rz2[k, j] += bh_rz[j]
    Hs[0] = h0
    for t in range(T):
        h = Hs[t]
        rz = RZ[t]
        xrz = XP_rz[t]
        xn = XP_n[t]
        n = N[t]
        aux = AUX[t]
        hnext = Hs[t + 1]
        np.dot(h, U_rz, rz)
        for i in range(B):
            for j in range(H2):
                rz[i, j] = sigmoid(rz[i, j] + xrz[i, j])
        if reset_after:
            np.dot(h, U_n, aux)
            for i in range(B):
                for j in range(H):
                    hn = aux[i, j] + bh_n[j]
                    aux[i, j] = hn
                    nn = tanh(xn[i, j] + rz[i, j] * hn)
                    n[i, j] = nn
                    hnext[i, j] = h[i, j] + rz[i, H + j] * (nn - h[i, j])
        else:
            for i in range(B):
                for j in range(H):
                    aux[i, j] = rz[i, j] * h[i, j]
            np.dot(aux, U_n, n)
            for i in range(B):
                for j in range(H):
                    nn = tanh(n[i, j] + xn[i, j])
                    n[i, j] = nn
                    hnext[i, j] = h[i, j] + rz[i, H + j] * (nn - h[i, j])


@njit(**NJIT_OPTIONS)
def gru_backward(X, Hs, RZ, N, AUX, W_rz, W_n, U_rz, U_n, reset_after, dY,
                 DA_rz, DA_n, DHN, dh, tmp, DXT,
                 gW_rz, gW_n, gU_rz, gU_n, gb_rz, gb_n, gbh_rz, gbh_n, dX, need_dx):  # fmt: skip
    """Backpropagation through time for one GRU layer.

    Parameters
    ----------
    X, Hs, RZ, N, AUX : the forward pass's input and saved arrays.
    W_rz, W_n, U_rz, U_n : parameter blocks.
    reset_after : bool.
    dY : (T, B, H) gradient of the loss with respect to ``Hs[1:]``.
    DA_rz, DA_n, DHN : (T, B, 2H), (T, B, H), (T, B, H) work (may alias the forward's
        ``XP_rz``/``XP_n``, which are dead by now).
    dh : (B, H) out: the gradient with respect to ``h0``.
    tmp : (B, H) work.
    DXT : (T, B, F) work, used when ``need_dx``.
    gW_rz ... gbh_n : out: parameter gradients (overwritten; ``gbh_*`` only when
        ``reset_after``).
    dX : (T, B, F) out: gradient with respect to ``X`` when ``need_dx``.
    """
    T, B, F = X.shape
    H = dh.shape[1]
    H2 = 2 * H
    dh[:] = 0.0
    for t in range(T - 1, -1, -1):
        h = Hs[t]
        rz = RZ[t]
        n = N[t]
        aux = AUX[t]
        dy = dY[t]
        darz = DA_rz[t]
        dan = DA_n[t]
        for i in range(B):
            for j in range(H):
                g = dh[i, j] + dy[i, j]
                z = rz[i, H + j]
                nn = n[i, j]
                dan[i, j] = g * z * (1.0 - nn * nn)
                darz[i, H + j] = g * (nn - h[i, j]) * z * (1.0 - z)
                dh[i, j] = g * (1.0 - z)
        if reset_after:
            dhn = DHN[t]
            for i in range(B):
                for j in range(H):
                    r = rz[i, j]
                    darz[i, j] = dan[i, j] * aux[i, j] * r * (1.0 - r)
                    dhn[i, j] = dan[i, j] * r
            np.dot(dhn, U_n.T, tmp)
            for i in range(B):
                for j in range(H):
                    dh[i, j] += tmp[i, j]
        else:
            np.dot(dan, U_n.T, tmp)  # gradient with respect to r * h
            for i in range(B):
                for j in range(H):
                    r = rz[i, j]
                    darz[i, j] = tmp[i, j] * h[i, j] * r * (1.0 - r)
                    dh[i, j] += tmp[i, j] * r
        np.dot(darz, U_rz.T, tmp)
        for i in range(B):
            for j in range(H):
                dh[i, j] += tmp[i, j]

    TB = T * B
    DA_rz2 = DA_rz.reshape((TB, H2))
    DA_n2 = DA_n.reshape((TB, H))
    Hprev2 = Hs[:T].reshape((TB, H))
    X2 = X.reshape((TB, F))
    np.dot(Hprev2.T, DA_rz2, gU_rz)
    if reset_after:
        DHN2 = DHN.reshape((TB, H))
        np.dot(Hprev2.T, DHN2, gU_n)
        _colsum(DHN2, gbh_n)
    else:
        np.dot(AUX.reshape((TB, H)).T, DA_n2, gU_n)
    np.dot(X2.T, DA_rz2, gW_rz)
    np.dot(X2.T, DA_n2, gW_n)
    _colsum(DA_rz2, gb_rz)
    _colsum(DA_n2, gb_n)
    if reset_after:
        gbh_rz[:] = gb_rz
    if need_dx:
        dX2 = dX.reshape((TB, F))
        DXT2 = DXT.reshape((TB, F))
        np.dot(DA_rz2, W_rz.T, dX2)
        np.dot(DA_n2, W_n.T, DXT2)
        for k in range(TB):
            for j in range(F):
                dX2[k, j] += DXT2[k, j]


@njit(**NJIT_OPTIONS)
def _colsum(A, out):
    # Sum in the array's dtype, row by row: a fixed order, so the result is deterministic.
    out[:] = 0.0
    for k in range(A.shape[0]):
        for j in range(A.shape[1]):
            out[j] += A[k, j]


# --------------------------------------------------------------------------------------
# Loss
# --------------------------------------------------------------------------------------
@njit(**NJIT_OPTIONS)
def loss_and_grad(yhat, y, loss_kind, delta, dyhat):
    """Mean loss over all ``B * O`` entries and its gradient with respect to ``yhat``.

    ``loss_kind``: 0 mean squared error, 1 mean absolute error, 2 Huber with threshold
    ``delta`` (``0.5 e^2`` for ``|e| <= delta``, else ``delta (|e| - delta / 2)``, as Keras).
    The sum is accumulated in float64.
    """
    B, O = yhat.shape
    inv = 1.0 / (B * O)
    total = 0.0
    for i in range(B):
        for j in range(O):
            e = float(yhat[i, j]) - float(y[i, j])
            if loss_kind == 0:
                total += e * e
                dyhat[i, j] = 2.0 * e * inv
            elif loss_kind == 1:
                total += abs(e)
                dyhat[i, j] = (1.0 if e > 0 else (-1.0 if e < 0 else 0.0)) * inv
            else:
                a = abs(e)
                if a <= delta:
                    total += 0.5 * e * e
                    dyhat[i, j] = e * inv
                else:
                    total += delta * (a - 0.5 * delta)
                    dyhat[i, j] = (delta if e > 0 else -delta) * inv
    return total * inv


# --------------------------------------------------------------------------------------
# The network: carving views out of theta and out of the work buffer
# --------------------------------------------------------------------------------------
@njit(**NJIT_OPTIONS)
def layer_params(theta, layout, l, reset_after):
    """Views of layer ``l``'s parameter blocks in ``theta`` (or in a gradient vector)."""
    F = layout[l, F_]
    H = layout[l, H_]
    W_rz = theta[layout[l, W_RZ] : layout[l, W_RZ] + F * 2 * H].reshape((F, 2 * H))
    W_n = theta[layout[l, W_N] : layout[l, W_N] + F * H].reshape((F, H))
    U_rz = theta[layout[l, U_RZ] : layout[l, U_RZ] + H * 2 * H].reshape((H, 2 * H))
    U_n = theta[layout[l, U_N] : layout[l, U_N] + H * H].reshape((H, H))
    b_rz = theta[layout[l, B_RZ] : layout[l, B_RZ] + 2 * H]
    b_n = theta[layout[l, B_N] : layout[l, B_N] + H]
    if reset_after:
        bh_rz = theta[layout[l, BH_RZ] : layout[l, BH_RZ] + 2 * H]
        bh_n = theta[layout[l, BH_N] : layout[l, BH_N] + H]
    else:
        bh_rz = theta[0:0]
        bh_n = theta[0:0]
    return W_rz, W_n, U_rz, U_n, b_rz, b_n, bh_rz, bh_n


@njit(**NJIT_OPTIONS)
def head_params(theta, head):
    Hl = head[0]
    O = head[1]
    W = theta[head[2] : head[2] + Hl * O].reshape((Hl, O))
    b = theta[head[3] : head[3] + O]
    return W, b


@njit(**NJIT_OPTIONS)
def _take(ws, off, a, b, c):
    return ws[off : off + a * b * c].reshape((a, b, c)), off + a * b * c


@njit(**NJIT_OPTIONS)
def layer_workspace_size(T, B, F, H):
    return (T + 1) * B * H + 9 * T * B * H + T * B * F + 2 * B * H


@njit(**NJIT_OPTIONS)
def workspace_size(layout, head, T, B):
    """Length of the flat work buffer for batches of up to ``B`` sequences of ``T`` steps."""
    total = 0
    for l in range(layout.shape[0]):
        total += layer_workspace_size(T, B, layout[l, F_], layout[l, H_])
    return total + 2 * B * head[1]


@njit(**NJIT_OPTIONS)
def _layer_views(ws, off, T, B, F, H):
    Hs, off = _take(ws, off, T + 1, B, H)
    RZ, off = _take(ws, off, T, B, 2 * H)
    N, off = _take(ws, off, T, B, H)
    AUX, off = _take(ws, off, T, B, H)
    XP_rz, off = _take(ws, off, T, B, 2 * H)
    XP_n, off = _take(ws, off, T, B, H)
    DHN, off = _take(ws, off, T, B, H)
    dY, off = _take(ws, off, T, B, H)
    DXT, off = _take(ws, off, T, B, F)
    dh, off = _take(ws, off, 1, B, H)
    tmp, off = _take(ws, off, 1, B, H)
    return Hs, RZ, N, AUX, XP_rz, XP_n, DHN, dY, DXT, dh[0], tmp[0], off


@njit(**NJIT_OPTIONS)
def network_forward(theta, layout, head, reset_after, Xb, ws, offs):
    """Forward pass of the whole network on a time-major batch ``Xb (T, B, F)``.

    Writes each layer's saved arrays into ``ws`` (layer ``l`` at ``offs[l]``) and returns the
    head's output ``yhat (B, n_outputs)``, a view into ``ws``. Initial states are zero.
    """
    T, B, _ = Xb.shape
    L = layout.shape[0]
    off = 0
    inp = Xb
    for l in range(L):
        offs[l] = off
        F = layout[l, F_]
        H = layout[l, H_]
        Hs, RZ, N, AUX, XP_rz, XP_n, _, _, _, _, _, off = _layer_views(ws, off, T, B, F, H)
        W_rz, W_n, U_rz, U_n, b_rz, b_n, bh_rz, bh_n = layer_params(theta, layout, l, reset_after)
        Hs[0] = 0.0
        gru_forward(inp, Hs[0], W_rz, W_n, U_rz, U_n, b_rz, b_n, bh_rz, bh_n, reset_after,
                    Hs, RZ, N, AUX, XP_rz, XP_n)  # fmt: skip
        inp = Hs[1:]
    offs[L] = off
    O = head[1]
    Wo, bo = head_params(theta, head)
    yh, off = _take(ws, off, 1, B, O)
    yhat = yh[0]
    np.dot(inp[T - 1], Wo, yhat)
    for i in range(B):
        for j in range(O):
            yhat[i, j] += bo[j]
    return yhat


@njit(**NJIT_OPTIONS)
def network_loss_grad(theta, layout, head, reset_after, Xb, yb, loss_kind, delta, ws, grad):
    """Loss of the network on one batch and its gradient with respect to ``theta``
    (written into ``grad``, which has ``theta``'s layout)."""
    T, B, _ = Xb.shape
    L = layout.shape[0]
    offs = np.empty(L + 1, dtype=np.int64)
    yhat = network_forward(theta, layout, head, reset_after, Xb, ws, offs)
    O = head[1]
    dyh, _ = _take(ws, offs[L] + B * O, 1, B, O)
    dyhat = dyh[0]
    loss = loss_and_grad(yhat, yb, loss_kind, delta, dyhat)

    # Head: only the last step of the top layer feeds it.
    Htop = layout[L - 1, H_]
    Hs_top, _, _, _, _, _, _, dY_top, _, _, _, _ = _layer_views(
        ws, offs[L - 1], T, B, layout[L - 1, F_], Htop
    )
    Wo, _ = head_params(theta, head)
    gWo, gbo = head_params(grad, head)
    np.dot(Hs_top[T].T, dyhat, gWo)
    _colsum(dyhat, gbo)
    dY_top[: T - 1] = 0.0
    np.dot(dyhat, Wo.T, dY_top[T - 1])

    for l in range(L - 1, -1, -1):
        F = layout[l, F_]
        H = layout[l, H_]
        Hs, RZ, N, AUX, XP_rz, XP_n, DHN, dY, DXT, dh, tmp, _ = _layer_views(
            ws, offs[l], T, B, F, H
        )
        if l > 0:
            below = _layer_views(ws, offs[l - 1], T, B, layout[l - 1, F_], layout[l - 1, H_])
            X = below[0][1:]
            dX = below[7]
        else:
            X = Xb
            dX = DXT  # unused
        W_rz, W_n, U_rz, U_n, _, _, _, _ = layer_params(theta, layout, l, reset_after)
        gW_rz, gW_n, gU_rz, gU_n, gb_rz, gb_n, gbh_rz, gbh_n = layer_params(
            grad, layout, l, reset_after
        )
        gru_backward(X, Hs, RZ, N, AUX, W_rz, W_n, U_rz, U_n, reset_after, dY,
                     XP_rz, XP_n, DHN, dh, tmp, DXT,
                     gW_rz, gW_n, gU_rz, gU_n, gb_rz, gb_n, gbh_rz, gbh_n, dX, l > 0)  # fmt: skip
    return loss


# --------------------------------------------------------------------------------------
# Clipping and optimizers
# --------------------------------------------------------------------------------------
@njit(**NJIT_OPTIONS)
def global_norm(g):
    s = 0.0
    for i in range(g.shape[0]):
        s += float(g[i]) * float(g[i])
    return math.sqrt(s)


@njit(**NJIT_OPTIONS)
def clip_scale(norm, clip_norm):
    """Factor that brings the gradient's global norm down to ``clip_norm`` (1 if within)."""
    if clip_norm > 0.0 and norm > clip_norm:
        return clip_norm / norm
    return 1.0


@njit(**NJIT_OPTIONS)
def adam_update(theta, grad, m, v, step, lr, beta1, beta2, eps, scale):
    """One fused Adam step (Keras' form: ``eps`` added to ``sqrt(v)``, bias correction folded
    into the step size) on the gradient ``grad * scale``; ``step`` counts from 1."""
    alpha = lr * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
    for i in range(theta.shape[0]):
        g = grad[i] * scale
        m[i] = beta1 * m[i] + (1.0 - beta1) * g
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g
        theta[i] -= alpha * m[i] / (math.sqrt(v[i]) + eps)


@njit(**NJIT_OPTIONS)
def sgd_update(theta, grad, velocity, lr, momentum, nesterov, scale):
    """One fused SGD step with momentum (Keras' form): ``velocity = momentum * velocity -
    lr * g``; ``theta += velocity``, or ``momentum * velocity - lr * g`` with Nesterov."""
    for i in range(theta.shape[0]):
        g = grad[i] * scale
        vel = momentum * velocity[i] - lr * g
        velocity[i] = vel
        if nesterov:
            theta[i] += momentum * vel - lr * g
        else:
            theta[i] += vel


# --------------------------------------------------------------------------------------
# Whole epoch and prediction
# --------------------------------------------------------------------------------------
@njit(**NJIT_OPTIONS)
def _gather(X, order, start, B, xb):
    T = X.shape[1]
    F = X.shape[2]
    for i in range(B):
        s = order[start + i]
        for t in range(T):
            for f in range(F):
                xb[t, i, f] = X[s, t, f]


@njit(**NJIT_OPTIONS)
def train_epoch(theta, layout, head, reset_after, loss_kind, delta, X, y, order, batch_size,
                opt_kind, lr, beta1, beta2, eps, momentum, nesterov, clip_norm,
                m, v, step, ws, grad, xbuf, ybuf):  # fmt: skip
    """Train one epoch: every mini-batch of ``order`` (forward, loss, BPTT, clipping, update).

    ``X (N, T, F)`` and ``y (N, O)`` are sample-major; each batch is gathered time-major into
    ``xbuf``. ``step`` is a one-element int64 array, the optimizer's step counter.
    ``opt_kind``: 0 Adam (``m``, ``v`` its moments), 1 SGD (``m`` the velocity).

    Returns ``(mean_loss, bad_batch_start)``: the sample-weighted mean of the batch losses,
    and ``-1``, or the first sample index of a batch whose loss or gradient was not finite;
    training stops there without applying that batch's update.
    """
    n = order.shape[0]
    T = X.shape[1]
    F = X.shape[2]
    O = y.shape[1]
    total = 0.0
    for s in range(0, n, batch_size):
        B = min(batch_size, n - s)
        xb = xbuf[: T * B * F].reshape((T, B, F))
        yb = ybuf[: B * O].reshape((B, O))
        _gather(X, order, s, B, xb)
        for i in range(B):
            for j in range(O):
                yb[i, j] = y[order[s + i], j]
        loss = network_loss_grad(theta, layout, head, reset_after, xb, yb, loss_kind, delta,
                                 ws, grad)  # fmt: skip
        norm = global_norm(grad)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            return total / max(s, 1), s
        scale = clip_scale(norm, clip_norm)
        step[0] += 1
        if opt_kind == 0:
            adam_update(theta, grad, m, v, step[0], lr, beta1, beta2, eps, scale)
        else:
            sgd_update(theta, grad, m, lr, momentum, nesterov, scale)
        total += loss * B
    return total / n, -1


@njit(**NJIT_OPTIONS)
def predict(theta, layout, head, reset_after, X, chunk, out, ws, xbuf):
    """Head output for every sequence of ``X (N, T, F)`` into ``out (N, O)``, ``chunk``
    sequences at a time."""
    n = X.shape[0]
    T = X.shape[1]
    F = X.shape[2]
    O = head[1]
    order = np.arange(n)
    offs = np.empty(layout.shape[0] + 1, dtype=np.int64)
    for s in range(0, n, chunk):
        B = min(chunk, n - s)
        xb = xbuf[: T * B * F].reshape((T, B, F))
        _gather(X, order, s, B, xb)
        yhat = network_forward(theta, layout, head, reset_after, xb, ws, offs)
        for i in range(B):
            for j in range(O):
                out[s + i, j] = yhat[i, j]


# --------------------------------------------------------------------------------------
# Convenience wrappers over one layer (batch-major, canonical parameters)
# --------------------------------------------------------------------------------------
def _split_layer(params, H, dtype, reset_after):
    W = np.ascontiguousarray(params["W"], dtype=dtype)
    U = np.ascontiguousarray(params["U"], dtype=dtype)
    b = np.ascontiguousarray(params["b"], dtype=dtype)
    if reset_after:
        bh = np.ascontiguousarray(params["bh"], dtype=dtype)
    else:
        bh = np.zeros(3 * H, dtype=dtype)
    c = np.ascontiguousarray
    return (c(W[:, : 2 * H]), c(W[:, 2 * H :]), c(U[:, : 2 * H]), c(U[:, 2 * H :]),
            c(b[: 2 * H]), c(b[2 * H :]), c(bh[: 2 * H]), c(bh[2 * H :]))  # fmt: skip


def layer_forward(X, h0, params, reset_after=False):
    """Run one GRU layer on a batch.

    Parameters
    ----------
    X : ndarray of shape (B, T, F), float32 or float64
    h0 : ndarray of shape (B, H)
    params : dict
        Canonical parameters ``W (F, 3H)``, ``U (H, 3H)``, ``b (3H,)`` and, with
        ``reset_after``, ``bh (3H,)``; gate order r, z, n.
    reset_after : bool

    Returns
    -------
    H_seq : ndarray of shape (B, T, H)
        The hidden state after every step.
    cache : dict
        What :func:`layer_backward` needs.
    """
    X = np.asarray(X)
    dtype = X.dtype
    B, T, F = X.shape
    H = h0.shape[1]
    blocks = _split_layer(params, H, dtype, reset_after)
    Xt = np.ascontiguousarray(X.transpose(1, 0, 2))
    Hs = np.empty((T + 1, B, H), dtype)
    RZ = np.empty((T, B, 2 * H), dtype)
    N = np.empty((T, B, H), dtype)
    AUX = np.empty((T, B, H), dtype)
    XP_rz = np.empty((T, B, 2 * H), dtype)
    XP_n = np.empty((T, B, H), dtype)
    gru_forward(Xt, np.ascontiguousarray(h0, dtype=dtype), *blocks, reset_after,
                Hs, RZ, N, AUX, XP_rz, XP_n)  # fmt: skip
    cache = {"Xt": Xt, "Hs": Hs, "RZ": RZ, "N": N, "AUX": AUX, "blocks": blocks,
             "reset_after": reset_after}  # fmt: skip
    return Hs[1:].transpose(1, 0, 2).copy(), cache


def layer_backward(cache, dH_seq):
    """Backpropagation through time for one layer.

    Parameters
    ----------
    cache : dict from :func:`layer_forward`
    dH_seq : ndarray of shape (B, T, H)
        Gradient of the loss with respect to every hidden state the forward returned.

    Returns
    -------
    dict
        ``W``, ``U``, ``b``, ``bh`` (``None`` unless reset-after): parameter gradients in
        canonical form; ``X`` (B, T, F) and ``h0`` (B, H): input and initial-state gradients.
    """
    Xt, Hs, RZ, N, AUX = cache["Xt"], cache["Hs"], cache["RZ"], cache["N"], cache["AUX"]
    W_rz, W_n, U_rz, U_n = cache["blocks"][:4]
    ra = cache["reset_after"]
    dtype = Xt.dtype
    T, B, F = Xt.shape
    H = Hs.shape[2]
    dY = np.ascontiguousarray(np.asarray(dH_seq, dtype=dtype).transpose(1, 0, 2))
    e = np.empty
    DA_rz, DA_n, DHN = e((T, B, 2 * H), dtype), e((T, B, H), dtype), e((T, B, H), dtype)
    dh, tmp, DXT, dX = e((B, H), dtype), e((B, H), dtype), e((T, B, F), dtype), e((T, B, F), dtype)
    g = [e((F, 2 * H), dtype), e((F, H), dtype), e((H, 2 * H), dtype), e((H, H), dtype),
         e(2 * H, dtype), e(H, dtype), e(2 * H, dtype), e(H, dtype)]  # fmt: skip
    gru_backward(Xt, Hs, RZ, N, AUX, W_rz, W_n, U_rz, U_n, ra, dY, DA_rz, DA_n, DHN, dh, tmp,
                 DXT, *g, dX, True)  # fmt: skip
    return {
        "W": np.concatenate([g[0], g[1]], axis=1),
        "U": np.concatenate([g[2], g[3]], axis=1),
        "b": np.concatenate([g[4], g[5]]),
        "bh": np.concatenate([g[6], g[7]]) if ra else None,
        "X": dX.transpose(1, 0, 2).copy(),
        "h0": dh.copy(),
    }
