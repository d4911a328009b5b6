"""Scaling sweep of the CPU engine around the seed workload: hidden size, window length,
batch size and data size, one at a time.

For each setting it times training epochs and the prediction of every window (float32,
``reset_after=False``, two GRU layers of ``H`` units, Adam) and reports the achieved
GFLOP/s (``compare.flops_per_epoch``; prediction counts the forward third) and the time
relative to what the arithmetic predicts from the seed setting (``expected = seed time *
flops / seed flops``): a cliff shows up as a ratio far above 1. Windows are synthetic (a
noisy sine), as many as fit a time budget per setting, so the sweep takes minutes.

Memory: for the batch and data-size settings each measurement also runs in a fresh
process, reporting its peak RSS, and that minus the training data's own bytes: it should
grow with the batch (work buffers) and stay flat with the data size.

Run::

    python benchmarks/sweep.py [--out benchmarks/sweep.md] [--budget 2.0] [--quick]

Writes a markdown table (and ``sweep.png`` beside it if matplotlib is installed).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from compare import flops_per_epoch, machine, peak_rss_mb  # noqa: E402

SEED = {"H": 50, "T": 100, "B": 32, "N": 7900}
SWEEPS = {
    "H": [16, 32, 50, 64, 128, 256],
    "T": [10, 30, 100, 300, 1000],
    "B": [1, 8, 32, 128, 512],
    "N": [1000, 4000, 16000, 64000],
}


def windows(n, T, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n + T, dtype=np.float64)
    s = 0.5 + 0.4 * np.sin(2 * np.pi * t / 37.0) + 0.05 * rng.normal(size=t.size)
    X = np.lib.stride_tricks.sliding_window_view(s[:-1], T)[:n, :, None]
    return np.ascontiguousarray(X, np.float32), s[T : T + n, None].astype(np.float32)


def measure(H, T, B, N, epochs, predict=True):
    from fastgru.engine import CPURunner, OptimizerState, TrainConfig, predict_cpu
    from fastgru.params import NetworkSpec, init_params

    X, y = windows(N, T)
    spec = NetworkSpec(1, (H, H), 1, False, "float32")
    theta = init_params(spec, np.random.default_rng(0))
    cfg = TrainConfig(epochs=1, batch_size=B)
    runner = CPURunner(spec, theta, OptimizerState.zeros(theta.size, theta.dtype), cfg, X, y)
    rng = np.random.default_rng(1)
    runner.epoch(rng.permutation(N)[: min(N, 2 * B)])  # compile or load, outside the timing
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        runner.epoch(rng.permutation(N))
        times.append(time.perf_counter() - t0)
    out = {"epoch_s": float(np.median(times)), "data_mb": (X.nbytes + y.nbytes) / 2**20}
    if predict:
        predict_cpu(spec, runner.theta, X[:2])
        t0 = time.perf_counter()
        predict_cpu(spec, runner.theta, X)
        out["predict_s"] = time.perf_counter() - t0
    return out


def worker(args):
    H, T, B, N = (int(v) for v in args.worker.split(","))
    r = measure(H, T, B, N, epochs=1, predict=False)
    r["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(r), flush=True)


def in_subprocess(H, T, B, N):
    cmd = [sys.executable, __file__, "--worker", f"{H},{T},{B},{N}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(proc.stderr[-2000:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name("sweep.md")))
    ap.add_argument("--budget", type=float, default=2.0,
                    help="target seconds per timed epoch (sets how many windows)")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="fewer settings, smaller budget")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return

    sweeps = SWEEPS
    if args.quick:
        sweeps = {k: v[:: max(1, len(v) // 3)] for k, v in SWEEPS.items()}
        args.budget = min(args.budget, 0.7)

    base = measure(**SEED, epochs=3)
    base_flops = flops_per_epoch(SEED["N"], SEED["T"], 1, (SEED["H"],) * 2)
    rate = base_flops / base["epoch_s"]  # seed GFLOP/s sets the expectations below
    rows = []
    for name, values in sweeps.items():
        for v in values:
            p = dict(SEED, **{name: v})
            f_win = flops_per_epoch(1, p["T"], 1, (p["H"],) * 2)
            if name != "N":  # as many windows as the budget allows, at least 8 batches
                p["N"] = int(min(SEED["N"], max(8 * p["B"], args.budget * rate / f_win)))
            r = measure(**p, epochs=2)
            flops = f_win * p["N"]
            expected = flops / rate
            row = {"param": name, "value": v, **p, **r, "gflops": flops / r["epoch_s"] / 1e9,
                   "ratio": r["epoch_s"] / expected,
                   "predict_gflops": flops / 3 / r["predict_s"] / 1e9}  # fmt: skip
            if name in ("B", "N"):
                m = in_subprocess(p["H"], p["T"], p["B"], p["N"])
                row["peak_rss_mb"] = m["peak_rss_mb"]
            rows.append(row)
            msg = f"{name}={v}: {r['epoch_s']:.3f} s/epoch on {p['N']} windows, "
            msg += f"{row['gflops']:.1f} GFLOP/s, x{row['ratio']:.2f} of expected"
            print(msg, flush=True)

    lines = [
        "# Scaling sweep (CPU, float32)",
        "",
        f"Machine: {machine()}. Numba threads: {os.environ.get('NUMBA_NUM_THREADS', 'default')}."
        f" Seed setting: H={SEED['H']}, T={SEED['T']}, B={SEED['B']}, N={SEED['N']}: "
        f"{base['epoch_s']:.3f} s/epoch, {rate / 1e9:.1f} GFLOP/s. Command: "
        f"`python benchmarks/sweep.py{' --quick' if args.quick else ''}`.",
        "",
        "`ratio` = measured epoch time / (seed time x flops / seed flops): 1 means the time "
        "grew exactly as the arithmetic; above 1 the setting runs below the seed's efficiency.",
        "`RSS - data` = the peak resident memory of a fresh process training one epoch minus "
        "the training arrays' bytes (batch and data-size rows only).",
        "",
        "| varied | value | windows | s/epoch | train GFLOP/s | ratio | predict s | "
        "predict GFLOP/s | peak RSS MB | RSS - data MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rss = f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else ""
        net = f"{r['peak_rss_mb'] - r['data_mb']:.0f}" if "peak_rss_mb" in r else ""
        lines.append(
            f"| {r['param']} | {r['value']} | {r['N']} | {r['epoch_s']:.3f} | "
            f"{r['gflops']:.1f} | {r['ratio']:.2f} | {r['predict_s']:.3f} | "
            f"{r['predict_gflops']:.1f} | {rss} | {net} |"
        )
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4 * len(sweeps), 3.2))
    for ax, name in zip(axes, sweeps, strict=True):
        sel = [r for r in rows if r["param"] == name]
        ax.plot([r["value"] for r in sel], [r["gflops"] for r in sel], "o-", label="train")
        ax.plot([r["value"] for r in sel], [r["predict_gflops"] for r in sel], "s--",
                label="predict")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel("GFLOP/s")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(Path(args.out).with_suffix(".png"), dpi=100)


if __name__ == "__main__":
    main()
