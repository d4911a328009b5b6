"""Where a single window's time goes: the pieces of one GRU layer at batch 1, float32.

Times, inside compiled loops (no Python per call):

* ``cpu.gemm`` of one row (a matrix-vector product) for a few shapes, per call, and the
  register tile it calls alone;
* the three recurrent products of 100 steps (seed convention, H = 50);
* the two elementwise gate passes of 100 steps;
* the whole ``cpu.gru_forward`` of one layer with 50 input features (input projection
  included), 100 steps.

Best of 3 repetitions. Run::

    python benchmarks/step_parts.py
"""

import time

import numpy as np
from numba import njit

from fastgru import cpu
from fastgru.cpu import ew_fwd_seed1, ew_fwd_seed2, gemm

H, T = 50, 100
_rng = np.random.default_rng(0)


def guarded(shape, scale=0.1):
    """A random float32 array followed by readable padding (the GEMM reads whole vectors)."""
    n = int(np.prod(shape))
    buf = np.zeros(n + 64, np.float32)
    a = buf[:n].reshape(shape)
    a[:] = _rng.standard_normal(shape) * scale
    return a


@njit
def _gemm_loop(h, U, C, n):
    for _ in range(n):
        gemm(h, U, C, True)


@njit
def _tile_loop(h, U, C, n):
    # The register tile alone (one row, 7 vectors), without gemm's call and set-up.
    a, b, c, K, N = h.ctypes.data, U.ctypes.data, C.ctypes.data, U.shape[0], U.shape[1]
    for _ in range(n):
        cpu._t1_7(a, 1, 1, b, N, c, N, 0, K, 1, N)


@njit
def _recurrent_products(Hs, Uc, G, AUX, n):
    # As gru_forward for one sequence: the r|z product, then the n product on r * h.
    for _ in range(n):
        for t in range(T):
            gemm(Hs[t].T, Uc[:, : 2 * H], G[t, : 2 * H].T, True)
            gemm(AUX[t].T, Uc[:, 2 * H :], G[t, 2 * H :].T, True)


@njit
def _gate_passes(Hs, G, AUX, n):
    for _ in range(n):
        for t in range(T):
            ew_fwd_seed1(G[t, :H], G[t, H : 2 * H], Hs[t], AUX[t])
            ew_fwd_seed2(G[t, 2 * H :], G[t, H : 2 * H], Hs[t], Hs[t + 1])


@njit
def _layer_forward(X, Wc, Uc, UTc, WTc, bias, Hs, G, AUX, n):
    for _ in range(n):
        cpu.gru_forward(X, Wc, Uc, UTc, WTc, bias, False, Hs, G, AUX)


def best_us(fn, *args, n=1000):
    fn(*args, 1)
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        fn(*args, n)
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e6


def main():
    cpu.ensure_entries(np.dtype(np.float32), ("rows",))
    print("one-row products (cpu.gemm, accumulate):")
    for K, N in ((50, 50), (50, 100), (50, 150), (100, 50)):
        us = best_us(_gemm_loop, guarded((1, K)), guarded((K, N)), guarded((1, N)), n=100_000)
        print(f"  1 x {K} x {N}: {us * 1000:6.0f} ns  {2 * K * N / us / 1e3:5.1f} GFLOP/s")
    us = best_us(_tile_loop, guarded((1, H)), guarded((H, H)), guarded((1, H)), n=100_000)
    print(f"  1 x {H} x {H}, the tile alone: {us * 1000:6.0f} ns")
    # The packed blocks of gru_forward (Wc, Uc, UTc, WTc, bias), one sequence (Bv = 1).
    Wc, Uc, UTc, WTc = (guarded((H, 3 * H)), guarded((H, 3 * H)), guarded((3 * H, H)),
                        guarded((3 * H, H)))  # fmt: skip
    bias = guarded((4, H))
    X = guarded((T, H, 1), 1.0)
    Hs, G, AUX = guarded((T + 1, H, 1)), guarded((T, 3 * H, 1)), guarded((T, H, 1))
    print(f"one layer, B = 1, H = {H}, T = {T} (seed convention):")
    print(f"  3 recurrent products x T: {best_us(_recurrent_products, Hs, Uc, G, AUX):6.1f} us")
    print(f"  2 gate passes x T:        {best_us(_gate_passes, Hs, G, AUX):6.1f} us")
    print(f"  gru_forward, F = {H}:      "
          f"{best_us(_layer_forward, X, Wc, Uc, UTc, WTc, bias, Hs, G, AUX):6.1f} us")  # fmt: skip


if __name__ == "__main__":
    main()
