"""Defaults and Numba flags, read from one place.

``NJIT_OPTIONS`` is used by every CPU kernel. ``error_model="numpy"`` drops the
zero-division check Numba puts on every ``/`` by default; that check stops the gate
loops from vectorising (measured 9 us vs 1.25 us per step on the seed workload).
``cache=True`` lets a later process load the compiled kernels in well under a second
instead of recompiling them (several seconds). Set ``FASTGRU_NO_CACHE=1`` to disable
on-disk caching (e.g. on a read-only install).
"""

import os

CACHE = os.environ.get("FASTGRU_NO_CACHE", "") not in ("1", "true", "yes")

NJIT_OPTIONS = {"cache": CACHE, "error_model": "numpy", "nogil": True}

#: Loss codes understood by the kernels.
LOSSES = {"mse": 0, "mae": 1, "huber": 2}

#: Optimizer codes understood by the kernels.
OPTIMIZERS = {"adam": 0, "sgd": 1}

#: Keras' defaults for Adam.
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-7

#: Rows per chunk when predicting; bounds the work memory of ``predict``.
PREDICT_CHUNK = 512
