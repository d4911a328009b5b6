"""Model files: round trips, every way a file can be unreadable (each a ``ModelFileError``
with a clear message), atomic writes and loading without pickle."""

import hashlib
import json
import pickle
import struct

import numpy as np
import pandas as pd
import pytest

from fastgru import GRUForecaster, GRURegressor
from fastgru.io import FORMAT_VERSION, MAGIC, ModelFileError, read_model, write_model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6, 2)).astype(np.float32)
    y = X[:, -1, 0] + 0.5 * X[:, -2, 1]
    return X, y


@pytest.fixture(scope="module")
def regressor(data):
    X, y = data
    return GRURegressor(units=(4, 3), epochs=2, random_state=0, device="cpu").fit(X, y)


@pytest.fixture(scope="module")
def forecaster():
    n = 60
    df = pd.DataFrame({"Date": pd.date_range("2020-01-01", periods=n),
                       "Temp": np.sin(np.arange(n) / 3.0) + 10})  # fmt: skip
    return GRUForecaster(window=8, horizon=2, units=4, epochs=1, random_state=0,
                         device="cpu").fit(df)  # fmt: skip


@pytest.fixture
def saved(regressor, tmp_path):
    path = tmp_path / "reg.fgru"
    regressor.save(path)
    return path


def write_raw(path, version, header, data=b""):
    """A well-formed file (valid checksum) around any header and format version."""
    head = json.dumps(header).encode()
    body = struct.pack("<8sIQ", MAGIC, version, len(head)) + head + data
    path.write_bytes(body + hashlib.sha256(body).digest())
    return path


# ------------------------------------------------------------------ round trips
def test_regressor_round_trip(regressor, saved, data):
    X, _ = data
    back = GRURegressor.load(saved)
    assert back.get_params() == regressor.get_params()
    np.testing.assert_array_equal(back.theta_, regressor.theta_)
    np.testing.assert_array_equal(back.predict(X), regressor.predict(X))
    assert back.n_features_in_ == 2 and back.n_iter_ == 2 and back.spec_ == regressor.spec_
    assert back.loss_curve_ == pytest.approx(regressor.loss_curve_)
    # the optimizer state and where the shuffles stand travel too: one more epoch gives the
    # weights the model in memory would have reached (a copy of it: pickle keeps both)
    a = GRURegressor.load(saved).partial_fit(X, data[1])
    b = pickle.loads(pickle.dumps(regressor)).partial_fit(X, data[1])
    assert regressor.shuffle
    np.testing.assert_array_equal(a.theta_, b.theta_)


@pytest.mark.parametrize("change", [dict(units=8), dict(reset_after=True),
                                    dict(dtype="float64")])  # fmt: skip
def test_settings_changed_after_fit_save_the_fitted_network(regressor, data, tmp_path, change):
    """set_params after fit is legal and predict goes on with the fitted network; save
    stored the new settings and load rebuilt the network from them ('49 weights, but the
    stored settings need 307')."""
    X, _ = data
    model = pickle.loads(pickle.dumps(regressor)).set_params(**change)
    model.save(tmp_path / "m.fgru")
    back = GRURegressor.load(tmp_path / "m.fgru")
    assert back.spec_ == regressor.spec_ and back.get_params() == model.get_params()
    assert back.theta_.dtype == np.float32
    np.testing.assert_array_equal(back.predict(X), regressor.predict(X))


def test_numpy_integers_in_the_settings_are_saved(data, tmp_path):
    X, y = data
    model = GRURegressor(units=(np.int64(3), 2), epochs=1, random_state=np.int64(3),
                         device="cpu").fit(X, y)  # fmt: skip
    model.save(tmp_path / "m.fgru")  # was: Object of type int64 is not JSON serializable
    back = GRURegressor.load(tmp_path / "m.fgru")
    assert back.get_params()["units"] == (3, 2) and back.random_state == 3  # (was None)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_file_layout(saved):
    raw = saved.read_bytes()
    assert raw[:8] == MAGIC
    magic, version, header_len = struct.unpack_from("<8sIQ", raw)
    assert version == FORMAT_VERSION == 1
    assert hashlib.sha256(raw[:-32]).digest() == raw[-32:]
    header = json.loads(raw[20 : 20 + header_len])
    assert header["kind"] == "GRURegressor" and header["format"] == 1
    assert {a["name"] for a in header["arrays"]} == {"theta", "adam_m", "adam_v", "step"}
    header, arrays = read_model(saved)
    assert header["metadata"]["params"]["units"] == [4, 3]
    assert arrays["theta"].dtype == np.float32


def test_forecaster_round_trip(forecaster, tmp_path):
    path = tmp_path / "fc.fgru"
    forecaster.save(path)
    back = GRUForecaster.load(path)
    pd.testing.assert_series_equal(back.predict(5), forecaster.predict(5))
    assert back.columns_ == ["Temp"] and back.freq_ == "D"
    np.testing.assert_array_equal(back.history_, forecaster.history_)


def test_write_model_rejects_other_dtypes(tmp_path):
    with pytest.raises(TypeError, match="model files hold float32, float64 or int64"):
        write_model(tmp_path / "x.fgru", "Thing", {}, {"a": np.array(["s"])})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_new_files_get_the_umask_permissions(regressor, tmp_path, umask):
    """Written through a private temporary file (0600), a new model file still gets the
    permissions any new file gets; a replaced file keeps its own."""
    import os

    old = os.umask(umask)
    try:
        regressor.save(tmp_path / "m.fgru")
    finally:
        os.umask(old)
    assert (tmp_path / "m.fgru").stat().st_mode & 0o777 == 0o666 & ~umask
    (tmp_path / "m.fgru").chmod(0o640)
    regressor.save(tmp_path / "m.fgru")
    assert (tmp_path / "m.fgru").stat().st_mode & 0o777 == 0o640


# ------------------------------------------------------------------ unreadable files
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file .*nope.fgru does not exist"):
        GRURegressor.load(tmp_path / "nope.fgru")


def test_folder(tmp_path):
    with pytest.raises(ModelFileError, match="is a folder, not a fastgru model file"):
        GRURegressor.load(tmp_path)


@pytest.mark.parametrize("keep", [10, 19, 100, -1])
def test_truncated(saved, keep):
    raw = saved.read_bytes()
    saved.write_bytes(raw[:keep])
    size = len(raw[:keep])
    # (the temporary folder's name holds "truncated" too: match the whole message)
    if keep > 0:
        match = rf"reg\.fgru is truncated \({size} bytes\); save the model again$"
    else:  # cut inside the array data: only the checksum can tell
        match = r"reg\.fgru is corrupted or truncated \(checksum mismatch\); save the model again$"
    with pytest.raises(ModelFileError, match=match):
        GRURegressor.load(saved)


@pytest.mark.parametrize("where", [9, 40, -100, -1])
def test_flipped_byte(saved, where):
    raw = bytearray(saved.read_bytes())
    raw[where] ^= 0x01
    saved.write_bytes(bytes(raw))
    match = "newer than this fastgru" if where == 9 else "corrupted or truncated \\(checksum"
    with pytest.raises(ModelFileError, match=match):
        GRURegressor.load(saved)


@pytest.mark.parametrize(
    "content", [b"", b"FASTG", b"Date,Temp\n2020-01-01,1\n", b"\x80\x04K\x01.", b"\0" * 100]
)
def test_not_a_fastgru_file(tmp_path, content):
    path = tmp_path / "other.fgru"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=r"is not a fastgru model file \(no FASTGRU header\)"):
        GRURegressor.load(path)


def test_pickle_of_a_model_is_not_loaded(regressor, tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(regressor))
    with pytest.raises(ModelFileError, match="not a fastgru model file"):
        GRURegressor.load(path)


def test_other_kind(saved, forecaster, tmp_path):
    with pytest.raises(ModelFileError, match="holds a GRURegressor, not a GRUForecaster"):
        GRUForecaster.load(saved)
    path = tmp_path / "fc.fgru"
    forecaster.save(path)
    with pytest.raises(ModelFileError, match="holds a GRUForecaster, not a GRURegressor"):
        GRURegressor.load(path)


def test_newer_format_version(saved):
    raw = bytearray(saved.read_bytes())
    raw[8:12] = struct.pack("<I", FORMAT_VERSION + 1)
    saved.write_bytes(bytes(raw))  # checked before the checksum
    with pytest.raises(ModelFileError, match=r"uses model-file format 2, newer than this fastgru "
                       r"reads \(1\); upgrade fastgru"):  # fmt: skip
        GRURegressor.load(saved)
    write_raw(saved, 0, {})
    with pytest.raises(ModelFileError, match="invalid format version 0"):
        GRURegressor.load(saved)


@pytest.mark.parametrize(
    "header, message",
    [
        ([1, 2], "unreadable header"),
        ({"kind": "GRURegressor"}, "unreadable header"),
        ({"kind": "GRURegressor", "metadata": {}, "arrays": {"a": 1}}, "unreadable header"),
        ({"kind": "GRURegressor", "metadata": {}, "arrays": [{"name": "a"}]}, "dtype None"),
        ({"kind": "GRURegressor", "metadata": {}, "arrays": [{"name": "a", "dtype": "<f4"}]},
         "unreadable array table"),
        ({"kind": "GRURegressor", "metadata": {}, "arrays": [
            {"name": "a", "dtype": "|O", "offset": 0, "nbytes": 8, "shape": [1]}]},
         "array 'a' has dtype '|O'"),
        ({"kind": "GRURegressor", "metadata": {}, "arrays": [
            {"name": "a", "dtype": "<f8", "offset": 0, "nbytes": 800, "shape": [100]}]},
         "array 'a' does not fit the file"),
        ({"kind": "GRURegressor", "metadata": {}, "arrays": [
            {"name": "a", "dtype": "<f8", "offset": 0, "nbytes": 8, "shape": [-1, -1]}]},
         "array 'a' does not fit the file"),
        ({"kind": "GRURegressor", "metadata": {}, "arrays": []},
         "incompatible or incomplete metadata"),
        ({"kind": "GRURegressor", "metadata": {"params": {"units": "x"}, "fitted": []},
          "arrays": []}, "incompatible or incomplete metadata"),
    ],
)  # fmt: skip
def test_bad_header_is_a_model_file_error(tmp_path, header, message):
    # Checksummed, so only a buggy or hostile writer makes these: still no other exception.
    path = write_raw(tmp_path / "h.fgru", FORMAT_VERSION, header, b"\0" * 8)
    with pytest.raises(ModelFileError, match=message):
        GRURegressor.load(path)


def test_bad_forecaster_metadata(forecaster, tmp_path):
    path = tmp_path / "fc.fgru"
    forecaster.save(path)
    header, arrays = read_model(path)
    del arrays["history"]
    write_model(path, "GRUForecaster", header["metadata"], arrays)
    with pytest.raises(ModelFileError, match="incompatible or incomplete metadata"):
        GRUForecaster.load(path)
    header["metadata"]["params"]["window"] = 5  # history has 8 rows
    write_model(path, "GRUForecaster", header["metadata"], {**arrays, "history": np.zeros((8, 1))})
    with pytest.raises(ModelFileError, match=r"stored history has shape \(8, 1\)"):
        GRUForecaster.load(path)
    header["metadata"]["regressor"]["spec"]["units"] = [5]  # the weights are for 4 units
    write_model(path, "GRUForecaster", header["metadata"], {**arrays, "history": np.zeros((5, 1))})
    with pytest.raises(ModelFileError, match="weights, but the stored settings need"):
        GRUForecaster.load(path)
    # files written before the network was stored: the settings stand for it
    del header["metadata"]["regressor"]["spec"]
    header["metadata"]["regressor"]["params"]["units"] = [5]
    write_model(path, "GRUForecaster", header["metadata"], {**arrays, "history": np.zeros((5, 1))})
    with pytest.raises(ModelFileError, match="weights, but the stored settings need"):
        GRUForecaster.load(path)
    header["metadata"]["regressor"]["params"]["units"] = [4]
    write_model(path, "GRUForecaster", header["metadata"], {**arrays, "history": np.zeros((5, 1))})
    assert GRUForecaster.load(path).regressor_.spec_ == forecaster.regressor_.spec_


def test_model_file_error_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)


# ------------------------------------------------------------------ atomic writes
def test_atomic_write_keeps_previous_file(regressor, saved, monkeypatch):
    import fastgru.io as fio

    before = saved.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fio.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        regressor.save(saved)
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no temp file left


def test_atomic_write_interrupted_by_keyboard(regressor, saved, monkeypatch):
    import fastgru.io as fio

    before = saved.read_bytes()

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(fio.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        regressor.save(saved)
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_atomic_write_new_file_not_created_on_failure(forecaster, tmp_path, monkeypatch):
    import fastgru.io as fio

    monkeypatch.setattr(fio.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError):
        forecaster.save(tmp_path / "new.fgru")
    assert list(tmp_path.iterdir()) == []


def test_write_into_missing_folder(regressor, tmp_path):
    path = tmp_path / "missing" / "m.fgru"
    with pytest.raises(FileNotFoundError) as info:
        regressor.save(path)
    assert str(info.value) == f"cannot write {path}: folder {path.parent} does not exist"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("model", ["regressor", "forecaster"])
def test_write_to_a_folder_names_the_folder(model, tmp_path, request):
    """Not the temporary file's name, as os.replace's error did; nothing is written, in the
    folder or beside it."""
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        request.getfixturevalue(model).save(str(folder))
    assert str(info.value) == f"cannot write {folder}: it is a folder"
    assert list(tmp_path.rglob("*")) == [folder]


def test_overwrite(regressor, forecaster, saved):
    forecaster.save(saved)
    assert read_model(saved)[0]["kind"] == "GRUForecaster"
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


# ------------------------------------------------------------------ no pickle
def test_loading_never_unpickles(saved, forecaster, tmp_path, monkeypatch, data):
    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle used while loading a model file")

    for name in ("loads", "load", "Unpickler"):
        monkeypatch.setattr(pickle, name, no_pickle)
    monkeypatch.setattr(np, "load", no_pickle)
    reg = GRURegressor.load(saved)
    assert reg.predict(data[0][:2]).shape == (2,)
    path = tmp_path / "fc.fgru"
    forecaster.save(path)
    assert len(GRUForecaster.load(path).predict(3)) == 3


def test_file_holds_no_pickle(saved):
    raw = saved.read_bytes()
    header_len = struct.unpack_from("<8sIQ", raw)[2]
    header = json.loads(raw[20 : 20 + header_len])  # plain JSON
    assert all(a["dtype"] in ("<f4", "<f8", "<i8") for a in header["arrays"])
    assert b"\x80\x04" not in raw[:20 + header_len] and b"pickle" not in raw  # fmt: skip
    import fastgru.io as fio

    source = open(fio.__file__, encoding="utf-8").read()
    assert "import pickle" not in source and "allow_pickle=True" not in source
