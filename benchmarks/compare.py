"""The seed workload in fastgru, PyTorch and (optionally) Keras, side by side in one run.

Workload (issue 7): the bundled 8,000-day temperature series, MinMax-scaled, windows of 100
steps (7,900 windows), ``GRU(50) -> GRU(50) -> Dense(1)``, batch 32, Adam (lr 1e-3), MSE,
float32. Each framework runs in its own subprocess, one after the other, so that its peak
resident memory (``ru_maxrss``) is its own.

Rows:

* ``fastgru`` -- the seed convention (``reset_after=False``, Keras' ``reset_after=False``),
  Keras-like initialisation, through the public ``GRURegressor``.
* ``fastgru (torch init)`` -- ``reset_after=True`` (PyTorch's convention), starting from
  the very weights PyTorch starts from (``fastgru.interop.from_torch`` of a
  ``torch.manual_seed(seed)`` model): the row to compare final MSE with ``torch``.
* ``torch`` -- ``nn.GRU(1, 50, num_layers=2, batch_first=True)`` + ``nn.Linear(50, 1)``,
  PyTorch's default thread count, a plain training loop over shuffled index batches.
* ``keras`` -- with ``--keras``: Keras 3 (``KERAS_BACKEND``, default ``torch``), ``GRU(50,
  reset_after=False, return_sequences=True) -> GRU(50, reset_after=False) -> Dense(1)``.

Columns: seconds per epoch (mean of the timed epochs, compilation excluded: fastgru fits
once on a few windows first), achieved GFLOP/s (107.1 GFLOP per epoch: forward and
backward of both layers, counted in ``flops_per_epoch``), the ratio to PyTorch, prediction
of all windows, single-window latency (median of ``--calls`` calls, warm), final training
MSE (predictions of all training windows after the last epoch, float64), peak RSS.

Run::

    python benchmarks/compare.py [--epochs 3] [--keras] [--keras-epochs 1] [--device cpu]
                                 [--json out.json]

Needs ``pip install torch`` (and ``keras`` for ``--keras``); neither is a dependency of
fastgru.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

SEED_UNITS = (50, 50)
WINDOW = 100
BATCH = 32
LR = 1e-3


def flops_per_epoch(n_windows, T, F, units, n_out=1):
    """Floating-point operations of one training epoch (multiply-add = 2): per step and
    sample, the forward of a layer is ``2 * 3H * (F + H)``; its backward the recurrent
    gradient ``2 * 3H * H``, the weight gradients ``2 * 3H * (F + H)`` and, above the first
    layer, the input gradient ``2 * 3H * F``. The head is negligible and left out."""
    total = 0
    f = F
    for i, h in enumerate(units):
        fwd = 2 * 3 * h * (f + h)
        bwd = 2 * 3 * h * h + 2 * 3 * h * (f + h) + (2 * 3 * h * f if i > 0 else 0)
        total += fwd + bwd
        f = h
    return total * T * n_windows


def seed_data(window=WINDOW):
    from sklearn.preprocessing import MinMaxScaler

    from fastgru import load_temperature, make_windows

    temps = load_temperature()[["Temp"]].to_numpy()
    scaled = MinMaxScaler().fit_transform(temps).astype(np.float32)
    X, y = make_windows(scaled, window=window)
    return np.ascontiguousarray(X, np.float32), np.ascontiguousarray(y, np.float32)


def peak_rss_mb():
    """This process's peak resident memory (``VmHWM``). Not ``ru_maxrss``: on Linux that
    keeps the parent's resident size at ``fork`` across ``exec``, so a subprocess started
    by a large parent would report the parent's size."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median_latency_us(fn, calls):
    for _ in range(min(50, calls)):
        fn()
    ts = np.empty(calls)
    for i in range(calls):
        t0 = time.perf_counter_ns()
        fn()
        ts[i] = time.perf_counter_ns() - t0
    return float(np.median(ts) / 1e3)


# -------------------------------------------------------------------------------- workers
def worker_fastgru(args, torch_init):
    from fastgru import GRURegressor
    from fastgru.engine import predict_cpu

    X, y = seed_data()
    yv = y.ravel()
    common = dict(units=SEED_UNITS, batch_size=BATCH, learning_rate=LR, loss="mse",
                  device=args.device)  # fmt: skip
    # Compile (or load from the cache) what fit and predict need, on a few windows.
    t0 = time.perf_counter()
    GRURegressor(epochs=1, random_state=0, reset_after=torch_init, **common).fit(
        X[:64], yv[:64]
    ).predict(X[:2])
    warmup = time.perf_counter() - t0
    if torch_init:
        import torch

        from fastgru.interop import from_torch

        torch.manual_seed(args.seed)
        gru = torch.nn.GRU(1, SEED_UNITS[0], num_layers=len(SEED_UNITS), batch_first=True)
        head = torch.nn.Linear(SEED_UNITS[-1], 1)
        model = from_torch(gru, head, random_state=args.seed, warm_start=True,
                           epochs=args.epochs, **common)  # fmt: skip
    else:
        model = GRURegressor(epochs=args.epochs, random_state=args.seed, **common)
    t0 = time.perf_counter()
    model.fit(X, yv)
    fit_s = time.perf_counter() - t0
    p = model.predict(X)
    mse = float(np.mean((p.astype(np.float64) - yv) ** 2))
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        model.predict(X)
        times.append(time.perf_counter() - t0)
    x1 = X[-1:]
    lat_public = median_latency_us(lambda: model.predict(x1), args.calls)
    spec, theta = model.spec_, model.theta_
    lat_engine = median_latency_us(lambda: predict_cpu(spec, theta, x1), args.calls)
    return {
        "epoch_s": fit_s / args.epochs,
        "warmup_s": warmup,
        "predict_all_s": min(times),
        "latency_us": lat_public,
        "latency_engine_us": lat_engine,
        "mse": mse,
        "loss_curve": [float(v) for v in model.loss_curve_],
        "peak_rss_mb": peak_rss_mb(),
    }


def worker_torch(args):
    import torch

    X, y = seed_data()
    torch.manual_seed(args.seed)
    gru = torch.nn.GRU(1, SEED_UNITS[0], num_layers=len(SEED_UNITS), batch_first=True)
    head = torch.nn.Linear(SEED_UNITS[-1], 1)
    params = list(gru.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=LR, eps=1e-7)  # Keras' epsilon, as fastgru
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(args.seed + 1)
    n = len(X)

    def forward(xb):
        return head(gru(xb)[0][:, -1])

    epochs = []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, BATCH):
            idx = perm[s : s + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(forward(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        epochs.append(time.perf_counter() - t0)
    with torch.no_grad():
        p = forward(Xt).numpy().ravel()
        mse = float(np.mean((p.astype(np.float64) - y.ravel()) ** 2))
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            forward(Xt)
            times.append(time.perf_counter() - t0)
        x1 = Xt[-1:]
        lat = median_latency_us(lambda: forward(x1), args.calls)
    return {
        "epoch_s": float(np.mean(epochs)),
        "epoch_list_s": epochs,
        "predict_all_s": min(times),
        "latency_us": lat,
        "mse": mse,
        "threads": torch.get_num_threads(),
        "peak_rss_mb": peak_rss_mb(),
    }


def worker_keras(args):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    X, y = seed_data()
    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential(
        [
            keras.Input((WINDOW, 1)),
            keras.layers.GRU(SEED_UNITS[0], reset_after=False, return_sequences=True),
            keras.layers.GRU(SEED_UNITS[1], reset_after=False),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(LR), loss="mse")
    epochs = []
    for _ in range(args.keras_epochs):
        t0 = time.perf_counter()
        model.fit(X, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=True)
        epochs.append(time.perf_counter() - t0)
    p = model.predict(X, verbose=0, batch_size=1024).ravel()
    mse = float(np.mean((p.astype(np.float64) - y.ravel()) ** 2))
    t0 = time.perf_counter()
    model.predict(X, verbose=0, batch_size=1024)
    pred_s = time.perf_counter() - t0
    x1 = X[-1:]
    lat = median_latency_us(lambda: model(x1, training=False), max(args.calls // 10, 20))
    return {
        "epoch_s": float(np.mean(epochs)),
        "epoch_list_s": epochs,
        "epochs": args.keras_epochs,
        "predict_all_s": pred_s,
        "latency_us": lat,
        "mse": mse,
        "backend": keras.backend.backend(),
        "peak_rss_mb": peak_rss_mb(),
    }


WORKERS = {
    "fastgru": lambda a: worker_fastgru(a, False),
    "fastgru (torch init)": lambda a: worker_fastgru(a, True),
    "torch": worker_torch,
    "keras": worker_keras,
}


# -------------------------------------------------------------------------------- driver
def run_worker(name, args):
    cmd = [sys.executable, __file__, "--worker", name, "--epochs", str(args.epochs),
           "--keras-epochs", str(args.keras_epochs), "--calls", str(args.calls),
           "--seed", str(args.seed), "--device", args.device]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}


def have(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def machine():
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per framework")
    ap.add_argument("--keras", action="store_true", help="also run Keras (slow)")
    ap.add_argument("--keras-epochs", type=int, default=1)
    ap.add_argument("--calls", type=int, default=2000, help="single-window calls timed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu"],
        help="fastgru's device ('auto' imports numba-cuda to look for a GPU)",
    )
    ap.add_argument("--json", help="write the results here as JSON")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print("RESULT " + json.dumps(WORKERS[args.worker](args)), flush=True)
        return

    names = ["fastgru"]
    if have("torch"):
        names += ["fastgru (torch init)", "torch"]
    if args.keras and have("keras"):
        names.append("keras")
    X, _ = seed_data()
    gflop = flops_per_epoch(len(X), WINDOW, 1, SEED_UNITS) / 1e9
    print(f"machine: {machine()}")
    print(f"workload: {len(X)} windows x {WINDOW} steps, GRU{SEED_UNITS} -> Dense(1), batch "
          f"{BATCH}, Adam, float32; {gflop:.1f} GFLOP per epoch; {args.epochs} epochs")  # fmt: skip
    results = {}
    for name in names:
        results[name] = run_worker(name, args)
        print(f"  ran {name}", file=sys.stderr, flush=True)
    ref = results.get("torch", {}).get("epoch_s")
    cols = ("s/epoch", 8), ("GFLOP/s", 8), ("vs torch", 9), ("predict all", 12), ("1 window", 10)
    cols += ("train MSE", 10), ("peak RSS", 9)
    hdr = f"{'framework':22s} " + " ".join(f"{c:>{w}s}" for c, w in cols)
    print(hdr)
    print("-" * len(hdr))
    for name, r in results.items():
        if "error" in r:
            print(f"{name:22s} failed: {r['error']}")
            continue
        ratio = f"{ref / r['epoch_s']:8.1f}x" if ref else "        -"
        print(f"{name:22s} {r['epoch_s']:8.3f} {gflop / r['epoch_s']:8.1f} {ratio} "
              f"{r['predict_all_s']:11.3f}s {r['latency_us']:8.0f}us {r['mse']:10.3e} "
              f"{r['peak_rss_mb']:7.0f}MB")  # fmt: skip
    f = results.get("fastgru")
    if f and "error" not in f:
        print("fastgru engine single window (predict_cpu, no input validation): "
              f"{f['latency_engine_us']:.0f} us; warm-up fit and predict on 64 windows "
              f"(compiles or loads the kernels) {f['warmup_s']:.1f} s")  # fmt: skip
    ft, t = results.get("fastgru (torch init)"), results.get("torch")
    if ft and t and "error" not in ft and "error" not in t:
        print(f"final MSE, same initial weights: fastgru {ft['mse']:.4e} vs torch "
              f"{t['mse']:.4e} ({100 * (ft['mse'] / t['mse'] - 1):+.1f}%)")  # fmt: skip
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine(), "gflop_per_epoch": gflop, "epochs": args.epochs,
                       "results": results}, fh, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
