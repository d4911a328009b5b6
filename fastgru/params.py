"""Parameter layout of a stacked GRU network with a dense head.

All parameters of a network live in one flat, contiguous vector ``theta``. The kernels
carve contiguous views out of it, the optimizers update it in one fused pass, and gradient
clipping takes one norm over it. A small integer table, the *layout*, says where each block
starts.

Per GRU layer ``l`` with ``F`` inputs and ``H`` units, in this order:

==========  ===========  ====================================================
block       shape        meaning
==========  ===========  ====================================================
``W_rz``    ``(F, 2H)``  input weights of the reset (r) and update (z) gates
``W_n``     ``(F, H)``   input weights of the candidate (n, h-tilde)
``U_rz``    ``(H, 2H)``  recurrent weights of r and z
``U_n``     ``(H, H)``   recurrent weights of the candidate
``b_rz``    ``(2H,)``    input bias of r and z
``b_n``     ``(H,)``     input bias of the candidate
``bh_rz``   ``(2H,)``    recurrent bias of r and z (``reset_after`` only)
``bh_n``    ``(H,)``     recurrent bias of the candidate (``reset_after`` only)
==========  ===========  ====================================================

then the head: ``W_out (H_last, n_outputs)`` and ``b_out (n_outputs,)``.

Splitting the gate blocks into ``rz`` and ``n`` keeps every operand of every matrix product
contiguous: the seed convention needs ``r`` before it can form the candidate's recurrent
product, so the two blocks are multiplied separately anyway.

The *canonical* form handed to users and to the interop code joins the blocks in gate order
``r, z, n``: ``W (F, 3H)``, ``U (H, 3H)``, ``b (3H,)`` and ``bh (3H,)`` (or ``None``).
"""

from dataclasses import dataclass

import numpy as np

# Columns of a layout row.
F_, H_, W_RZ, W_N, U_RZ, U_N, B_RZ, B_N, BH_RZ, BH_N = range(10)
LAYOUT_WIDTH = 10


@dataclass(frozen=True)
class NetworkSpec:
    """Shape of a network: inputs, GRU widths, outputs, gate convention and dtype.

    Parameters
    ----------
    n_features : int
        Number of input features per time step.
    units : tuple of int
        Hidden units of each stacked GRU layer, bottom first.
    n_outputs : int
        Width of the dense head (1 for a one-step forecast, ``horizon`` for direct
        multi-step forecasts).
    reset_after : bool
        ``False``: the reset gate multiplies ``h`` before the recurrent product (Cho et
        al. 2014; the seed). ``True``: it multiplies ``U_n h + bh_n`` (cuDNN, PyTorch,
        Keras' default); this convention has a second, recurrent bias.
    dtype : str
        ``"float32"`` or ``"float64"``.
    """

    n_features: int
    units: tuple
    n_outputs: int = 1
    reset_after: bool = False
    dtype: str = "float32"

    def layout(self):
        """Return ``(layout, head, n_params)``: the int64 offset table of the GRU layers
        (shape ``(n_layers, 10)``), the head's ``[H, n_outputs, off_W, off_b]`` and the
        length of ``theta``."""
        rows = []
        off = 0
        f = self.n_features
        for h in self.units:
            row = [f, h]
            sizes = [f * 2 * h, f * h, h * 2 * h, h * h, 2 * h, h]
            sizes += [2 * h, h] if self.reset_after else [0, 0]
            for s in sizes:
                row.append(off)
                off += s
            rows.append(row)
            f = h
        head = [f, self.n_outputs, off, off + f * self.n_outputs]
        off += f * self.n_outputs + self.n_outputs
        return (
            np.array(rows, dtype=np.int64).reshape(-1, LAYOUT_WIDTH),
            np.array(head, dtype=np.int64),
            off,
        )

    @property
    def n_params(self):
        return self.layout()[2]


def _glorot_uniform(rng, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def _orthogonal(rng, rows, cols):
    # As Keras' Orthogonal initializer: QR of a normal matrix, signs fixed by diag(R).
    flat = (rows, cols) if rows >= cols else (cols, rows)
    a = rng.normal(0.0, 1.0, size=flat)
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    return q if rows >= cols else q.T


def init_params(spec, rng):
    """Draw initial parameters as Keras does: Glorot-uniform input and head weights,
    orthogonal recurrent weights, zero biases.

    Parameters
    ----------
    spec : NetworkSpec
    rng : numpy.random.Generator

    Returns
    -------
    theta : ndarray of shape (spec.n_params,)
    """
    layers = []
    f = spec.n_features
    for h in spec.units:
        layers.append(
            {
                "W": _glorot_uniform(rng, f, 3 * h),
                "U": _orthogonal(rng, h, 3 * h),
                "b": np.zeros(3 * h),
                "bh": np.zeros(3 * h) if spec.reset_after else None,
            }
        )
        f = h
    head = {"W": _glorot_uniform(rng, f, spec.n_outputs), "b": np.zeros(spec.n_outputs)}
    return pack(spec, layers, head)


def unpack(spec, theta):
    """Return the canonical parameters held in ``theta`` (copies).

    Returns
    -------
    layers : list of dict
        Per GRU layer: ``W (F, 3H)``, ``U (H, 3H)``, ``b (3H,)``, ``bh (3H,)`` or ``None``;
        gate order r, z, n along the last axis.
    head : dict
        ``W (H_last, n_outputs)`` and ``b (n_outputs,)``.
    """
    layout, head_row, n = spec.layout()
    theta = np.asarray(theta)
    if theta.shape != (n,):
        raise ValueError(f"theta has shape {theta.shape}; this network needs ({n},)")
    layers = []
    for row in layout:
        f, h = int(row[F_]), int(row[H_])

        def block(col, shape, row=row):
            o = int(row[col])
            return theta[o : o + int(np.prod(shape))].reshape(shape)

        layer = {
            "W": np.concatenate([block(W_RZ, (f, 2 * h)), block(W_N, (f, h))], axis=1),
            "U": np.concatenate([block(U_RZ, (h, 2 * h)), block(U_N, (h, h))], axis=1),
            "b": np.concatenate([block(B_RZ, (2 * h,)), block(B_N, (h,))]),
            "bh": None,
        }
        if spec.reset_after:
            layer["bh"] = np.concatenate([block(BH_RZ, (2 * h,)), block(BH_N, (h,))])
        layers.append(layer)
    hf, no, ow, ob = (int(v) for v in head_row)
    head = {"W": theta[ow : ow + hf * no].reshape(hf, no).copy(), "b": theta[ob : ob + no].copy()}
    return layers, head


def pack(spec, layers, head):
    """Inverse of :func:`unpack`: build ``theta`` of ``spec.dtype`` from canonical arrays,
    checking every shape."""
    layout, head_row, n = spec.layout()
    if len(layers) != len(layout):
        raise ValueError(f"got {len(layers)} GRU layers; the network has {len(layout)}")
    theta = np.zeros(n, dtype=spec.dtype)

    def put(col_or_off, arr, shape, name, row=None):
        arr = np.asarray(arr, dtype=np.float64)
        if arr.shape != shape:
            raise ValueError(f"{name} has shape {arr.shape}; expected {shape}")
        o = int(row[col_or_off]) if row is not None else int(col_or_off)
        theta[o : o + arr.size] = arr.ravel()

    for i, (row, layer) in enumerate(zip(layout, layers, strict=True)):
        f, h = int(row[F_]), int(row[H_])
        w = np.asarray(layer["W"])
        u = np.asarray(layer["U"])
        b = np.asarray(layer["b"])
        for name, arr, shape in (("W", w, (f, 3 * h)), ("U", u, (h, 3 * h)), ("b", b, (3 * h,))):
            if arr.shape != shape:
                raise ValueError(f"layer {i} {name} has shape {arr.shape}; expected {shape}")
        put(W_RZ, w[:, : 2 * h], (f, 2 * h), f"layer {i} W", row)
        put(W_N, w[:, 2 * h :], (f, h), f"layer {i} W", row)
        put(U_RZ, u[:, : 2 * h], (h, 2 * h), f"layer {i} U", row)
        put(U_N, u[:, 2 * h :], (h, h), f"layer {i} U", row)
        put(B_RZ, b[: 2 * h], (2 * h,), f"layer {i} b", row)
        put(B_N, b[2 * h :], (h,), f"layer {i} b", row)
        bh = layer.get("bh")
        if spec.reset_after:
            if bh is None:
                raise ValueError(f"layer {i} needs a recurrent bias 'bh' (reset_after=True)")
            bh = np.asarray(bh)
            if bh.shape != (3 * h,):
                raise ValueError(f"layer {i} bh has shape {bh.shape}; expected {(3 * h,)}")
            put(BH_RZ, bh[: 2 * h], (2 * h,), f"layer {i} bh", row)
            put(BH_N, bh[2 * h :], (h,), f"layer {i} bh", row)
        elif bh is not None and np.any(np.asarray(bh) != 0):
            raise ValueError(
                f"layer {i} has a nonzero recurrent bias 'bh' but reset_after=False has none"
            )
    hf, no, ow, ob = (int(v) for v in head_row)
    put(ow, head["W"], (hf, no), "head W")
    put(ob, head["b"], (no,), "head b")
    return theta
