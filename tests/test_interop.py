"""fastgru.interop: PyTorch, Keras and ONNX import/export.

Every framework is optional: its tests skip when it is not installed. Keras 3 runs on the
PyTorch backend (``KERAS_BACKEND=torch``, set before Keras is imported). Forward passes are
compared in float32 to 1e-5 relative; weight round trips are exact (the conversions only
reorder gate blocks and flip signs).
"""

import os
import subprocess
import sys

import naive
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

from fastgru import GRURegressor, interop  # noqa: E402

RTOL, ATOL = 1e-5, 1e-6

# Keras 3.15's own variables/tensors call np.array(x) without the copy keyword (NumPy 2).
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(
        np.asarray(actual, np.float64), np.asarray(expected, np.float64), rtol=rtol, atol=atol
    )


def random_regressor(units, reset_after, n_features=3, n_outputs=1, seed=0, dtype="float32"):
    """A fitted regressor with random weights (scale large enough to saturate some gates)."""
    rng = np.random.default_rng(seed)
    layers, f = [], n_features
    for h in units:
        layers.append(
            {
                "W": rng.normal(0, 0.5, (f, 3 * h)),
                "U": rng.normal(0, 0.5, (h, 3 * h)),
                "b": rng.normal(0, 0.5, 3 * h),
                "bh": rng.normal(0, 0.5, 3 * h) if reset_after else None,
            }
        )
        f = h
    head = {"W": rng.normal(0, 1, (f, n_outputs)), "b": rng.normal(0, 1, n_outputs)}
    return GRURegressor.from_weights(layers, head, dtype=dtype, device="cpu")


def inputs(n=5, T=12, F=3, seed=1, dtype=np.float32):
    return np.random.default_rng(seed).normal(0, 1, (n, T, F)).astype(dtype)


def oracle(model, x):
    """The float64 NumPy oracle on a regressor's weights (compiles no float64 kernel)."""
    layers, head = model.get_weights()
    out = naive.network(x, layers, head, model.spec_.reset_after)
    return out.ravel() if model.n_outputs_ == 1 else out


def same_weights(a, b):
    (la, ha), (lb, hb) = a.get_weights(), b.get_weights()
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        for k in ("W", "U", "b"):
            np.testing.assert_array_equal(x[k], y[k])
        assert (x["bh"] is None) == (y["bh"] is None)
        if x["bh"] is not None:
            np.testing.assert_array_equal(x["bh"], y["bh"])
    np.testing.assert_array_equal(ha["W"], hb["W"])
    np.testing.assert_array_equal(ha["b"], hb["b"])


# --------------------------------------------------------------------------------------
# Without any framework
# --------------------------------------------------------------------------------------
def test_importing_fastgru_and_interop_imports_no_framework():
    code = (
        "import sys, fastgru, fastgru.interop\n"
        "from fastgru.interop import from_torch, to_torch, from_keras, to_keras, to_onnx\n"
        "bad = [m for m in ('torch', 'keras', 'onnx', 'onnxruntime', 'tensorflow', 'jax')\n"
        "       if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize(
    "module, call, extra",
    [
        ("torch", lambda m: interop.from_torch(object()), "torch"),
        ("torch", lambda m: interop.to_torch(m), "torch"),
        ("keras", lambda m: interop.to_keras(m), "keras"),
        ("onnx", lambda m: interop.to_onnx(m), "onnx"),
    ],
)
def test_missing_framework_names_the_extra(monkeypatch, module, call, extra):
    model = random_regressor((2,), True)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ImportError, match=rf'pip install "fastgru\[{extra}\]"'):
        call(model)


def test_keras_without_backend_says_to_set_keras_backend(monkeypatch):
    def fail(name):
        raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")

    model = random_regressor((2,), True)
    monkeypatch.setattr(interop.importlib, "import_module", fail)
    with pytest.raises(ImportError, match="KERAS_BACKEND=torch"):
        interop.to_keras(model)


def test_gate_block_conversions_are_inverse_and_negate_z():
    H = 4
    a = np.random.default_rng(0).normal(size=(3, 3 * H))
    np.testing.assert_array_equal(interop._rzn_to_zrh(interop._zrh_to_rzn(a, H), H), a)
    np.testing.assert_array_equal(interop._negate_z_rzn(interop._negate_z_rzn(a, H), H), a)
    zrh = interop._rzn_to_zrh(a, H)
    np.testing.assert_array_equal(zrh[:, :H], -a[:, H : 2 * H])
    np.testing.assert_array_equal(zrh[:, H : 2 * H], a[:, :H])
    np.testing.assert_array_equal(zrh[:, 2 * H :], a[:, 2 * H :])


def test_export_needs_a_fitted_regressor():
    from sklearn.exceptions import NotFittedError

    pytest.importorskip("onnx")
    with pytest.raises(NotFittedError):
        interop.to_onnx(GRURegressor())


# --------------------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------------------
def torch_forward(gru, head, x):
    import torch

    with torch.no_grad():
        xt = torch.from_numpy(x)
        if not gru.batch_first:
            xt = xt.transpose(0, 1)
        out = gru(xt)[0]
        last = out[:, -1] if gru.batch_first else out[-1]
        return (last if head is None else head(last)).numpy()


def random_torch(num_layers, F=3, H=6, O=2, seed=0, **kw):
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    gru = torch.nn.GRU(F, H, num_layers=num_layers, batch_first=True, **kw)
    head = torch.nn.Linear(H, O)
    with torch.no_grad():  # larger than the default init, so that gates saturate too
        for p in gru.parameters():
            p.normal_(0, 0.5)
    return gru, head


@pytest.mark.parametrize("num_layers", [1, 2])
def test_from_torch_predicts_what_torch_predicts(num_layers):
    gru, head = random_torch(num_layers)
    model = interop.from_torch(gru, head, device="cpu")
    assert model.reset_after and model.dtype == "float32" and model.n_outputs_ == 2
    x = inputs()
    ref = torch_forward(gru, head, x)
    close(model.predict(x), ref)
    # and so does the float64 NumPy oracle on the imported weights
    layers, h = model.get_weights()
    close(naive.network(x, layers, h, True), ref)


@pytest.mark.parametrize("units", [(6,), (6, 6)])
@pytest.mark.parametrize("batch_first", [True, False])
def test_to_torch_round_trip(units, batch_first):
    pytest.importorskip("torch")
    model = random_regressor(units, True, n_outputs=2)
    gru, head = interop.to_torch(model, batch_first=batch_first)
    assert gru.batch_first is batch_first and gru.num_layers == len(units)
    x = inputs()
    close(torch_forward(gru, head, x), model.predict(x))
    back = interop.from_torch(gru, head, device="cpu")
    same_weights(back, model)


def test_from_torch_without_head_returns_last_hidden_state():
    gru, _ = random_torch(2, H=5)
    model = interop.from_torch(gru, device="cpu")
    x = inputs()
    out = model.predict(x)
    assert out.shape == (5, 5)
    close(out, torch_forward(gru, None, x))


def test_from_torch_without_bias_and_float64():
    torch = pytest.importorskip("torch")
    gru, head = random_torch(1, bias=False)
    gru, head = gru.double(), head.double()
    model = interop.from_torch(gru, head, device="cpu")
    assert model.dtype == "float64"
    x = inputs(dtype=np.float64)
    close(oracle(model, x), torch_forward(gru, head, x), rtol=1e-12, atol=1e-12)
    g2, h2 = interop.to_torch(model)
    assert g2.weight_ih_l0.dtype == torch.float64


def test_torch_trained_model_imports():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    s = np.sin(np.arange(260) / 6.0).astype(np.float32)
    X = np.lib.stride_tricks.sliding_window_view(s[:-1], 20)[:, :, None].copy()
    y = s[20:]
    gru = torch.nn.GRU(1, 8, num_layers=2, batch_first=True)
    head = torch.nn.Linear(8, 1)
    opt = torch.optim.Adam([*gru.parameters(), *head.parameters()], lr=0.02)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = torch.mean((head(gru(Xt)[0][:, -1])[:, 0] - yt) ** 2)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    model = interop.from_torch(gru, head, device="cpu")
    pred = model.predict(X)
    assert pred.shape == (len(X),)
    close(pred, torch_forward(gru, head, X)[:, 0])


@pytest.mark.slow  # compiles the training kernels when run alone
def test_fastgru_trained_model_exports_to_torch():
    pytest.importorskip("torch")
    s = np.sin(np.arange(200) / 5.0)
    X = np.lib.stride_tricks.sliding_window_view(s[:-1], 16).copy()  # 2-D lag windows
    y = s[16:]
    model = GRURegressor(units=(5, 5), epochs=2, reset_after=True, random_state=0, device="cpu")
    model.fit(X, y)
    gru, head = interop.to_torch(model)
    close(torch_forward(gru, head, X[:, :, None].astype(np.float32))[:, 0], model.predict(X))


def test_torch_errors():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="expects a torch.nn.GRU"):
        interop.from_torch(torch.nn.LSTM(2, 3))
    with pytest.raises(ValueError, match="bidirectional"):
        interop.from_torch(torch.nn.GRU(2, 3, bidirectional=True))
    drop = torch.nn.GRU(2, 3, num_layers=2, dropout=0.2)
    with pytest.raises(ValueError, match="ignore_dropout=True"):
        interop.from_torch(drop)
    assert interop.from_torch(drop, ignore_dropout=True).n_outputs_ == 3
    with pytest.raises(ValueError, match="in_features=4"):
        interop.from_torch(torch.nn.GRU(2, 3), torch.nn.Linear(4, 1))
    with pytest.raises(TypeError, match="torch.nn.Linear"):
        interop.from_torch(torch.nn.GRU(2, 3), torch.nn.Sequential())
    with pytest.raises(ValueError, match="reset_after=False.*cannot express"):
        interop.to_torch(random_regressor((4,), False))
    with pytest.raises(ValueError, match=r"unequal widths \(5, 4\).*ModuleList"):
        interop.to_torch(random_regressor((5, 4), True))


# --------------------------------------------------------------------------------------
# Keras (3, on the PyTorch backend)
# --------------------------------------------------------------------------------------
def keras_mod():
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":  # pragma: no cover - another backend chosen
        pytest.skip(f"Keras runs on {keras.backend.backend()!r}; these tests use 'torch'")
    return keras


def keras_forward(model, x):
    keras = keras_mod()
    return keras.ops.convert_to_numpy(model(x, training=False))


def random_keras(units, reset_after, F=3, O=1, seed=0, T=None):
    keras = keras_mod()
    layers = [
        keras.layers.GRU(h, return_sequences=i < len(units) - 1, reset_after=reset_after)
        for i, h in enumerate(units)
    ]
    model = keras.Sequential([keras.Input((T, F)), *layers, keras.layers.Dense(O)])
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in layer.weights])
    return model


@pytest.mark.parametrize("units", [(6,), (6, 4)])
@pytest.mark.parametrize("reset_after", [True, False])
def test_from_keras_predicts_what_keras_predicts(units, reset_after):
    kmodel = random_keras(units, reset_after, T=12)
    model = interop.from_keras(kmodel, device="cpu")
    assert model.reset_after is reset_after and model.n_timesteps_in_ == 12
    x = inputs()
    close(model.predict(x), keras_forward(kmodel, x)[:, 0])
    back = interop.to_keras(model)
    for a, b in zip(back.weights, kmodel.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a.numpy()), np.asarray(b.numpy()))


@pytest.mark.parametrize("units", [(6,), (6, 4)])
@pytest.mark.parametrize("reset_after", [True, False])
def test_to_keras_round_trip(units, reset_after):
    keras_mod()
    model = random_regressor(units, reset_after, n_outputs=2)
    kmodel = interop.to_keras(model)
    assert [la.reset_after for la in kmodel.layers[:-1]] == [reset_after] * len(units)
    x = inputs()
    close(keras_forward(kmodel, x), model.predict(x))
    close(keras_forward(kmodel, x[:, :7]), model.predict(x[:, :7]))  # any sequence length
    same_weights(interop.from_keras(kmodel, device="cpu"), model)


def test_keras_without_dense_and_with_dropout():
    keras = keras_mod()
    model = keras.Sequential(
        [keras.Input((None, 2)), keras.layers.GRU(4, return_sequences=True),
         keras.layers.Dropout(0.1), keras.layers.GRU(3, dropout=0.2)]
    )  # fmt: skip
    with pytest.raises(ValueError, match="ignore_dropout=True"):
        interop.from_keras(model)
    imported = interop.from_keras(model, ignore_dropout=True, device="cpu")
    x = inputs(F=2)
    out = imported.predict(x)
    assert out.shape == (5, 3)
    close(out, keras_forward(model, x))


def test_keras_errors():
    keras = keras_mod()
    L = keras.layers

    def seq(*layers):
        return keras.Sequential([keras.Input((None, 2)), *layers])

    cases = [
        (seq(L.GRU(3, activation="relu")), "activation='relu'"),
        (seq(L.GRU(3, recurrent_activation="hard_sigmoid")), "recurrent_activation"),
        (seq(L.GRU(3, return_sequences=True), L.Dense(1)), "return_sequences"),
        (seq(L.GRU(3), L.Dense(1, activation="relu")), "linear"),
        (seq(L.LSTM(3), L.Dense(1)), "LSTM"),
        (seq(L.GRU(3, go_backwards=True)), "go_backwards"),
        (seq(L.GRU(3, return_sequences=True), L.GRU(3, reset_after=False)), "mix reset_after"),
        (seq(L.Bidirectional(L.GRU(3))), "Bidirectional"),
        (seq(L.GRU(3), L.Dense(2), L.Dense(1)), "must be the last"),
    ]
    for model, match in cases:
        with pytest.raises(ValueError, match=match):
            interop.from_keras(model)
    inp = keras.Input((None, 2))
    functional = keras.Model(inp, L.Dense(1)(L.GRU(3)(inp)))
    with pytest.raises(TypeError, match="keras.Sequential"):
        interop.from_keras(functional)


def test_keras_float64():
    keras_mod()
    model = random_regressor((4, 3), True, dtype="float64")
    kmodel = interop.to_keras(model)
    assert {str(w.dtype) for w in kmodel.weights} == {"float64"}
    x = inputs(dtype=np.float64)
    close(keras_forward(kmodel, x)[:, 0], oracle(model, x))
    back = interop.from_keras(kmodel, device="cpu")
    assert back.dtype == "float64"
    same_weights(back, model)


# --------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------
def ort_session(model_or_path):
    ort = pytest.importorskip("onnxruntime")
    src = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("units", [(6,), (6, 4)])
@pytest.mark.parametrize("reset_after", [True, False])
def test_onnx_runs_like_fastgru(units, reset_after, tmp_path):
    onnx = pytest.importorskip("onnx")
    model = random_regressor(units, reset_after, n_outputs=2)
    path = str(tmp_path / "m.onnx")
    proto = interop.to_onnx(model, path)
    gru_nodes = [n for n in proto.graph.node if n.op_type == "GRU"]
    assert len(gru_nodes) == len(units)
    for node in gru_nodes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["linear_before_reset"] == int(reset_after)
    used = {name for node in proto.graph.node for name in node.input}
    assert {init.name for init in proto.graph.initializer} <= used  # none left unused
    (inp,) = proto.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "input" and dims == ["batch", "sequence", 3]
    sess = ort_session(path)  # the file on disk
    for n, T in ((5, 12), (1, 30)):  # dynamic batch and sequence axes
        x = inputs(n=n, T=T)
        close(sess.run(None, {"input": x})[0], model.predict(x))


def test_torch_model_to_onnx():
    pytest.importorskip("onnx")
    gru, head = random_torch(2)
    sess = ort_session(interop.to_onnx(interop.from_torch(gru, head)))
    x = inputs()
    close(sess.run(["output"], {"input": x})[0], torch_forward(gru, head, x))


def test_keras_model_to_torch_and_onnx():
    pytest.importorskip("onnx")
    kmodel = random_keras((5, 5), True, O=2)
    model = interop.from_keras(kmodel, device="cpu")
    x = inputs()
    ref = keras_forward(kmodel, x)
    close(torch_forward(*interop.to_torch(model), x), ref)
    close(ort_session(interop.to_onnx(model)).run(None, {"input": x})[0], ref)


def test_onnx_float64_model_and_opset():
    pytest.importorskip("onnx")
    model = random_regressor((4,), True, dtype="float64")
    x = inputs()
    out = ort_session(interop.to_onnx(model, opset=14)).run(None, {"input": x})[0]
    close(out[:, 0], oracle(model, x))  # weights rounded to float32
    with pytest.raises(ValueError, match="at least 14"):
        interop.to_onnx(model, opset=13)
    # names that clash inside the graph: said, not onnx's "SSA form" ValidationError
    for kw, what in ((dict(input_name="x", output_name="x"), "input_name='x'"),
                     (dict(input_name="h_last"), "input_name='h_last'"),
                     (dict(output_name="head_mm"), "output_name='head_mm'")):  # fmt: skip
        with pytest.raises(ValueError, match=f"to_onnx: {what} is taken .*choose another"):
            interop.to_onnx(model, **kw)
