"""Model files: weights and JSON metadata in one versioned, checksummed file. No pickle.

Layout of a ``.fgru`` file (all integers little-endian)::

    b"FASTGRU\\0"                 8 bytes, magic
    format version               uint32
    header length                uint64
    header                       UTF-8 JSON: kind, fastgru version, metadata, array table
    array data                   raw little-endian bytes, one block per array
    SHA-256 of all of the above  32 bytes

Loading checks the magic, the version, the lengths and the checksum before it parses
anything, and builds arrays with ``numpy.frombuffer`` from a short list of numeric dtypes:
a file can never make the loader run code. Writes go to a temporary file in the target's
folder that is renamed over the target only when complete, so a crash or a full disk never
leaves a partly written model.
"""

import hashlib
import json
import numbers
import os
import stat
import struct
import tempfile
from pathlib import Path

import numpy as np

MAGIC = b"FASTGRU\0"
FORMAT_VERSION = 1
_ALLOWED_DTYPES = {"<f4", "<f8", "<i8"}
_PREFIX = struct.Struct("<8sIQ")


class ModelFileError(ValueError):
    """A model file that cannot be read: not a fastgru file, truncated, corrupted or from an
    incompatible version. The message names which."""


def replacement_mode(path):
    """Permission bits for a file about to be moved over ``path``: those of the file it
    replaces, else what the process's umask gives a new file (``tempfile.mkstemp`` makes
    its files readable by their owner only)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    try:  # Linux: read the umask without changing it (os.umask would, for every thread)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def writable_folder(path):
    """The folder a file written to ``path`` goes in, after checking that it can go there.

    Checked before the temporary file is made: otherwise a missing folder or a ``path``
    that is a folder shows as an error about the temporary file's name.

    Parameters
    ----------
    path : Path

    Returns
    -------
    Path
        ``path``'s folder (``.`` for a bare file name).

    Raises
    ------
    FileNotFoundError
        The folder does not exist: "cannot write PATH: folder FOLDER does not exist".
    IsADirectoryError
        ``path`` is a folder: "cannot write PATH: it is a folder".
    """
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder")
    return folder


def write_model(path, kind, metadata, arrays):
    """Write a model file atomically.

    Parameters
    ----------
    path : str or Path
    kind : str
        What the file holds (``"GRURegressor"``, ``"GRUForecaster"``).
    metadata : dict
        JSON-serialisable metadata.
    arrays : dict of str to ndarray
        Numeric arrays (float32, float64 or int64).

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        ``path``'s folder does not exist, or ``path`` is a folder (:func:`writable_folder`);
        nothing is written.
    """
    from . import __version__

    path = Path(path)
    folder = writable_folder(path)  # before any work
    table = []
    blobs = []
    offset = 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        dt = arr.dtype.newbyteorder("<").str
        if dt not in _ALLOWED_DTYPES:
            raise TypeError(f"array {name!r} has dtype {arr.dtype}; model files hold float32, "
                            "float64 or int64")  # fmt: skip
        data = arr.astype(dt, copy=False).tobytes()
        table.append({"name": name, "dtype": dt, "shape": list(arr.shape), "offset": offset,
                      "nbytes": len(data)})  # fmt: skip
        blobs.append(data)
        offset += len(data)
    header = json.dumps(
        {"kind": kind, "fastgru_version": __version__, "format": FORMAT_VERSION,
         "metadata": metadata, "arrays": table},
        allow_nan=True, sort_keys=True,
    ).encode("utf-8")  # fmt: skip
    body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header)) + header + b"".join(blobs)
    payload = body + hashlib.sha256(body).digest()

    mode = replacement_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_model(path, kind=None):
    """Read a model file written by :func:`write_model`.

    Parameters
    ----------
    path : str or Path
    kind : str, optional
        Expected kind; another kind raises :class:`ModelFileError`.

    Returns
    -------
    header : dict
        ``kind``, ``fastgru_version``, ``format`` and ``metadata``.
    arrays : dict of str to ndarray

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFileError
        The file is not a fastgru model, is truncated or corrupted, or has another kind.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a fastgru model file")
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    raw = path.read_bytes()
    where = f"{path}"
    if raw[:8] != MAGIC:
        raise ModelFileError(f"{where} is not a fastgru model file (no FASTGRU header)")
    if len(raw) < _PREFIX.size:
        raise ModelFileError(f"{where} is truncated ({len(raw)} bytes); save the model again")
    magic, version, header_len = _PREFIX.unpack_from(raw)
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{where} uses model-file format {version}, newer than this "
                             f"fastgru reads ({FORMAT_VERSION}); upgrade fastgru")  # fmt: skip
    if version < 1:
        raise ModelFileError(f"{where} has an invalid format version {version}")
    if len(raw) < _PREFIX.size + header_len + 32:
        raise ModelFileError(f"{where} is truncated ({len(raw)} bytes); save the model again")
    body, digest = raw[:-32], raw[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise ModelFileError(f"{where} is corrupted or truncated (checksum mismatch); save the "
                             "model again")  # fmt: skip
    try:
        header = json.loads(body[_PREFIX.size : _PREFIX.size + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{where} has an unreadable header ({exc})") from None
    if not (isinstance(header, dict) and isinstance(header.get("metadata"), dict)
            and isinstance(header.get("arrays", []), list)):  # fmt: skip
        raise ModelFileError(f"{where} has an unreadable header (no metadata or array table)")
    if kind is not None and header.get("kind") != kind:
        raise ModelFileError(f"{where} holds a {header.get('kind')}, not a {kind}")
    data = body[_PREFIX.size + header_len :]
    arrays = {}
    for entry in header.get("arrays", []):
        try:
            dt = entry.get("dtype")
            if dt not in _ALLOWED_DTYPES:
                raise ModelFileError(f"{where}: array {entry.get('name')!r} has dtype {dt!r}")
            off, nbytes = int(entry["offset"]), int(entry["nbytes"])
            shape = tuple(int(d) for d in entry["shape"])
            if (off < 0 or min(shape, default=0) < 0 or off + nbytes > len(data)
                    or np.prod(shape) * np.dtype(dt).itemsize != nbytes):  # fmt: skip
                raise ModelFileError(f"{where}: array {entry['name']!r} does not fit the file")
            arrays[entry["name"]] = np.frombuffer(data, dtype=dt, count=int(np.prod(shape)),
                                                  offset=off).reshape(shape).copy()  # fmt: skip
        except ModelFileError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{where} has an unreadable array table ({exc!r})") from None
    return header, arrays


# ------------------------------------------------------------------ GRURegressor
_FITTED = ("n_features_in_", "n_timesteps_in_", "n_outputs_", "loss_curve_", "validation_scores_",
           "best_loss_", "n_iter_", "device_", "_y_ndim", "_input_ndim")  # fmt: skip


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def regressor_state(model):
    """Metadata and arrays describing a fitted :class:`~fastgru.GRURegressor`."""
    params = model.get_params()
    seed = params["random_state"]
    if not (seed is None or isinstance(seed, numbers.Integral)):
        params["random_state"] = None  # a Generator's state is not worth keeping
    meta = {"params": {k: _jsonable(v) for k, v in params.items()}}
    # The network as fitted: the settings may have changed since (set_params), and a
    # file rebuilt from them did not load ("49 weights, but the stored settings need 307").
    spec = model.spec_
    meta["spec"] = {"n_features": int(spec.n_features), "units": _jsonable(spec.units),
                    "n_outputs": int(spec.n_outputs), "reset_after": bool(spec.reset_after),
                    "dtype": str(spec.dtype)}  # fmt: skip
    meta["fitted"] = {k: _jsonable(getattr(model, k)) for k in _FITTED if hasattr(model, k)}
    if hasattr(model, "feature_names_in_"):
        meta["fitted"]["feature_names_in_"] = [str(c) for c in model.feature_names_in_]
    rng = getattr(model, "_rng", None)
    if rng is not None and type(rng.bit_generator).__name__ == "PCG64":
        # Where the shuffles stand: partial_fit after load goes on as it would have.
        meta["rng_state"] = rng.bit_generator.state
    arrays = {"theta": model.theta_, "adam_m": model._opt_m, "adam_v": model._opt_v,
              "step": model._opt_step}  # fmt: skip
    return meta, arrays


def network_spec(meta, units, reset_after, dtype, n_step):
    """The network a stored regressor was fitted as (``meta``: :func:`regressor_state`'s):
    the ``spec`` stored, or, in files written before it was, the one the stored settings
    (``units``, ``reset_after``, ``dtype``) and ``n_step`` features per step give."""
    from .params import NetworkSpec

    stored = meta.get("spec")
    n_outputs = int(meta["fitted"]["n_outputs_"])
    if stored is None:
        return NetworkSpec(n_step, units, n_outputs, bool(reset_after), dtype)
    spec = NetworkSpec(int(stored["n_features"]), tuple(int(u) for u in stored["units"]),
                       int(stored["n_outputs"]), bool(stored["reset_after"]),
                       str(np.dtype(stored["dtype"])))  # fmt: skip
    if spec.dtype not in ("float32", "float64") or min(spec.units) < 1:
        raise ValueError(f"stored network {spec} is not one fastgru builds")
    if (spec.n_features, spec.n_outputs) != (n_step, n_outputs):
        raise ValueError(f"stored network has {spec.n_features} input(s) per step and "
                         f"{spec.n_outputs} output(s); the fitted attributes say {n_step} and "
                         f"{n_outputs}")  # fmt: skip
    return spec


def regressor_from_state(meta, arrays, where="model file"):
    """Rebuild a fitted :class:`~fastgru.GRURegressor` from :func:`regressor_state`'s output."""
    from .estimator import GRURegressor

    try:
        params = dict(meta["params"])
        if isinstance(params.get("units"), list):
            params["units"] = tuple(params["units"])
        model = GRURegressor(**params)
        units = model._check_params()
        fitted = meta["fitted"]
        for k, v in fitted.items():
            if k == "feature_names_in_":
                v = np.asarray(v, dtype=object)
            setattr(model, k, v)
        n_step = model.n_features_in_ if fitted.get("_input_ndim", 3) == 3 else 1
        spec = network_spec(meta, units, model.reset_after, model.dtype, n_step)
        theta = arrays["theta"]
        if theta.shape != (spec.n_params,):
            raise ModelFileError(f"{where}: {theta.size} weights, but the stored settings "
                                 f"need {spec.n_params}")  # fmt: skip
        model.spec_ = spec
        model.theta_ = np.ascontiguousarray(theta, dtype=spec.dtype)
        model._opt_m = np.ascontiguousarray(arrays["adam_m"], dtype=spec.dtype)
        model._opt_v = np.ascontiguousarray(arrays["adam_v"], dtype=spec.dtype)
        model._opt_step = np.ascontiguousarray(arrays["step"], dtype=np.int64)
        state = meta.get("rng_state")
        if state is not None:
            if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
                raise ValueError("rng_state is not a PCG64 state")
            bits = np.random.PCG64()
            bits.state = state
            model._rng = np.random.Generator(bits)
    except ModelFileError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{where} has incompatible or incomplete metadata ({exc})") from None
    return model
