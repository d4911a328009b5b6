"""pytest-benchmark cases for the CPU kernels at the seed workload (issue 7).

The seed workload: windows of 100 steps of one feature, ``GRU(50) -> GRU(50) -> Dense(1)``,
batch 32, Adam, float32 (the seed convention, ``reset_after=False``).

Run the benchmarks (they are not in ``testpaths``; the project's ``addopts`` disables
benchmarking, so enable it)::

    python -m pytest benchmarks/test_bench_cpu.py --benchmark-enable -p no:cacheprovider

Without ``--benchmark-enable`` each case runs once as a plain test, except the two costly
ones (a whole epoch, predicting every window), which are skipped. A cold Numba cache adds
the compilation (about 15-25 s on the 2-core machine) to the first case that needs it.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from compare import BATCH, SEED_UNITS, WINDOW, seed_data  # noqa: E402

from fastgru import cpu  # noqa: E402
from fastgru.engine import (  # noqa: E402
    CPURunner,
    OptimizerState,
    TrainConfig,
    _layout,
    _pack_size,
    _predict_ws_size,
    predict_cpu,
)
from fastgru.params import NetworkSpec, init_params  # noqa: E402


@pytest.fixture(scope="module", params=[False, True], ids=["seed", "reset_after"])
def seed(request):
    X, y = seed_data()
    spec = NetworkSpec(1, SEED_UNITS, 1, request.param, "float32")
    theta = init_params(spec, np.random.default_rng(0))
    return spec, theta, X, y


def _costly(benchmark):
    if benchmark.disabled:
        pytest.skip("costly: runs with --benchmark-enable only")


def test_forward_batch32(benchmark, seed):
    """The lean forward pass (prediction) of one batch of 32 windows, one thread."""
    spec, theta, X, _ = seed
    xb = X[:BATCH]
    out = benchmark(predict_cpu, spec, theta, xb, BATCH, 1)
    assert out.shape == (BATCH, 1) and np.all(np.isfinite(out))


def test_forward_backward_batch32(benchmark, seed):
    """Loss and gradient (forward with BPTT saves, backward) of one batch of 32 windows,
    one part in one thread (an epoch runs two such parts of 16 at a time)."""
    spec, theta, X, y = seed
    layout, head, _ = _layout(spec)
    ws = np.zeros(cpu.workspace_size(layout, head, WINDOW, BATCH), np.float32)
    grad = np.zeros_like(theta)
    xt = np.ascontiguousarray(X[:BATCH].transpose(1, 0, 2))
    yb = np.ascontiguousarray(y[:BATCH])
    loss = benchmark(cpu.network_loss_grad, theta, layout, head, spec.reset_after, xt, yb, 0,
                     1.0, ws, grad)  # fmt: skip
    assert np.isfinite(loss) and np.any(grad != 0)


def test_epoch(benchmark, seed):
    """One training epoch over all 7,900 windows (247 batches, both cores)."""
    _costly(benchmark)
    spec, theta, X, y = seed
    cfg = TrainConfig(epochs=1, batch_size=BATCH)
    runner = CPURunner(spec, theta.copy(), OptimizerState.zeros(theta.size, theta.dtype), cfg,
                       X, y)  # fmt: skip
    order = np.random.default_rng(1).permutation(len(X))
    runner.epoch(order[:64])  # compile or load outside the timing
    loss, bad = benchmark.pedantic(runner.epoch, args=(order,), rounds=3, iterations=1)
    assert bad == -1 and np.isfinite(loss)


def test_predict_all(benchmark, seed):
    """Prediction of every window (both cores)."""
    _costly(benchmark)
    spec, theta, X, _ = seed
    predict_cpu(spec, theta, X[:64])
    out = benchmark.pedantic(predict_cpu, args=(spec, theta, X), rounds=5, iterations=1)
    assert out.shape == (len(X), 1)


def test_predict_single_window(benchmark, seed):
    """One window of shape (1, 100, 1): the latency of ``predict_cpu`` in a warm process."""
    spec, theta, X, _ = seed
    x1 = X[-1:]
    predict_cpu(spec, theta, x1)
    out = benchmark(predict_cpu, spec, theta, x1)
    assert out.shape == (1, 1)


def test_buffer_sizes_agree(seed):
    """``engine`` sizes its prediction buffers without calling Numba; it must agree with
    the kernels' own size functions."""
    spec = seed[0]
    layout, head, _ = _layout(spec)
    assert _pack_size(layout) == cpu.pack_size(layout)
    for T, B in [(1, 1), (100, 32), (7, 3)]:
        assert _predict_ws_size(layout, T, B) == cpu.predict_workspace_size(layout, head, T, B)
