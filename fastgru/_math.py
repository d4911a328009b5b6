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


# Optimizer steps on element ``i`` of flat arrays, in place (Keras' forms). The CPU engine
# loops over them and each CUDA thread takes its share; the stores and re-reads in the
# dtype of the arrays are part of the definition (the engines agree bit for bit on
# float64 under the simulator; on a GPU the compiler may fuse multiply-adds, so to
# rounding). ``g`` is the element's gradient, already scaled by the clipping factor.
def adam_step_size(lr, beta1, beta2, step):
    """Adam's step size with the bias corrections folded in; ``step`` counts from 1."""
    return lr * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)


def adam_element(theta, m, v, i, g, alpha, beta1, beta2, eps):
    m[i] = beta1 * m[i] + (1.0 - beta1) * g
    v[i] = beta2 * v[i] + (1.0 - beta2) * g * g
    theta[i] -= alpha * m[i] / (math.sqrt(v[i]) + eps)


def sgd_element(theta, velocity, i, g, lr, momentum, nesterov):
    vel = momentum * velocity[i] - lr * g
    velocity[i] = vel
    if nesterov:
        theta[i] += momentum * vel - lr * g
    else:
        theta[i] += vel


def clip_scale(norm, clip_norm):
    """Factor that brings a gradient's global norm down to ``clip_norm`` (1 if within, or
    if ``clip_norm`` is 0: no clipping)."""
    if clip_norm > 0.0 and norm > clip_norm:
        return clip_norm / norm
    return 1.0
