"""Scalar gate math, written once and compiled for the CPU (and for CUDA in ``cuda.py``).

These are plain Python functions so that both ``numba.njit`` and ``numba.cuda.jit``
can compile the same source: the CPU and GPU engines then agree on the formulas.
"""

import math


def sigmoid(x):
    # Branch on the sign so exp never overflows: both halves are exact to rounding.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def tanh(x):
    return math.tanh(x)
