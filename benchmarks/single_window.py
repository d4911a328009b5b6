"""Latency of one seed-shaped window (1 x 100 x 1) through each layer of the stack.

A ``GRUForecaster``-sized network (GRU(50) -> GRU(50) -> Dense(1), float32) is fitted for
one epoch on 64 random windows, then one window is predicted through:

* ``estimator`` -- ``GRURegressor.predict`` (input checks, device choice, float64 out);
* ``predict_cpu`` -- ``fastgru.engine.predict_cpu`` (work buffers, no input checks);
* ``kernel`` -- ``fastgru.cpu.predict`` with preallocated buffers (the compiled code).

Each is timed in ``--rounds`` interleaved rounds of ``--calls`` calls; the script prints
the median of each round and the smallest median (the figure least disturbed by other
jobs on a shared machine).

Run::

    python benchmarks/single_window.py [--reset-after] [--rounds 7] [--calls 1000]
"""

import argparse
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reset-after", action="store_true")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=1000)
    args = ap.parse_args()

    from fastgru import GRURegressor, cpu, engine

    rng = np.random.default_rng(0)
    X = rng.random((64, 100, 1), dtype=np.float32)
    y = rng.random(64)
    model = GRURegressor(units=(50, 50), epochs=1, random_state=0, device="cpu",
                         reset_after=args.reset_after).fit(X, y)  # fmt: skip
    x1 = X[:1].copy()
    spec, theta = model.spec_, model.theta_
    layout, head, _ = engine._layout(spec)
    out = np.empty((1, 1), np.float32)
    wpack = np.empty(engine._pack_size(layout), np.float32)
    ws = np.empty(engine._predict_ws_size(layout, 100, 1), np.float32)
    calls = {
        "estimator": lambda: model.predict(x1),
        "predict_cpu": lambda: engine.predict_cpu(spec, theta, x1),
        "kernel": lambda: cpu.predict(
            theta, layout, head, spec.reset_after, x1, 1, out, wpack, ws
        ),  # fmt: skip
    }
    medians = {k: [] for k in calls}
    for f in calls.values():
        for _ in range(300):
            f()
    for _ in range(args.rounds):
        for name, f in calls.items():
            ts = np.empty(args.calls)
            for i in range(args.calls):
                t = time.perf_counter_ns()
                f()
                ts[i] = time.perf_counter_ns() - t
            medians[name].append(np.median(ts) / 1000)
    conv = "reset-after" if args.reset_after else "seed convention"
    print(f"one window 1 x 100 x 1, GRU(50) -> GRU(50) -> Dense(1), float32, {conv}")
    for name, v in medians.items():
        rounds = " ".join(f"{x:.0f}" for x in v)
        print(f"{name:12s} smallest median {min(v):6.1f} us   round medians {rounds}")


if __name__ == "__main__":
    main()
