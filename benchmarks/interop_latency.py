"""Single-window prediction latency of a GRU imported from PyTorch: fastgru vs PyTorch vs
onnxruntime, in one process.

The model is ``GRU(50) -> GRU(50) -> Dense(1)`` (PyTorch ``nn.GRU(1, 50, num_layers=2)`` and
``nn.Linear(50, 1)``, reset-after, float32, PyTorch's default initialisation), imported with
``fastgru.interop.from_torch`` and exported with ``fastgru.interop.to_onnx``. One window of
shape ``(1, 100, 1)`` is predicted over and over; each runner is timed call by call
(``time.perf_counter_ns``) in several interleaved rounds, after a warm-up, and the table
gives the median and the 10th/90th percentiles in microseconds.

Rows:

* ``fastgru GRURegressor.predict``: the public path, with scikit-learn's input validation.
* ``fastgru engine predict_cpu``: the compiled forward pass alone (internal API), to show
  what the validation costs.
* ``PyTorch (no_grad), N threads``: ``head(gru(x)[0][:, -1])`` under ``torch.no_grad()``,
  once with ``torch.set_num_threads(1)`` and once with PyTorch's default thread count.
* ``onnxruntime, N threads``: ``InferenceSession.run`` on the CPU provider, once with
  ``intra_op_num_threads=1`` and once with the default.

Run::

    python benchmarks/interop_latency.py [--calls 3000] [--rounds 5]

Needs ``pip install "fastgru[torch,onnx]"``.
"""

import argparse
import os
import platform
import time

import numpy as np


def timed(fn, n):
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out[i] = time.perf_counter_ns() - t0
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=3000, help="timed calls per runner")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--warmup", type=int, default=200, help="untimed calls per runner")
    ap.add_argument("--seq", type=int, default=100, help="window length")
    args = ap.parse_args(argv)

    import onnxruntime as ort
    import torch

    import fastgru
    from fastgru.engine import predict_cpu
    from fastgru.interop import from_torch, to_onnx

    torch.manual_seed(0)
    gru = torch.nn.GRU(1, 50, num_layers=2, batch_first=True).eval()
    head = torch.nn.Linear(50, 1).eval()
    model = from_torch(gru, head, device="cpu")
    x = np.random.default_rng(0).normal(size=(1, args.seq, 1)).astype(np.float32)
    xt = torch.from_numpy(x)

    default_threads = torch.get_num_threads()

    def torch_call():
        with torch.no_grad():
            return head(gru(xt)[0][:, -1]).numpy()

    proto = to_onnx(model).SerializeToString()

    def ort_session(threads):
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        return ort.InferenceSession(proto, so, providers=["CPUExecutionProvider"])

    sess1, sess_default = ort_session(1), ort_session(0)
    spec, theta = model.spec_, model.theta_

    runners = {
        "fastgru `GRURegressor.predict`": (None, lambda: model.predict(x)),
        "fastgru engine `predict_cpu` (no validation)": (None, lambda: predict_cpu(spec, theta, x)),
        "PyTorch `no_grad`, 1 thread": (1, torch_call),
        f"PyTorch `no_grad`, default ({default_threads} threads)": (default_threads, torch_call),
        "onnxruntime, 1 thread": (None, lambda: sess1.run(None, {"input": x})[0]),
        "onnxruntime, default threads": (None, lambda: sess_default.run(None, {"input": x})[0]),
    }

    # Same answers first.
    ref = torch_call().ravel()
    diffs = {}
    for name, (threads, fn) in runners.items():
        if threads:
            torch.set_num_threads(threads)
        diffs[name] = float(np.max(np.abs(np.asarray(fn(), np.float64).ravel() - ref)))
        for _ in range(args.warmup):
            fn()

    samples = {name: [] for name in runners}
    per_round = max(1, args.calls // args.rounds)
    for _ in range(args.rounds):
        for name, (threads, fn) in runners.items():
            if threads:
                torch.set_num_threads(threads)
            samples[name].append(timed(fn, per_round))
    torch.set_num_threads(default_threads)

    base = None
    print(
        f"Single-window latency, GRU(50)->GRU(50)->Dense(1) imported from PyTorch (reset-after, "
        f"float32), input (1, {args.seq}, 1); {per_round * args.rounds} timed calls per row in "
        f"{args.rounds} interleaved rounds.\n"
    )
    print(
        f"fastgru {fastgru.__version__}, torch {torch.__version__}, onnxruntime "
        f"{ort.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})\n"
    )
    print("| runner | median (us) | p10 (us) | p90 (us) | vs predict | max abs diff vs torch |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in runners:
        t = np.concatenate(samples[name]) / 1e3
        med, p10, p90 = np.median(t), np.percentile(t, 10), np.percentile(t, 90)
        base = base or med
        print(
            f"| {name} | {med:.1f} | {p10:.1f} | {p90:.1f} | {med / base:.2f}x "
            f"| {diffs[name]:.1e} |"
        )


if __name__ == "__main__":
    main()
