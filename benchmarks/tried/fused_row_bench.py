"""One GRU layer over a single sequence (B = 1, T = 100, F = 1, float32): the general path
(``cpu.gru_forward``: five kernel calls a step) against the fused kernel of
``fused_row_kernel.patch`` (``cpu.gru_forward_one``: the whole recurrence in one call), by
hidden size. Needs the patch applied to the code it was written against (da02939; the
kernels changed since)::

    git worktree add /tmp/fastgru-da02939 da02939 && cd /tmp/fastgru-da02939
    git apply benchmarks/tried/fused_row_kernel.patch
    PYTHONPATH=. python benchmarks/tried/fused_row_bench.py

Prints the smallest of 15 interleaved rounds of 200 calls, in microseconds per layer.
"""

import sys
import time
from pathlib import Path

from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from step_parts import guarded  # noqa: E402 (benchmarks/step_parts.py)

from fastgru import cpu  # noqa: E402

T = 100


@njit
def _run(X, W, U, bias, ra, Hs, G, AUX, fused, n):
    for _ in range(n):
        if fused:
            cpu.gru_forward_one(X, W, U, bias, ra, Hs, G, AUX)
        else:
            cpu.gru_forward(X, W, U, bias, ra, Hs, G, AUX)


def main():
    print("H  convention  U (KB)  general us  fused us")
    for H in (32, 40, 48, 50, 56, 64):
        for ra in (False, True):
            X, W, bias = guarded((T, 1, 1), 1.0), guarded((3, 1, H), 0.3), guarded((4, H), 0.3)
            U = guarded(6 * H * H, 0.3)[: 3 * H * H].reshape(3, H, H)  # readable memory after
            Hs, G, AUX = (guarded(s, 0.3) for s in ((T + 1, 1, H), (3, T, 1, H), (T, 1, H)))
            times = {False: [], True: []}
            for fused in times:
                _run(X, W, U, bias, ra, Hs, G, AUX, fused, 5)
            for _ in range(15):
                for fused in times:
                    t = time.perf_counter()
                    _run(X, W, U, bias, ra, Hs, G, AUX, fused, 200)
                    times[fused].append((time.perf_counter() - t) / 200 * 1e6)
            conv = "reset-after" if ra else "seed"
            print(f"{H:3d} {conv:11s} {3 * H * H * 4 / 1024:7.1f} {min(times[False]):10.1f}"
                  f" {min(times[True]):9.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
