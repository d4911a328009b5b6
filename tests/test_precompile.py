"""The helper process that compiles the epoch driver and the prediction kernels while the
first fit compiles the training entry point (cold cache only)."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from fastgru import GRURegressor, _precompile, cpu


class _FakeHelper:
    started = []

    def __init__(self, dtype, lock=None):
        _FakeHelper.started.append(dtype)


@pytest.fixture
def fake_helper(monkeypatch, tmp_path):
    _FakeHelper.started = []
    monkeypatch.setattr(_precompile, "_Helper", _FakeHelper)
    monkeypatch.setattr(_precompile, "_helpers", {})
    monkeypatch.delenv("FASTGRU_NO_PRECOMPILE", raising=False)
    monkeypatch.delenv("FASTGRU_PRECOMPILE_CHILD", raising=False)
    monkeypatch.setattr(cpu, "kernels_cacheable", lambda: True)
    monkeypatch.setattr(cpu, "cache_directory", lambda: str(tmp_path))
    return _FakeHelper.started


def test_helper_starts_once_and_only_for_a_cold_cache(fake_helper, monkeypatch):
    monkeypatch.setattr(cpu, "kernels_compiled", lambda *dtype: True)
    _precompile.start("float32")
    assert fake_helper == []
    monkeypatch.setattr(cpu, "kernels_compiled", lambda *dtype: False)
    _precompile.start("float32")
    _precompile.start("float32")
    _precompile.start("float64")
    assert fake_helper == ["float32", "float64"]


@pytest.mark.parametrize("env", ["FASTGRU_NO_PRECOMPILE", "FASTGRU_PRECOMPILE_CHILD"])
def test_helper_switched_off(fake_helper, monkeypatch, env):
    monkeypatch.setattr(cpu, "kernels_compiled", lambda *dtype: False)
    monkeypatch.setenv(env, "1")
    _precompile.start("float32")
    assert fake_helper == []


def test_no_helper_when_nothing_would_be_cached(fake_helper, monkeypatch):
    monkeypatch.setattr(cpu, "kernels_compiled", lambda *dtype: False)
    monkeypatch.setattr(cpu, "kernels_cacheable", lambda: False)
    _precompile.start("float32")
    assert fake_helper == []


def test_one_helper_per_cache_directory(fake_helper, monkeypatch, tmp_path):
    monkeypatch.setattr(cpu, "kernels_compiled", lambda *dtype: False)
    _precompile.start("float32")
    lock = tmp_path / "fastgru-precompile-float32.lock"
    assert fake_helper == ["float32"] and lock.exists()
    monkeypatch.setattr(_precompile, "_helpers", {})  # as another process would see it
    _precompile.start("float32")
    assert fake_helper == ["float32"]
    os.utime(lock, (0, 0))  # left by a helper that died long ago
    _precompile.start("float32")
    assert fake_helper == ["float32", "float32"]


def test_wait_returns_when_the_helper_fails(tmp_path):
    lock = tmp_path / "claim.lock"
    lock.touch()
    helper = _precompile._Helper("no-such-dtype", str(lock))  # the child raises at once
    assert helper.done["train"].wait(120) and helper.done["predict"].wait(1)
    assert helper.proc.wait(30) != 0
    assert not lock.exists()
    helper = _precompile._Helper("no-such-dtype")  # the child raises at once
    assert helper.done["train"].wait(120) and helper.done["predict"].wait(1)
    assert helper.proc.wait(30) != 0


@pytest.mark.slow
def test_cold_fit_loads_what_the_helper_compiled(tmp_path):
    """A fresh process with an empty cache: the driver and the prediction kernels come
    from the helper (cache hits), and the predictions are the ones of a fit here, also the
    first one, which may run before the helper is done (through the training entry
    point)."""
    code = """
import collections, json, sys
from numba.core import event
compiled = collections.Counter()  # fastgru's own functions compiled in this process
class Listener(event.Listener):
    def on_start(self, ev):
        fn = getattr(ev.data["dispatcher"], "py_func", None)
        if fn is not None and fn.__module__.startswith("fastgru"):
            compiled[fn.__name__] += 1
    def on_end(self, ev):
        pass
event.register("numba:compile", Listener())
import numpy as np
from fastgru import GRURegressor, cpu
rng = np.random.default_rng(5)
X = rng.standard_normal((40, 6, 2)); y = X[:, -1, 0] - X[:, 0, 1]
from fastgru import _precompile
m = GRURegressor(units=(4, 3), epochs=2, batch_size=16, random_state=1, device="cpu")
first = m.fit(X, y).predict(X[:7])  # perhaps through the training entry point
_precompile.wait("float32", "predict")
pred = m.predict(X[:7])
hits = lambda d: sum(d.stats.cache_hits.values())
print(json.dumps({"pred": pred.tolist(), "first": first.tolist(),
                  "driver": hits(cpu._train_epoch), "predict": hits(cpu._predict_chunks),
                  "compiled": compiled}))
"""
    env = {k: v for k, v in os.environ.items() if k != "FASTGRU_NO_PRECOMPILE"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, timeout=600)  # fmt: skip
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["driver"] == 1 and res["predict"] == 1
    # Compile time is user time: this process compiles only what the training entry point
    # calls, each function once (a second signature, e.g. a flag typed as a literal, costs
    # a second compilation), and nothing that the helper compiled for it.
    compiled = res["compiled"]
    assert compiled and set(compiled.values()) == {1}, compiled
    helper_share = {"_train_epoch", "_predict_chunks", "pack_weights", "pack_transposes",
                    "_apply_update", "_tile", "_outer_c"}  # fmt: skip
    assert not helper_share & set(compiled), compiled

    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 6, 2))
    y = X[:, -1, 0] - X[:, 0, 1]
    m = GRURegressor(units=(4, 3), epochs=2, batch_size=16, random_state=1, device="cpu")
    np.testing.assert_array_equal(np.array(res["pred"]), m.fit(X, y).predict(X[:7]))
    np.testing.assert_array_equal(np.array(res["first"]), np.array(res["pred"]))


def test_kernels_compiled_reads_the_cache_index(tmp_path):
    """A new process tells from Numba's cache index which dtypes' kernels are compiled
    (the index keys grew a third item in Numba 0.68: the answer had become "cannot tell"
    for every cache that existed)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), FASTGRU_NO_PRECOMPILE="1")
    env.pop("FASTGRU_NO_CACHE", None)
    fit = ("import numpy as np\n"
           "from fastgru import GRURegressor\n"
           "r = GRURegressor(units=3, epochs=1, device='cpu')\n"
           "r.fit(np.ones((8, 3, 1)), np.ones(8))\n")  # fmt: skip
    ask = ("from fastgru import cpu\n"
           "print(cpu.kernels_compiled('float32'), cpu.kernels_compiled('float64'))\n")  # fmt: skip
    for code in (fit, ask):
        done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


def test_no_writable_cache_folder_compiles_without_caching(tmp_path):
    """Where Numba finds no folder to cache in (simulated: only the zip-file locator), the
    kernels compile without caching, with a warning that names the fix; they used to fail
    to compile ("cannot cache function ...: no locator available")."""
    code = ("import numpy as np\n"
            "from fastgru import GRURegressor, cpu\n"
            "assert not cpu.kernels_cacheable()\n"
            "r = GRURegressor(units=3, epochs=1, device='cpu', random_state=0)\n"
            "r.fit(np.ones((8, 3, 1)), np.ones(8))\n"
            "print(r.predict(np.ones((1, 3, 1)))[0])\n")  # fmt: skip
    env = dict(os.environ, NUMBA_CACHE_LOCATOR_CLASSES="_ZipCacheLocator",
               FASTGRU_NO_PRECOMPILE="1")  # fmt: skip
    env.pop("FASTGRU_NO_CACHE", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Numba has no writable folder to cache the compiled kernels" in done.stderr
    assert "Set NUMBA_CACHE_DIR to a writable folder" in done.stderr
    assert np.isfinite(float(done.stdout))


@pytest.fixture
def sleeper():
    """A process standing in for a helper that never finishes; killed after the test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield proc
    proc.kill()
    proc.wait()


def _helper_like(proc, owner):
    helper = object.__new__(_precompile._Helper)
    helper.proc, helper.owner, helper.lock = proc, owner, None
    helper.done = {s: __import__("threading").Event() for s in _precompile.STAGES}
    return helper


def test_wait_ignores_the_helper_of_a_parent_process(monkeypatch, sleeper):
    helper = _helper_like(sleeper, owner=os.getpid() + 1)  # as seen after a fork
    monkeypatch.setitem(_precompile._helpers, "float32", helper)
    t = time.perf_counter()
    _precompile.wait("float32", "predict", timeout=20)
    assert time.perf_counter() - t < 1 and sleeper.poll() is None


def test_a_stuck_helper_is_abandoned_once(monkeypatch, sleeper):
    helper = _helper_like(sleeper, owner=os.getpid())
    monkeypatch.setitem(_precompile._helpers, "float32", helper)
    t = time.perf_counter()
    _precompile.wait("float32", "train", timeout=0.5)
    assert 0.4 < time.perf_counter() - t < 5
    assert sleeper.wait(10) != 0  # killed
    t = time.perf_counter()
    _precompile.wait("float32", "predict", timeout=20)  # no second wait
    assert time.perf_counter() - t < 1


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="no /proc")
def test_a_helper_that_uses_no_cpu_is_abandoned_early(monkeypatch, sleeper):
    """A stopped (or starved) helper is not waited for until the timeout: after ``stall``
    seconds without CPU time it is abandoned."""
    helper = _helper_like(sleeper, owner=os.getpid())
    monkeypatch.setitem(_precompile._helpers, "float32", helper)
    t = time.perf_counter()
    _precompile.wait("float32", "train", timeout=60, stall=1.0)
    assert 0.9 < time.perf_counter() - t < 10
    assert sleeper.wait(10) != 0  # killed


def test_a_predict_before_the_training_stage_does_not_wait(monkeypatch, sleeper):
    """A process that predicts before the helper has finished the training kernels (a
    model loaded, not fitted) compiles the prediction kernels itself rather than wait for
    both stages; once the training stage is done, it waits for the prediction stage."""
    helper = _helper_like(sleeper, owner=os.getpid())
    monkeypatch.setitem(_precompile._helpers, "float32", helper)
    t = time.perf_counter()
    _precompile.wait("float32", "predict", timeout=20)
    assert time.perf_counter() - t < 1 and sleeper.poll() is None
    helper.done["train"].set()
    t = time.perf_counter()
    _precompile.wait("float32", "predict", timeout=0.5)  # waits, then abandons it
    assert 0.4 < time.perf_counter() - t < 5
    assert sleeper.wait(10) != 0


_IMPORT_ONLY = """
import json, sys
import fastgru.estimator
from fastgru import _precompile
helper = _precompile._helpers.get("float32")
print(json.dumps({"started": helper is not None, "others": sorted(_precompile._helpers)}))
if helper is not None:
    helper.abandon()  # the test needs only to see it start
"""


def test_importing_the_estimator_starts_the_float32_helper_on_a_cold_cache(tmp_path):
    """On a cold cache the helper starts at the import of the estimator module, before
    scikit-learn loads (not only at the first fit); switched off, nothing starts. (A warm
    cache starts nothing: ``start`` is what runs, tested above.)"""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTGRU_NO_PRECOMPILE", "FASTGRU_PRECOMPILE_CHILD")}  # fmt: skip
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    for off in (False, True):
        if off:
            env["FASTGRU_NO_PRECOMPILE"] = "1"
        out = subprocess.run([sys.executable, "-c", _IMPORT_ONLY], env=env,
                             capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res == {"started": not off, "others": [] if off else ["float32"]}
        assert not list(tmp_path.rglob("*.lock"))  # the claim went with the helper


def test_a_fitted_cold_process_predicts_through_the_training_entry_point_meanwhile(
    monkeypatch, sleeper
):
    """Once the training entry point is loaded and while the helper is still compiling the
    prediction kernels, ``predict_cpu`` does not wait: it runs the training entry point
    forward only, which gives the very rows of the prediction kernels."""
    from fastgru.engine import predict_cpu
    from fastgru.params import NetworkSpec, init_params

    spec = NetworkSpec(n_features=2, units=(6, 5), n_outputs=1)
    theta = init_params(spec, np.random.default_rng(8))
    X = np.random.default_rng(9).standard_normal((70, 9, 2)).astype(np.float32)
    cpu.ensure_entries(theta.dtype, ("gemm", "part", "pack"))
    ref = predict_cpu(spec, theta, X)
    calls = []
    real = cpu.predict_by_parts
    monkeypatch.setattr(cpu, "predict_by_parts", lambda *a: calls.append(1) or real(*a))
    helper = _helper_like(sleeper, owner=os.getpid())
    helper.done["train"].set()
    monkeypatch.setitem(_precompile._helpers, "float32", helper)
    t = time.perf_counter()
    out = predict_cpu(spec, theta, X)
    assert time.perf_counter() - t < 5 and sleeper.poll() is None and calls
    np.testing.assert_array_equal(out, ref)
    helper.done["predict"].set()  # compiled: the prediction kernels again
    np.testing.assert_array_equal(predict_cpu(spec, theta, X), ref)
    assert len(calls) == 1
