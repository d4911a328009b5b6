"""Defaults and Numba flags, read from one place.

``NJIT_OPTIONS`` is used by every CPU kernel. ``error_model="numpy"`` drops the
zero-division check Numba puts on every ``/`` by default; that check stops the gate
loops from vectorising (measured 9 us vs 1.25 us per step on the seed workload).
``cache=True`` lets a later process load the compiled kernels in well under a second
instead of recompiling them (several seconds). Set ``FASTGRU_NO_CACHE=1`` to disable
on-disk caching (e.g. on a read-only install). Numba keys its cache on ``cpu.py`` alone:
after changing a value below that the kernels read at compile time (``GEMM_KC``), clear
the cache (``NUMBA_CACHE_DIR``, or ``fastgru/__pycache__``). With an empty cache, importing
the estimator (or else the first CPU fit) starts a helper process that compiles part of the
kernels alongside (:mod:`fastgru._precompile`); ``FASTGRU_NO_PRECOMPILE=1`` turns it off.
"""

import os


def _probe():  # a function of this package for Numba to find a cache folder for
    pass


def _cache_usable():
    """Whether Numba finds somewhere to cache this package's kernels (the package's
    ``__pycache__``, ``NUMBA_CACHE_DIR`` or the user's cache folder, writable). Without one,
    ``cache=True`` made the first compilation fail ("cannot cache function ...: no locator
    available"): then the kernels are compiled in every process, with a warning."""
    try:
        from numba.core.caching import FunctionCache
    except ImportError:  # Numba internals moved: let Numba decide
        return True
    try:
        FunctionCache(_probe)
    except RuntimeError:
        import warnings

        warnings.warn("fastgru: Numba has no writable folder to cache the compiled kernels "
                      "in, so every process compiles them (~10-20 s). Set NUMBA_CACHE_DIR to "
                      "a writable folder, or FASTGRU_NO_CACHE=1 to silence this.",
                      RuntimeWarning, stacklevel=2)  # fmt: skip
        return False
    except Exception:  # anything else: let Numba decide
        return True
    return True


CACHE = os.environ.get("FASTGRU_NO_CACHE", "") not in ("1", "true", "yes") and _cache_usable()

NJIT_OPTIONS = {"cache": CACHE, "error_model": "numpy", "nogil": True}

#: The kernel with a ``prange`` loop (the epoch driver).
PARALLEL_OPTIONS = {**NJIT_OPTIONS, "parallel": True}

#: Depth of the k-panels of the float32 matrix products (``cpu.gemm``): a 64-row panel of
#: the right-hand operand stays in L1 while every row block of the left one passes over it
#: (weight gradients with k = T * B went from ~35 to ~75 GFLOP/s).
GEMM_KC = 64

#: Fewest sequences per part when a training batch is split across threads (one part per
#: Numba thread), and the most sequences per thread for which a batch is split into parts
#: of one sequence instead (``engine.default_parts``). A part of 2-8 sequences computes 8
#: columns (the batch-as-vector layout pads it to a whole vector): ~2.3 ms for the seed
#: network, against ~0.42 ms for one sequence (the matrix-vector path). So a batch of up
#: to 4 sequences per thread trains fastest as parts of one sequence (batch 4: 0.84 ms a
#: batch on two threads against 2.3 ms as two parts of 2; batch 8: 1.7 ms against 2.3).
#: The seed batch of 32 gives 2 parts of 16. Prediction splits the same way: up to 4
#: windows per thread go one at a time (8 windows of the seed network: ~0.6 ms on one
#: thread against ~0.8 ms as a chunk, which pads to 8 whatever its size).
MIN_PART_ROWS = 4

#: Most sequences per part: a larger batch is split into more parts than threads (whole
#: rounds of the threads), each thread taking its parts in turn. A part's arrays grow with
#: its width (~4.6 MB for 16 sequences of the seed network) and past ~32 sequences they
#: leave the caches: epochs of 4,096 seed windows at batch 128 took 0.82 s as 2 parts of
#: 64 and 0.64 s as 4 of 32; at batch 512 1.13 s as 2 parts, 0.76 s as 16 (session 6).
MAX_PART_ROWS = 32

#: Loss codes understood by the kernels.
LOSSES = {"mse": 0, "mae": 1, "huber": 2}

#: Optimizer codes understood by the kernels.
OPTIMIZERS = {"adam": 0, "sgd": 1}

#: Keras' defaults for Adam.
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-7

#: Most rows per chunk when predicting (fewer inputs are shared evenly by the threads:
#: ``engine.predict_cpu``); bounds the work memory of ``predict`` (per worker,
#: about ``T * chunk * (F + 6 H) * itemsize``: 3.9 MB for the seed network in float32).
#: 16 to 256 measured the same speed on the seed workload; smaller keeps the peak lower.
PREDICT_CHUNK = 32
