"""Compile kernels in a second process while this one compiles others (cold cache only).

A first fit in a fresh environment compiles independent pieces: the training entry point
(``cpu._part_c``, ~5-7 s on the 2-core development machine); the GEMM, the weight packing,
the optimizer step and the epoch driver (``cpu._sgemm_c``, ``cpu._pack_c``,
``cpu._update_c``, ``cpu._train_epoch``); and, at the first ``predict``, the prediction
kernels. The kernels call one another through symbols or address slots, so each can be
compiled without the others. When Numba's cache holds none of them, :func:`start`
launches ``python -m fastgru._precompile DTYPE``, which compiles all but the training
entry point into the cache (the training pieces first, then prediction) while this
process compiles the entry point; this process then loads them from the cache instead of
compiling them (:func:`wait` before each use). For float32 (the default) the helper starts
at the import of :mod:`fastgru.estimator` (:func:`start_early`, before scikit-learn is
imported), so that it has often finished everything, prediction included, by the time
the entry point is compiled; other dtypes start it at the first fit. The prediction stage
runs at the lowest priority (``nice 19``): a fitted process that predicts before it is
done does not wait for it but runs its training entry point forward only, which gives the
same rows (``engine.predict_cpu``, :func:`pending`).

The helper process only ever compiles into Numba's on-disk cache (atomic file writes)
and prints a line per finished stage; if it fails or is slow, this process compiles what
it needs itself, as it would without it. ``FASTGRU_NO_PRECOMPILE=1`` turns it off.
"""

import os
import subprocess
import sys
import threading
import time

STAGES = ("train", "predict")
_CHILD_FLAG = "FASTGRU_PRECOMPILE_CHILD"
_helpers = {}


class _Helper:
    def __init__(self, dtype, lock=None):
        self.lock = lock
        self.owner = os.getpid()
        env = dict(os.environ, **{_CHILD_FLAG: "1"})
        flags = getattr(subprocess, "_args_from_interpreter_flags", list)()
        # Run from the directory holding this very package, so that ``-m`` imports it and
        # not a ``fastgru`` folder in the caller's working directory.
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.proc = subprocess.Popen(
            [sys.executable, *flags, "-m", "fastgru._precompile", dtype, lock or ""],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, cwd=here, text=True,
        )  # fmt: skip
        self.done = {s: threading.Event() for s in STAGES}
        try:
            threading.Thread(target=self._read, name="fastgru-precompile", daemon=True).start()
        except Exception:
            self.abandon()
            raise

    def _read(self):
        for line in self.proc.stdout:
            stage = line.strip()
            if stage in self.done:
                self.done[stage].set()
        for event in self.done.values():  # the helper ended: nothing more to wait for
            event.set()
        self.proc.wait()
        if self.lock is not None:
            _release(self.lock)

    def abandon(self):
        """Stop waiting for this helper (too slow, or stuck): end it; compile here."""
        for event in self.done.values():
            event.set()
        try:
            self.proc.kill()
        except OSError:
            pass
        if self.lock is not None:
            _release(self.lock)


def start(dtype):
    """Launch the helper for ``dtype`` ("float32"/"float64") if the kernels would be
    compiled from scratch and the compiled code can be cached; otherwise do nothing."""
    dtype = str(dtype)
    if dtype in _helpers or os.environ.get(_CHILD_FLAG) or not sys.executable:
        return
    if getattr(sys, "frozen", False):  # sys.executable is the application, not Python
        return
    if os.environ.get("FASTGRU_NO_PRECOMPILE", "") not in ("", "0"):
        return
    from . import cpu

    if cpu.kernels_compiled(dtype) is not False or not cpu.kernels_cacheable():
        return
    lock = _claim(cpu.cache_directory(), dtype)
    if lock is None:
        return
    try:
        _helpers[dtype] = _Helper(dtype, lock)
    except Exception:  # no process or thread can be started here: compile in this one
        _release(lock)
        _helpers[dtype] = None


def start_early():
    """:func:`start` for float32 (the default dtype), from the import of the estimator
    module: on a cold cache the helper then compiles while the caller is still importing
    scikit-learn and loading its data (~2 s on the development machine), not only from
    the first ``fit``. Never raises; a warm cache costs one look at its index."""
    try:
        start("float32")
    except Exception:  # an import-time convenience: the first fit starts it if need be
        pass


#: A claim older than this is taken to be left by a helper that died.
_STALE_SECONDS = 900


def _claim(directory, dtype):
    """Create the lock file that lets one helper per cache directory run at a time (e.g.
    not one per worker of a ``GridSearchCV(n_jobs=...)``); its path, or ``None`` if another
    process holds it or it cannot be made."""
    if directory is None:
        return None
    path = os.path.join(directory, f"fastgru-precompile-{dtype}.lock")
    for _ in range(2):
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return path
        except FileExistsError:
            try:
                if time.time() - os.path.getmtime(path) < _STALE_SECONDS:
                    return None
                os.remove(path)
            except OSError:
                return None
        except OSError:
            return None
    return None


def _release(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _cpu_ticks(pid):
    """CPU time used so far by process ``pid`` (clock ticks; Linux), or ``None``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, ValueError, IndexError):
        return None


def wait(dtype, stage, timeout=300.0, stall=20.0):
    """Block until the helper of ``dtype`` has finished ``stage`` or ended; return at once
    if there is none (or it belongs to the parent of a forked process). A helper still
    busy after ``timeout`` seconds, or that has used no CPU time for ``stall`` seconds
    (stopped, or starved: where the system tells), is abandoned: this process compiles for
    itself.

    The stages run in order ("train", then "predict"): a process that predicts before the
    helper has finished "train" (a model loaded, never fitted here) does not wait for both,
    but compiles the prediction kernels itself, which takes less time."""
    helper = _own_helper(dtype)
    if helper is None:
        return
    earlier = STAGES[: STAGES.index(stage)]
    if any(not helper.done[s].is_set() for s in earlier):
        return
    event = helper.done[stage]
    start = time.monotonic()
    deadline = start + timeout
    ticks, moved = _cpu_ticks(helper.proc.pid), start
    while not event.wait(0.25):
        now = time.monotonic()
        latest = _cpu_ticks(helper.proc.pid)
        if latest != ticks:
            ticks, moved = latest, now
        if now > deadline or (ticks is not None and now - moved > stall):
            helper.abandon()
            return


def pending(dtype, stage):
    """Whether this process has a helper for ``dtype`` that has not finished ``stage``."""
    helper = _own_helper(dtype)
    return helper is not None and not helper.done[stage].is_set()


def _own_helper(dtype):
    """This process's helper for ``dtype``, or ``None`` (none, or the one a parent of this
    forked process started)."""
    if not _helpers:  # the usual case, before str(dtype) (~5 us per predict)
        return None
    helper = _helpers.get(str(dtype))
    if helper is None or helper.owner != os.getpid():
        return None
    return helper


if hasattr(os, "register_at_fork"):
    # A forked child inherits the table but not the thread that reads the helper's output.
    os.register_at_fork(after_in_child=_helpers.clear)


def _compile_in_this_process(dtype):
    """The helper's work for ``dtype``: the GEMM, packing, the optimizer step and the epoch
    driver's signature, then prediction."""
    import numba
    import numpy as np
    from llvmlite import binding as llvm

    from . import cpu
    from .engine import CPURunner, OptimizerState, TrainConfig, predict_cpu
    from .params import NetworkSpec, init_params

    ft = numba.types.float32 if dtype == "float32" else numba.types.float64
    name = cpu._entry_name("part", ft)
    if name not in cpu._ENTRIES:
        # The driver calls the training entry point by this name; the parent process
        # registers the real one before it loads the driver. This process never runs the
        # driver, so any valid address stands in for it here.
        llvm.add_symbol(name, cpu._SLOTS.ctypes.data)
        cpu._ENTRIES[name] = None
    # The types of a driver call do not depend on the network's size: a tiny network
    # gives the very signature a real fit uses.
    spec = NetworkSpec(n_features=1, units=(2,), dtype=dtype)
    theta = init_params(spec, np.random.default_rng(0))
    X = np.zeros((16, 3, 1), dtype)
    y = np.zeros((16, 1), dtype)
    # prepare() compiles the GEMM, packing and the optimizer step, then the driver (the
    # training entry point is the stand-in above); it never runs the driver.
    CPURunner(
        spec, theta, OptimizerState.zeros(theta.size, theta.dtype), TrainConfig(batch_size=16), X, y
    ).prepare()
    print("train", flush=True)
    # The parent's first epoch runs now, and its first predictions do not wait for this
    # stage (engine.predict_cpu runs the training entry point forward only meanwhile): the
    # epoch should have the CPUs, not share them with this compilation.
    if hasattr(os, "nice"):
        try:
            os.nice(19)
        except OSError:
            pass
    predict_cpu(spec, theta, X[:1], n_workers=1)  # the driver (the same in every thread)
    print("predict", flush=True)


if __name__ == "__main__":
    try:
        _compile_in_this_process(sys.argv[1] if len(sys.argv) > 1 else "float32")
    finally:
        if len(sys.argv) > 2 and sys.argv[2]:
            _release(sys.argv[2])  # also when the parent has exited before us
