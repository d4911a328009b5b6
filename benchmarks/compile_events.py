"""Where a cold first fit spends its compilation: Numba's ``numba:compile`` events.

Runs, in a fresh process with an empty ``NUMBA_CACHE_DIR`` and without the precompile
helper (``FASTGRU_NO_PRECOMPILE=1``, so that every kernel is compiled here), a one-epoch fit
of the seed network on the first ``--windows`` seed windows and one ``predict``, and prints
for each compiled function its exclusive time (its own typing, lowering and LLVM work,
nested compilations taken out), its inclusive time and how many times it was compiled. The
C entry points (``cfunc``: the GEMM, the training part, packing, the update, prediction
rows) raise no event: their own share is the fit and predict time less the listed total.

Run::

    python benchmarks/compile_events.py [--windows 256] [--top 30]
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def child(args):
    import time

    from numba.core import event

    stack, exclusive, inclusive, count = [], {}, {}, {}

    class Listener(event.Listener):
        def on_start(self, ev):
            stack.append([time.perf_counter(), 0.0])

        def on_end(self, ev):
            t0, nested = stack.pop()
            took = time.perf_counter() - t0
            fn = getattr(ev.data["dispatcher"], "py_func", None)
            name = fn.__name__ if fn is not None else str(ev.data["dispatcher"])
            exclusive[name] = exclusive.get(name, 0.0) + took - nested
            inclusive[name] = inclusive.get(name, 0.0) + took
            count[name] = count.get(name, 0) + 1
            if stack:
                stack[-1][1] += took

    event.register("numba:compile", Listener())
    sys.path.insert(0, str(Path(__file__).parent))
    from compare import seed_data

    from fastgru import GRURegressor

    X, y = seed_data()
    X, y = X[: args.windows], y[: args.windows]
    t0 = time.perf_counter()
    model = GRURegressor(units=(50, 50), epochs=1, random_state=0, device="cpu")
    model.fit(X, y.ravel())
    t1 = time.perf_counter()
    model.predict(X[-1:])
    t2 = time.perf_counter()
    print(f"fit {t1 - t0:.2f} s, first predict {t2 - t1:.2f} s; listed functions "
          f"{sum(exclusive.values()):.2f} s exclusive in all")  # fmt: skip
    print(f"{'exclusive':>9s} {'inclusive':>9s} {'times':>5s}  function")
    for name, own in sorted(exclusive.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{own:8.2f}s {inclusive[name]:8.2f}s {count[name]:5d}  {name}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=256)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="fastgru-numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTGRU_NO_PRECOMPILE="1")
        cmd = [sys.executable, __file__, "--child", "--windows", str(args.windows), "--top",
               str(args.top)]  # fmt: skip
        sys.exit(subprocess.run(cmd, env=env).returncode)


if __name__ == "__main__":
    main()
