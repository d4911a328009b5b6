"""Exchange GRU models with PyTorch, Keras and ONNX.

===========================  ==============================================================
function                     does
===========================  ==============================================================
:func:`from_torch`           ``torch.nn.GRU`` (+ ``torch.nn.Linear``) -> ``GRURegressor``
:func:`to_torch`             ``GRURegressor`` -> ``(torch.nn.GRU, torch.nn.Linear)``
:func:`from_keras`           Keras ``Sequential`` of ``GRU`` layers and a ``Dense`` head ->
                             ``GRURegressor``
:func:`to_keras`             ``GRURegressor`` -> Keras ``Sequential``
:func:`to_onnx`              ``GRURegressor`` -> ONNX model (standard ``GRU`` operator)
===========================  ==============================================================

The frameworks are optional: importing :mod:`fastgru` or this module imports none of them;
each function imports what it needs when called, and a missing one raises ``ImportError``
naming the extra to install (``pip install "fastgru[torch]"``, ``"fastgru[keras]"``,
``"fastgru[onnx]"``).

Gate conventions
----------------
fastgru keeps the gates in the order r, z, n and updates ``h' = (1 - z) * h + z * n``
(equations in :mod:`fastgru.cpu`). PyTorch (order r, z, n), Keras (order z, r, h) and ONNX
(order z, r, h) all write the update as ``h' = z * h + (1 - z) * n``: their ``z`` is our
``1 - z`` = ``sigmoid(-a)`` for our gate pre-activation ``a``. The conversion therefore
reorders the gate blocks and negates the z-gate weights and biases; it is exact.

=================  ====================  =========================  ========================
fastgru            PyTorch ``nn.GRU``    Keras ``GRU``              ONNX ``GRU``
=================  ====================  =========================  ========================
reset_after=True   the only convention   ``reset_after=True``       ``linear_before_reset=1``
reset_after=False  not expressible       ``reset_after=False``      ``linear_before_reset=0``
=================  ====================  =========================  ========================

Keras 3 needs a backend; the ``fastgru[keras]`` extra brings PyTorch for it. Set
``KERAS_BACKEND=torch`` in the environment *before* Keras is first imported (Keras'
default backend, TensorFlow, is not installed by the extra).

Without a head (:func:`from_torch` with ``head=None``, a Keras model without a ``Dense``
layer) the imported regressor gets an identity head: ``predict`` returns the last hidden
state of the top GRU layer, shape ``(n_samples, hidden_size)``, which is what the source
model outputs at its last time step.
"""

import importlib

import numpy as np

__all__ = ["from_keras", "from_torch", "to_keras", "to_onnx", "to_torch"]


# --------------------------------------------------------------------------------------
# Optional imports
# --------------------------------------------------------------------------------------
def _import(module, extra, what):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{what} needs the optional dependency {module!r}, which is not installed: "
            f'pip install "fastgru[{extra}]"'
        ) from exc


def _import_keras(what):
    try:
        return importlib.import_module("keras")
    except ImportError as exc:
        missing = getattr(exc, "name", None)
        if missing and missing.split(".")[0] != "keras":
            raise ImportError(
                f"{what}: Keras is installed but cannot load its backend ({exc}). fastgru's "
                "keras extra runs Keras 3 on PyTorch: set the environment variable "
                "KERAS_BACKEND=torch before Keras is first imported (e.g. "
                "os.environ.setdefault('KERAS_BACKEND', 'torch') at the top of the script), "
                'and pip install "fastgru[keras]"'
            ) from exc
        raise ImportError(
            f'{what} needs Keras, which is not installed: pip install "fastgru[keras]" '
            "(and set KERAS_BACKEND=torch before importing keras)"
        ) from exc


def _regressor_class():
    from .estimator import GRURegressor

    return GRURegressor


def _exported_weights(regressor):
    """Canonical weights of a fitted regressor and its gate convention."""
    layers, head = regressor.get_weights()  # raises NotFittedError when not fitted
    return layers, head, bool(regressor.spec_.reset_after)


# --------------------------------------------------------------------------------------
# Gate-block conversions (pure NumPy; last axis = 3H gate blocks)
# --------------------------------------------------------------------------------------
def _negate_z_rzn(a, H):
    """Flip the sign of the z block of an r, z, n array (self-inverse)."""
    a = np.array(a, dtype=np.float64, copy=True)
    a[..., H : 2 * H] *= -1.0
    return a


def _zrh_to_rzn(a, H):
    """Keras/ONNX block order z, r, h (their z) -> ours r, z, n (our z = -their z)."""
    a = np.asarray(a, dtype=np.float64)
    return np.concatenate([a[..., H : 2 * H], -a[..., :H], a[..., 2 * H :]], axis=-1)


def _rzn_to_zrh(a, H):
    """Inverse of :func:`_zrh_to_rzn`."""
    a = np.asarray(a, dtype=np.float64)
    return np.concatenate([-a[..., H : 2 * H], a[..., :H], a[..., 2 * H :]], axis=-1)


def _identity_head(H):
    return {"W": np.eye(H), "b": np.zeros(H)}


def _dropout_error(where, ignore_name="ignore_dropout"):
    return ValueError(
        f"{where}: fastgru has no dropout. Dropout acts only while training, so predictions "
        f"are the same without it; pass {ignore_name}=True to import the weights anyway "
        "(later fits of the regressor then train without dropout)."
    )


# --------------------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------------------
def from_torch(gru, head=None, *, ignore_dropout=False, **params):
    """Import a PyTorch GRU (and its linear head) as a fitted :class:`GRURegressor`.

    PyTorch's ``nn.GRU`` uses the reset-after convention, so the regressor has
    ``reset_after=True``. The gates keep PyTorch's order r, z, n; the z-gate weights and
    biases are negated (PyTorch's update gate is our ``1 - z``). The imported model
    predicts ``head(gru(x)[0][:, -1])`` for ``x`` of shape ``(batch, seq, features)``
    (``batch_first`` only says how PyTorch lays out its input; it does not matter here).

    Parameters
    ----------
    gru : torch.nn.GRU
        Unidirectional, any number of layers (``num_layers``), with or without bias.
    head : torch.nn.Linear or None, default=None
        Dense layer applied to the last hidden state of the top layer
        (``in_features == gru.hidden_size``). ``None``: an identity head, so that
        ``predict`` returns that hidden state itself, shape ``(n_samples, hidden_size)``.
    ignore_dropout : bool, default=False
        ``gru.dropout > 0`` raises ``ValueError`` unless this is true. Dropout does not
        change predictions; fastgru has none, so later fits would train without it.
    **params
        Passed to :meth:`GRURegressor.from_weights`: ``n_timesteps``, ``y_ndim`` and
        constructor parameters (``device``, training settings for later fits). ``dtype``
        defaults to the dtype of the PyTorch weights (``float64`` for ``torch.float64``,
        else ``float32``).

    Returns
    -------
    GRURegressor
        Fitted, with ``reset_after=True``.

    Raises
    ------
    ImportError
        PyTorch is not installed.
    TypeError
        ``gru`` is not a ``torch.nn.GRU`` or ``head`` not a ``torch.nn.Linear``.
    ValueError
        Bidirectional, projected or dropout GRU; head of the wrong width.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from fastgru.interop import from_torch
    >>> gru = torch.nn.GRU(1, 8, num_layers=2, batch_first=True)
    >>> model = from_torch(gru, torch.nn.Linear(8, 1))
    >>> model.predict(np.zeros((3, 20, 1), np.float32)).shape
    (3,)
    """
    torch = _import("torch", "torch", "from_torch")
    if not isinstance(gru, torch.nn.GRU):
        raise TypeError(f"from_torch expects a torch.nn.GRU, got {type(gru).__name__}")
    if gru.bidirectional:
        raise ValueError(
            "from_torch: bidirectional GRUs are not supported; fastgru's GRU layers run "
            "forward in time only"
        )
    if getattr(gru, "proj_size", 0):
        raise ValueError("from_torch: GRUs with proj_size > 0 are not supported")
    if gru.dropout > 0 and not ignore_dropout:
        raise _dropout_error(f"from_torch: the GRU has dropout={gru.dropout}")
    H = int(gru.hidden_size)

    def arr(name):
        t = getattr(gru, name, None)
        return None if t is None else t.detach().cpu().double().numpy()

    layers = []
    for k in range(int(gru.num_layers)):
        w_ih, w_hh = arr(f"weight_ih_l{k}"), arr(f"weight_hh_l{k}")
        b_ih, b_hh = arr(f"bias_ih_l{k}"), arr(f"bias_hh_l{k}")
        b_ih = np.zeros(3 * H) if b_ih is None else b_ih
        b_hh = np.zeros(3 * H) if b_hh is None else b_hh
        layers.append(
            {
                "W": _negate_z_rzn(w_ih.T, H),
                "U": _negate_z_rzn(w_hh.T, H),
                "b": _negate_z_rzn(b_ih, H),
                "bh": _negate_z_rzn(b_hh, H),
            }
        )

    if head is None:
        head_w = _identity_head(H)
        params.setdefault("y_ndim", 2)
    else:
        if not isinstance(head, torch.nn.Linear):
            raise TypeError(
                f"from_torch: head must be a torch.nn.Linear or None, got {type(head).__name__}"
            )
        if head.in_features != H:
            raise ValueError(
                f"from_torch: head has in_features={head.in_features}, but the GRU's "
                f"hidden_size is {H}"
            )
        w = head.weight.detach().cpu().double().numpy()
        b = (
            np.zeros(head.out_features)
            if head.bias is None
            else head.bias.detach().cpu().double().numpy()
        )
        head_w = {"W": w.T.copy(), "b": b}

    params.setdefault("dtype", "float64" if gru.weight_ih_l0.dtype == torch.float64 else "float32")
    params["reset_after"] = True
    return _regressor_class().from_weights(layers, head_w, **params)


def to_torch(regressor, *, batch_first=True):
    """Export a fitted reset-after :class:`GRURegressor` as PyTorch modules.

    ``head(gru(x)[0][:, -1])`` (``batch_first=True``) then equals ``regressor.predict(x)``
    (up to the shape of a single output: ``predict`` returns 1-D when fitted on 1-D ``y``).

    Parameters
    ----------
    regressor : GRURegressor
        Fitted, ``reset_after=True``, all GRU layers of the same width (``nn.GRU`` stacks
        layers of one ``hidden_size`` only).
    batch_first : bool, default=True
        Layout of the returned GRU's input: ``(batch, seq, features)`` when true,
        ``(seq, batch, features)`` when false.

    Returns
    -------
    gru : torch.nn.GRU
        ``num_layers = len(units)``, ``bias=True``, in the regressor's dtype.
    head : torch.nn.Linear
        ``hidden_size -> n_outputs``.

    Raises
    ------
    ImportError
        PyTorch is not installed.
    ValueError
        ``reset_after=False`` (PyTorch has no reset-before GRU), or layers of unequal widths.
    sklearn.exceptions.NotFittedError
        The regressor is not fitted.
    """
    torch = _import("torch", "torch", "to_torch")
    layers, head, reset_after = _exported_weights(regressor)
    if not reset_after:
        raise ValueError(
            "to_torch: this model uses reset_after=False (the reset gate applied before the "
            "recurrent product, Cho et al. 2014), which PyTorch's nn.GRU cannot express: it "
            "implements only the reset-after convention. Export it with to_keras (a Keras GRU "
            "with reset_after=False) or to_onnx (linear_before_reset=0), or train with "
            "GRURegressor(reset_after=True)."
        )
    widths = [int(layer["U"].shape[0]) for layer in layers]
    if len(set(widths)) != 1:
        raise ValueError(
            f"to_torch: the GRU layers have unequal widths {tuple(widths)}, but a multi-layer "
            "torch.nn.GRU needs one hidden_size for all layers. Train with equal units, or "
            "build a torch.nn.ModuleList of single-layer nn.GRU modules yourself from "
            "regressor.get_weights() (negate the z-gate rows, see fastgru.interop)."
        )
    H, F = widths[0], int(layers[0]["W"].shape[0])
    dtype = torch.float64 if np.dtype(regressor.spec_.dtype) == np.float64 else torch.float32
    gru = torch.nn.GRU(F, H, num_layers=len(layers), bias=True, batch_first=batch_first,
                       dtype=dtype)  # fmt: skip
    lin = torch.nn.Linear(H, int(head["W"].shape[1]), dtype=dtype)
    with torch.no_grad():
        for k, layer in enumerate(layers):
            for name, value in (
                (f"weight_ih_l{k}", _negate_z_rzn(layer["W"], H).T),
                (f"weight_hh_l{k}", _negate_z_rzn(layer["U"], H).T),
                (f"bias_ih_l{k}", _negate_z_rzn(layer["b"], H)),
                (f"bias_hh_l{k}", _negate_z_rzn(layer["bh"], H)),
            ):
                getattr(gru, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))
        lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(head["W"].T)))
        lin.bias.copy_(torch.from_numpy(np.asarray(head["b"])))
    return gru, lin


# --------------------------------------------------------------------------------------
# Keras
# --------------------------------------------------------------------------------------
def _keras_name(value):
    """The name of an activation as ``get_config`` writes it (string or serialized)."""
    if isinstance(value, dict):
        cfg = value.get("config")
        if isinstance(cfg, dict) and "name" in cfg:
            return str(cfg["name"])
        if isinstance(cfg, str):
            return cfg
        return str(value.get("class_name", value))
    return getattr(value, "__name__", str(value))


def from_keras(model, *, ignore_dropout=False, **params):
    """Import a Keras ``Sequential`` of ``GRU`` layers and a ``Dense`` head as a fitted
    :class:`GRURegressor`.

    The model must be built (it has weights): every ``GRU`` but the last has
    ``return_sequences=True``, the last ``return_sequences=False``, then at most one
    ``Dense`` layer with a linear activation. Both gate conventions import: the regressor's
    ``reset_after`` is that of the GRU layers (which must agree). Gates are reordered from
    Keras' z, r, h to r, z, n and the z-gate weights and biases negated (Keras' update gate
    is our ``1 - z``). Works with Keras 3 (any backend) and ``tf.keras`` models; Keras itself
    is not imported.

    Parameters
    ----------
    model : keras.Sequential
        Layers: optional ``InputLayer``, ``GRU`` layers, optional ``Dense``. Without a
        ``Dense`` layer, ``predict`` returns the top layer's last hidden state (identity
        head). ``Dropout`` layers are allowed only with ``ignore_dropout=True``.
    ignore_dropout : bool, default=False
        ``Dropout`` layers or GRU ``dropout``/``recurrent_dropout`` > 0 raise ``ValueError``
        unless this is true. Dropout does not change predictions; fastgru has none.
    **params
        Passed to :meth:`GRURegressor.from_weights` (``n_timesteps``, ``y_ndim``,
        ``dtype``, ``device``, training settings). ``n_timesteps`` defaults to the model's
        fixed input length, if it has one; ``dtype`` to the dtype of the Keras weights.

    Returns
    -------
    GRURegressor
        Fitted.

    Raises
    ------
    TypeError
        ``model`` is not a ``Sequential``.
    ValueError
        An unsupported layer or setting: activation other than ``tanh``, recurrent
        activation other than ``sigmoid``, ``go_backwards``, ``stateful``, mixed
        ``reset_after``, wrong ``return_sequences``, non-linear ``Dense``, unbuilt model.
    """
    if not any(c.__name__ == "Sequential" for c in type(model).__mro__):
        raise TypeError(
            f"from_keras expects a keras.Sequential model, got {type(model).__name__}; rebuild "
            "a functional chain of GRU layers and a Dense head as a Sequential"
        )
    model_layers = list(getattr(model, "layers", None) or [])
    if not model_layers:
        raise ValueError(
            f"from_keras expects a built keras.Sequential of GRU layers and a Dense head, "
            f"got {type(model).__name__} without layers"
        )
    grus, dense = [], None
    for layer in model_layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if kind == "Dropout":
            if not ignore_dropout:
                raise _dropout_error(f"from_keras: layer {layer.name!r} is a Dropout layer")
            continue
        if dense is not None:
            raise ValueError(
                f"from_keras: layer {layer.name!r} ({kind}) follows the Dense head; the "
                "Dense layer must be the last"
            )
        if kind == "GRU":
            grus.append(layer)
        elif kind == "Dense":
            dense = layer
        else:
            raise ValueError(
                f"from_keras: layer {layer.name!r} is a {kind}; only GRU layers followed by "
                "one Dense layer can be imported (Bidirectional, Masking, Conv, LSTM, ... are "
                "not supported)"
            )
    if not grus:
        raise ValueError("from_keras: the model has no GRU layer")

    layers = []
    conventions = set()
    for i, layer in enumerate(grus):
        cfg = layer.get_config()
        where = f"from_keras: GRU layer {layer.name!r}"
        act, rec = _keras_name(cfg.get("activation")), _keras_name(cfg.get("recurrent_activation"))
        if act != "tanh" or rec != "sigmoid":
            raise ValueError(
                f"{where} has activation={act!r}, recurrent_activation={rec!r}; fastgru's GRU "
                "computes activation='tanh' and recurrent_activation='sigmoid' only"
            )
        for flag in ("go_backwards", "stateful", "return_state", "time_major"):
            if cfg.get(flag):
                raise ValueError(f"{where} has {flag}=True, which fastgru does not support")
        last = i == len(grus) - 1
        if bool(cfg.get("return_sequences")) != (not last):
            raise ValueError(
                f"{where} has return_sequences={cfg.get('return_sequences')}; every GRU but the "
                "last must return sequences and the last must not (the head reads the last "
                "time step only)"
            )
        if (cfg.get("dropout") or cfg.get("recurrent_dropout")) and not ignore_dropout:
            raise _dropout_error(
                f"{where} has dropout={cfg.get('dropout')}, "
                f"recurrent_dropout={cfg.get('recurrent_dropout')}"
            )
        reset_after = bool(cfg.get("reset_after", False))
        conventions.add(reset_after)
        H = int(cfg["units"])
        weights = layer.get_weights()
        if not weights:
            raise ValueError(f"{where} has no weights: build the model (call it once or give it "
                             "an Input) before importing")  # fmt: skip
        kernel, recurrent = weights[0], weights[1]
        if len(weights) > 2:
            bias = np.asarray(weights[2], dtype=np.float64)
        else:  # use_bias=False
            bias = np.zeros((2, 3 * H) if reset_after else (3 * H,))
        if reset_after:
            b, bh = _zrh_to_rzn(bias.reshape(2, 3 * H)[0], H), _zrh_to_rzn(bias[1], H)
        else:
            b, bh = _zrh_to_rzn(bias.reshape(3 * H), H), None
        layers.append(
            {"W": _zrh_to_rzn(kernel, H), "U": _zrh_to_rzn(recurrent, H), "b": b, "bh": bh}
        )
    if len(conventions) > 1:
        raise ValueError(
            "from_keras: the GRU layers mix reset_after=True and reset_after=False; a "
            "GRURegressor has one gate convention for all layers"
        )

    H = layers[-1]["U"].shape[0]
    if dense is None:
        head = _identity_head(H)
        params.setdefault("y_ndim", 2)
    else:
        cfg = dense.get_config()
        act = _keras_name(cfg.get("activation"))
        if act not in ("linear", "None"):
            raise ValueError(
                f"from_keras: Dense layer {dense.name!r} has activation={act!r}; fastgru's head "
                "is linear (activation=None)"
            )
        weights = dense.get_weights()
        if not weights:
            raise ValueError(f"from_keras: Dense layer {dense.name!r} has no weights: build "
                             "the model first")  # fmt: skip
        w = np.asarray(weights[0], dtype=np.float64)
        if w.ndim != 2 or w.shape[0] != H:
            raise ValueError(
                f"from_keras: Dense layer {dense.name!r} has a kernel of shape {w.shape}; "
                f"expected ({H}, n_outputs)"
            )
        b = np.asarray(weights[1], np.float64) if len(weights) > 1 else np.zeros(w.shape[1])
        head = {"W": w, "b": b}

    shape = getattr(model, "input_shape", None)
    try:
        steps = shape[1] if shape is not None and len(shape) == 3 else None
    except TypeError:  # a model with several inputs
        steps = None
    if isinstance(steps, int | np.integer):
        params.setdefault("n_timesteps", int(steps))
    kdtype = np.asarray(grus[0].get_weights()[0]).dtype
    params.setdefault("dtype", "float64" if kdtype == np.float64 else "float32")
    params["reset_after"] = conventions.pop()
    return _regressor_class().from_weights(layers, head, **params)


def to_keras(regressor):
    """Export a fitted :class:`GRURegressor` as a Keras ``Sequential`` model.

    The model takes ``(batch, seq, features)`` of any sequence length and returns
    ``(batch, n_outputs)``: ``GRU`` layers (``reset_after`` as the regressor's,
    ``activation='tanh'``, ``recurrent_activation='sigmoid'``; all but the last return
    sequences) and a linear ``Dense`` head, in the regressor's dtype. Both conventions export:
    a ``reset_after=False`` model becomes Keras GRUs with ``reset_after=False``.

    Keras 3 runs here on PyTorch: set ``KERAS_BACKEND=torch`` before Keras is first
    imported.

    Parameters
    ----------
    regressor : GRURegressor
        Fitted.

    Returns
    -------
    keras.Sequential

    Raises
    ------
    ImportError
        Keras (or its backend) is not installed or not configured.
    sklearn.exceptions.NotFittedError
        The regressor is not fitted.
    """
    keras = _import_keras("to_keras")
    layers, head, reset_after = _exported_weights(regressor)
    dtype = str(np.dtype(regressor.spec_.dtype))
    F = int(layers[0]["W"].shape[0])
    grus = []
    for i, layer in enumerate(layers):
        H = int(layer["U"].shape[0])
        grus.append(
            keras.layers.GRU(
                H,
                activation="tanh",
                recurrent_activation="sigmoid",
                return_sequences=i < len(layers) - 1,
                reset_after=reset_after,
                dtype=dtype,
            )
        )
    dense = keras.layers.Dense(int(head["W"].shape[1]), dtype=dtype)
    model = keras.Sequential([keras.Input(shape=(None, F), dtype=dtype), *grus, dense])
    for gru, layer in zip(grus, layers, strict=True):
        H = int(layer["U"].shape[0])
        if reset_after:
            bias = np.stack([_rzn_to_zrh(layer["b"], H), _rzn_to_zrh(layer["bh"], H)])
        else:
            bias = _rzn_to_zrh(layer["b"], H)
        gru.set_weights(
            [
                _rzn_to_zrh(layer["W"], H).astype(dtype),
                _rzn_to_zrh(layer["U"], H).astype(dtype),
                bias.astype(dtype),
            ]
        )
    dense.set_weights([np.asarray(head["W"], dtype), np.asarray(head["b"], dtype)])
    return model


# --------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------
def to_onnx(regressor, path=None, *, opset=17, input_name="input", output_name="output"):
    """Export a fitted :class:`GRURegressor` as an ONNX model.

    The graph: the input ``(batch, seq, features)`` (float32; ``batch`` and ``seq`` are
    dynamic axes named ``"batch"`` and ``"sequence"``) is transposed to time-major, runs
    through one standard ONNX ``GRU`` operator per layer (forward,
    ``linear_before_reset=1`` for ``reset_after=True``, ``0`` for ``reset_after=False``;
    zero initial state), and the last layer's final hidden state goes through the head
    (``MatMul`` + ``Add``). The output is ``(batch, n_outputs)`` float32, equal to
    ``regressor.predict`` (which returns 1-D when fitted on 1-D ``y``). A regressor fitted
    on 2-D lag windows ``(n_samples, n_timesteps)`` takes ``(batch, seq, 1)`` here.
    float64 weights are rounded to float32. Only the ``onnx`` package is needed to export;
    ``onnxruntime`` (or any ONNX runtime) runs the result.

    Parameters
    ----------
    regressor : GRURegressor
        Fitted.
    path : str or os.PathLike or None, default=None
        Where to write the ``.onnx`` file; ``None`` writes nothing.
    opset : int, default=17
        ONNX opset of the default domain (at least 14). The IR version is the lowest that
        the opset allows, for older runtimes.
    input_name, output_name : str, default="input", "output"
        Names of the graph's input and output.

    Returns
    -------
    onnx.ModelProto
        The model (checked with ``onnx.checker``).

    Raises
    ------
    ImportError
        The ``onnx`` package is not installed.
    sklearn.exceptions.NotFittedError
        The regressor is not fitted.

    Examples
    --------
    >>> import onnxruntime as ort  # doctest: +SKIP
    >>> to_onnx(model, "model.onnx")  # doctest: +SKIP
    >>> sess = ort.InferenceSession("model.onnx")  # doctest: +SKIP
    >>> sess.run(None, {"input": X.astype(np.float32)})[0]  # doctest: +SKIP
    """
    onnx = _import("onnx", "onnx", "to_onnx")
    from onnx import TensorProto, helper, numpy_helper

    if int(opset) < 14:
        raise ValueError(f"to_onnx: opset must be at least 14, got {opset}")
    layers, head, reset_after = _exported_weights(regressor)
    F = int(layers[0]["W"].shape[0])
    O = int(head["W"].shape[1])
    f32 = np.float32

    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    axes0 = const("axes_0", np.array([0], np.int64))
    # (only used between stacked layers: an unused initializer makes onnxruntime warn)
    axes1 = const("axes_1", np.array([1], np.int64)) if len(layers) > 1 else None
    nodes.append(helper.make_node("Transpose", [input_name], ["x_tbf"], perm=[1, 0, 2]))
    x = "x_tbf"
    for i, layer in enumerate(layers):
        H = int(layer["U"].shape[0])
        bh = layer["bh"] if reset_after else np.zeros(3 * H)
        W = const(f"gru{i}_W", _rzn_to_zrh(layer["W"], H).T[None].astype(f32))
        R = const(f"gru{i}_R", _rzn_to_zrh(layer["U"], H).T[None].astype(f32))
        B = const(
            f"gru{i}_B",
            np.concatenate([_rzn_to_zrh(layer["b"], H), _rzn_to_zrh(bh, H)])[None].astype(f32),
        )
        last = i == len(layers) - 1
        outs = ["", f"gru{i}_Yh"] if last else [f"gru{i}_Y", ""]
        nodes.append(
            helper.make_node(
                "GRU",
                [x, W, R, B],
                outs,
                name=f"gru{i}",
                hidden_size=H,
                direction="forward",
                linear_before_reset=1 if reset_after else 0,
            )
        )
        if not last:  # Y: (seq, 1, batch, H) -> (seq, batch, H)
            nodes.append(helper.make_node("Squeeze", [f"gru{i}_Y", axes1], [f"gru{i}_seq"]))
            x = f"gru{i}_seq"
    top = len(layers) - 1
    nodes.append(helper.make_node("Squeeze", [f"gru{top}_Yh", axes0], ["h_last"]))
    hw = const("head_W", np.asarray(head["W"], f32))
    hb = const("head_b", np.asarray(head["b"], f32))
    nodes.append(helper.make_node("MatMul", ["h_last", hw], ["head_mm"]))
    nodes.append(helper.make_node("Add", ["head_mm", hb], [output_name]))

    names = [o for n in nodes for o in n.output if o] + [t.name for t in inits]
    for what, name in (("input_name", input_name), ("output_name", output_name)):
        if names.count(name) > (what == "output_name") or input_name == output_name:
            raise ValueError(f"to_onnx: {what}={name!r} is taken (the graph's names: "
                             f"{input_name!r} in, {output_name!r} out, and "
                             f"{', '.join(sorted(set(names) - {output_name}))}); choose "
                             "another")  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "fastgru_GRURegressor",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", "sequence", F])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", O])],
        initializer=inits,
    )
    from . import __version__

    opsets = [helper.make_opsetid("", int(opset))]
    model = helper.make_model_gen_version(
        graph, opset_imports=opsets, producer_name="fastgru", producer_version=__version__
    )
    model.doc_string = (
        f"fastgru GRURegressor: {len(layers)} GRU layer(s) "
        f"{tuple(int(la['U'].shape[0]) for la in layers)}, reset_after={reset_after}; "
        f"input {input_name} (batch, sequence, {F}) float32 -> {output_name} (batch, {O})"
    )
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save_model(model, path)
    return model
