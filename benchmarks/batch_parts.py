"""One training part and whole epochs at several batch sizes, on the seed network (float32).

Prints:

* the loss and gradient of one part of ``--part`` seed windows in this thread
  (``cpu.network_loss_grad``: packing, forward, BPTT, head; smallest of 7 rounds of 20);
* the epoch time of ``CPURunner`` on the first ``--windows`` seed windows for each batch
  size in ``--batches``, with the number of parts ``engine.default_parts`` chose (smallest
  of 2 epochs after a warm-up).

These are the session-6 figures of ``RESULTS.md`` ("one part of 16 windows", the small and
large batch rows). Run::

    python benchmarks/batch_parts.py [--part 16] [--windows 1024] [--batches 1 4 8 16 128 512]
"""

import argparse
import time

import numpy as np
from compare import SEED_UNITS, seed_data

from fastgru import cpu
from fastgru.engine import CPURunner, OptimizerState, TrainConfig
from fastgru.params import NetworkSpec, init_params


def part_ms(X, y, spec, theta, B):
    layout, head, _ = spec.layout()
    T = X.shape[1]
    Xt = np.ascontiguousarray(X[:B].transpose(1, 0, 2))
    yb = np.ascontiguousarray(y[:B])
    ws = np.zeros(cpu.workspace_size(layout, head, T, B), np.float32)
    grad = np.zeros_like(theta)
    args = (theta, layout, head, spec.reset_after, Xt, yb, 0, 1.0, ws, grad)
    cpu.network_loss_grad(*args)
    best = np.inf
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(20):
            cpu.network_loss_grad(*args)
        best = min(best, (time.perf_counter() - t) / 20)
    return best * 1e3


def epoch_s(X, y, spec, B):
    theta = init_params(spec, np.random.default_rng(0))
    opt = OptimizerState.zeros(theta.size, theta.dtype)
    runner = CPURunner(spec, theta, opt, TrainConfig(epochs=1, batch_size=B), X, y)
    order = np.random.default_rng(1).permutation(len(X))
    runner.epoch(order[: 2 * B])
    best = np.inf
    for _ in range(2):
        t = time.perf_counter()
        runner.epoch(order)
        best = min(best, time.perf_counter() - t)
    return best, runner.n_parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", type=int, default=16)
    ap.add_argument("--windows", type=int, default=1024)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16, 128, 512])
    args = ap.parse_args()
    X, y = seed_data()
    spec = NetworkSpec(1, SEED_UNITS, 1, False, "float32")
    theta = init_params(spec, np.random.default_rng(0))
    print(f"one part of {args.part} windows: {part_ms(X, y, spec, theta, args.part):.3f} ms")
    Xn, yn = X[: args.windows], y[: args.windows]
    for B in args.batches:
        s, parts = epoch_s(Xn, yn, spec, B)
        print(f"epoch of {len(Xn)} windows, batch {B} ({parts} parts): {s:.3f} s")


if __name__ == "__main__":
    main()
