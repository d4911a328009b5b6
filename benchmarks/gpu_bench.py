"""One training epoch on a GPU: fastgru's CUDA engine vs PyTorch ``nn.GRU`` (cuDNN), in one run.

Workloads (float32, Adam, MSE, one output, two stacked GRU layers and a dense head):

* ``seed``: ``GRU(50) -> GRU(50) -> Dense(1)``, window 100, batch 32, the bundled temperature
  series cut into its ~7,900 windows (the seed project's workload).
* ``large``: ``GRU(256) -> GRU(256) -> Dense(1)``, window 100, batch 256, 50,000 windows of a
  synthetic series.

Rows per workload:

* ``fastgru cuda, seed convention`` and ``fastgru cuda, reset-after``: ``CUDARunner.epoch``
  over a shuffled order (the data already on the device, as in a fit). The reset-after row is
  the same model as cuDNN's.
* ``torch cuDNN, TF32 allowed`` (PyTorch's default for cuDNN RNNs on Ampere and later) and
  ``torch cuDNN, strict fp32``: a plain loop over ``randperm`` batches with the data on the
  device: ``model(xb)``, MSE, ``backward``, ``Adam.step``.

Each row first runs a warm-up (compilation for fastgru, cuDNN plan selection for PyTorch,
excluded from the timings, reported as ``warm-up s``), then ``--epochs`` timed epochs; the
table gives the fastest and the mean epoch in seconds and windows per second of the fastest.

Run on a machine with an NVIDIA GPU::

    python benchmarks/gpu_bench.py [--epochs 3] [--workloads seed,large] [--no-torch]

Needs ``pip install "fastgru[cuda,torch]"``. Exits with an error message when no GPU is usable
(including under ``NUMBA_ENABLE_CUDASIM=1``: the simulator is not a GPU).
"""

import argparse
import platform
import sys
import time
from functools import partial

import numpy as np

WORKLOADS = {
    "seed": {"units": 50, "window": 100, "batch": 32, "n": None},
    "large": {"units": 256, "window": 100, "batch": 256, "n": 50_000},
}


def fail(msg):
    print(f"gpu_bench: {msg}", file=sys.stderr)
    sys.exit(2)


def data(name, cfg):
    from fastgru.windows import make_windows

    if cfg["n"] is None:
        from fastgru.datasets import load_temperature

        series = load_temperature()["Temp"].to_numpy()
    else:
        rng = np.random.default_rng(0)
        t = np.arange(cfg["n"] + cfg["window"])
        series = 10 + 8 * np.sin(2 * np.pi * t / 365.25) + rng.normal(0, 2, t.size)
    X, y = make_windows(series, cfg["window"])
    X = np.asarray(X, np.float32).reshape(len(X), cfg["window"], -1)
    y = np.asarray(y, np.float32).reshape(len(y), -1)
    mu, sd = X.mean(), X.std()
    return (X - mu) / sd, (y - mu) / sd


def bench_fastgru(X, y, cfg, reset_after, epochs):
    from fastgru.cuda import CUDARunner
    from fastgru.engine import OptimizerState, TrainConfig
    from fastgru.params import NetworkSpec, init_params

    H = cfg["units"]
    spec = NetworkSpec(X.shape[2], (H, H), y.shape[1], reset_after, "float32")
    theta = init_params(spec, np.random.default_rng(0)).astype(np.float32)
    tcfg = TrainConfig(batch_size=cfg["batch"], optimizer="adam", learning_rate=1e-3, loss="mse")
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    # Warm-up: compiles every kernel (full and remainder batch) on a small slice.
    n_warm = min(len(X), 2 * cfg["batch"] + 1)
    warm = CUDARunner(spec, theta.copy(), OptimizerState.zeros(theta.size, np.float32), tcfg,
                      X[:n_warm], y[:n_warm])  # fmt: skip
    warm.epoch(np.arange(n_warm))
    runner = CUDARunner(spec, theta.copy(), OptimizerState.zeros(theta.size, np.float32), tcfg,
                        X, y)  # fmt: skip
    runner.epoch(rng.permutation(min(len(X), cfg["batch"])))  # upload path, first launches
    warmup = time.perf_counter() - t0
    times, losses = [], []
    for _ in range(epochs):
        order = rng.permutation(len(X))
        t0 = time.perf_counter()
        loss, bad = runner.epoch(order)  # returns after reading the device's status: synced
        times.append(time.perf_counter() - t0)
        losses.append(loss)
        if bad >= 0:
            fail(f"fastgru diverged at sample {bad}")
    return warmup, times, losses[-1]


def bench_torch(X, y, cfg, epochs, tf32):
    import torch

    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    dev = torch.device("cuda")
    torch.manual_seed(0)
    H = cfg["units"]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(X.shape[2], H, num_layers=2, batch_first=True)
            self.head = torch.nn.Linear(H, y.shape[1])

        def forward(self, x):
            return self.head(self.gru(x)[0][:, -1])

    model = Net().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    Xd = torch.from_numpy(X).to(dev)
    yd = torch.from_numpy(y).to(dev)
    bs = cfg["batch"]
    mse = torch.nn.MSELoss()

    def epoch(n):
        perm = torch.randperm(n, device=dev)
        total = torch.zeros((), device=dev)
        for s in range(0, n, bs):
            idx = perm[s : s + bs]
            xb, yb = Xd[idx], yd[idx]
            opt.zero_grad(set_to_none=True)
            loss = mse(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
        return float(total / n)  # .item(): synchronises

    t0 = time.perf_counter()
    epoch(min(len(X), 4 * bs + 1))  # cuDNN plans for the full and the remainder batch
    torch.cuda.synchronize()
    warmup = time.perf_counter() - t0
    times, loss = [], None
    for _ in range(epochs):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = epoch(len(X))
        times.append(time.perf_counter() - t0)
    return warmup, times, loss


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per row")
    ap.add_argument("--workloads", default="seed,large", help="comma-separated: seed, large")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch rows")
    args = ap.parse_args(argv)
    names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for w in names:
        if w not in WORKLOADS:
            fail(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")

    from fastgru.cuda import cuda_status

    ok, why = cuda_status()
    if not ok:
        fail(f"no usable GPU: {why}")
    if why == "CUDA simulator":
        fail("NUMBA_ENABLE_CUDASIM=1 is set: the simulator is not a GPU; unset it")
    torch_note = ""
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            fail('PyTorch is not installed (pip install "fastgru[torch]"), or pass --no-torch')
        if not torch.cuda.is_available():
            fail("PyTorch sees no CUDA device (a CPU-only build?); or pass --no-torch")
        torch_note = f", torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}"

    import numba

    print(f"GPU: {why}; numba {numba.__version__}{torch_note}; Python {platform.python_version()}")
    rows = []
    for w in names:
        cfg = WORKLOADS[w]
        X, y = data(w, cfg)
        label = (
            f"{w}: {len(X)} windows x {cfg['window']}, batch {cfg['batch']}, units {cfg['units']}"
        )
        print(f"\n{label}", flush=True)
        runs = [
            (
                "fastgru cuda, seed convention",
                partial(bench_fastgru, X, y, cfg, False, args.epochs),
            ),
            ("fastgru cuda, reset-after", partial(bench_fastgru, X, y, cfg, True, args.epochs)),
        ]
        if not args.no_torch:
            runs += [
                ("torch cuDNN, TF32 allowed", partial(bench_torch, X, y, cfg, args.epochs, True)),
                ("torch cuDNN, strict fp32", partial(bench_torch, X, y, cfg, args.epochs, False)),
            ]
        for name, fn in runs:
            warmup, times, loss = fn()
            best = min(times)
            rows.append((w, name, warmup, best, float(np.mean(times)), len(X) / best, loss))
            print(f"  {name:32s} best {best:8.3f} s   ({len(X) / best:,.0f} windows/s)", flush=True)

    print()
    head = f"| {'workload':8s} | {'engine':32s} | warm-up s | best epoch s | mean epoch s |"
    head += " windows/s | last loss |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for w, name, warm, best, mean, wps, loss in rows:
        print(f"| {w:8s} | {name:32s} | {warm:9.2f} | {best:12.3f} | {mean:12.3f} |"
              f" {wps:9,.0f} | {loss:9.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()
