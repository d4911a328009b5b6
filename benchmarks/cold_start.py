"""Cold start: a fresh process fitting the seed workload with an empty Numba cache, then
the same with the cache that run left behind.

Each run is a new ``python`` process (the script runs itself with ``--child``) that imports
fastgru, loads the seed data (bundled CSV, MinMax scaling, windows of 100), fits
``GRURegressor(units=(50, 50), epochs=--epochs)`` and predicts one window. It reports the
wall time of the whole process, of the imports, of ``fit`` (with its first-epoch and later
epoch times) and of the first ``predict``, and its peak resident memory (``VmHWM``). The
first run gets a new, empty ``NUMBA_CACHE_DIR``; the second reuses it. ``to 1st
prediction`` runs from the launch of the process (interpreter start-up included) to the end
of the first ``predict``: issue #7's "first fit in a fresh process". ``process`` also
includes a second, timed epoch and the exit. ``compile`` is the difference between the two
first fits, less the epochs' own time.

Run::

    python benchmarks/cold_start.py [--epochs 1] [--device auto|cpu]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(args):
    t_start = time.perf_counter()
    sys.path.insert(0, str(Path(__file__).parent))
    import numpy as np
    from compare import peak_rss_mb, seed_data  # noqa: F401 (imports fastgru, sklearn)

    from fastgru import GRURegressor

    t_import = time.perf_counter()
    X, y = seed_data()
    t_data = time.perf_counter()
    model = GRURegressor(units=(50, 50), epochs=args.epochs, random_state=0,
                         device=args.device)  # fmt: skip
    model.fit(X, y.ravel())
    t_fit = time.perf_counter()
    model.predict(X[-1:])
    t_pred = time.perf_counter()
    first_prediction_at = time.time()
    # The epochs' own time, measured again now that everything is compiled.
    t0 = time.perf_counter()
    GRURegressor(units=(50, 50), epochs=1, random_state=0, device=args.device).fit(X, y.ravel())
    epoch = time.perf_counter() - t0
    print("RESULT " + json.dumps({
        "import_s": t_import - t_start, "data_s": t_data - t_import, "fit_s": t_fit - t_data,
        "first_predict_s": t_pred - t_fit, "epoch_s": epoch,
        "first_prediction_at": first_prediction_at, "to_first_prediction_s":
        t_pred - t_start, "peak_rss_mb": peak_rss_mb(), "finite": bool(np.isfinite(
            model.loss_curve_[-1]))}), flush=True)  # fmt: skip


def run(cache_dir, args):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    env.pop("FASTGRU_NO_CACHE", None)
    cmd = [sys.executable, __file__, "--child", "--epochs", str(args.epochs), "--device",
           args.device]  # fmt: skip
    t0 = time.perf_counter()
    started_at = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[len("RESULT ") :])
            r["process_wall_s"] = wall
            r["start_to_prediction_s"] = r["first_prediction_at"] - started_at
            return r
    raise RuntimeError(proc.stderr[-3000:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu"])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="fastgru-numba-cache-") as cache:
        cold = run(cache, args)
        warm = run(cache, args)
    print(f"seed workload, GRURegressor(units=(50, 50), epochs={args.epochs}, "
          f"device={args.device!r}), fresh process each")  # fmt: skip
    print(f"{'':22s} {'to 1st prediction':>17s} {'imports':>8s} {'fit':>8s} {'1st predict':>12s} "
          f"{'process':>8s} {'peak RSS':>9s}")  # fmt: skip
    for name, r in (("empty Numba cache", cold), ("warm Numba cache", warm)):
        print(f"{name:22s} {r['start_to_prediction_s']:16.2f}s {r['import_s']:7.2f}s "
              f"{r['fit_s']:7.2f}s {r['first_predict_s']:11.2f}s {r['process_wall_s']:7.2f}s "
              f"{r['peak_rss_mb']:7.0f}MB")  # fmt: skip
    compile_s = cold["fit_s"] + cold["first_predict_s"] - warm["fit_s"] - warm["first_predict_s"]
    print(f"compilation (cold - warm fit and first predict): {compile_s:.1f} s; one epoch "
          f"once compiled: {warm['epoch_s']:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
