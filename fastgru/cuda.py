"""CUDA engine (``numba.cuda``): the GPU twin of :mod:`fastgru.cpu`.

A whole fit runs on the device. The training data ``X (N, T, F)`` and ``y (N, O)`` are copied
once per fit; each epoch uploads only its shuffle order (``N`` int64) and a three-element status
vector, and reads three numbers back at its end. Batches are gathered on the device, and the
parameters, Adam moments or SGD velocity never leave it until :meth:`CUDARunner.finish`. The
equations are exactly those of the :mod:`fastgru.cpu` docstring, both gate conventions; the gate
nonlinearities are the same Python source (:mod:`fastgru._math`) compiled for the device.

Design
------
All per-fit work arrays live in one flat device buffer ``ws`` (dtype of ``theta``), carved into
time-major regions by a host-side *plan* (``_Plan``): the gathered batch, and per layer ``Hs
(T+1, B, H)``, gates ``RZ (T, B, 2H)``, candidate ``N``, ``AUX`` (``r * h`` or ``h U_n + bh_n``,
as in ``cpu.py``), the input projections ``XP (T, B, 3H)``, the per-step gate gradients ``D``
and the incoming gradient ``dY``. It is allocated once per fit; a batch smaller than
``batch_size`` uses the front of every region.

One training step (one mini-batch) is ``4 + 4 L`` launches for ``L`` layers, none of which
waits for the host:

1. ``gather``: ``X[order[s:s+B]]`` into the time-major batch (grid-stride, one element a thread).
2. Per layer, bottom up: one *job-table GEMM* launch for ``XP = X W + b (+ bh_rz)`` (the biases
   ride along as a second, rank-1 or rank-2 product against a virtual column of ones), then one
   *persistent recurrent kernel*: the whole time loop in one launch.
3. ``head_train``: one block; head output, loss (float64, fixed-order tree sum), ``dyhat``, the
   head's gradients and the top layer's incoming gradient (only its last step is non-zero, so it
   is stored as ``(B, H)``, never as ``(T, B, H)`` of zeros).
4. Per layer, top down: one persistent BPTT kernel, then one job-table GEMM launch that forms
   every weight and bias gradient of the layer and the gradient sent to the layer below.
5. ``sumsq`` (per-block float64 partial sums of ``grad**2``) and ``update`` (each block reduces
   the same partials in the same order, so all agree on the norm; it skips the update when the
   loss or the norm is not finite, records the batch start, else clips and applies Adam or SGD
   with the element steps of :mod:`fastgru._math` that ``cpu.adam_update``/``cpu.sgd_update``
   run too). Once a batch is bad every later update
   of the epoch is skipped too, so the host knows each batch's Adam step without asking; the
   epoch's loss sum, the bad batch's start and the last loss sit in a three-element float64
   status vector that is read once, at the end of the epoch.

Persistent recurrent kernels (``fwd_loop``, ``bwd_loop``): grid ``ceil(B / bt)`` blocks, each
owning a tile of ``bt`` sequences; threads stride over the tile's ``bt * H`` (sequence, unit)
pairs, so any ``H`` (multiple of 32 or not) and any block size work. Per step a thread forms the
recurrent dot products of its unit (column ``j`` of ``U_rz``/``U_n``) from the tile's hidden
state held in shared memory; the step ends with a ``syncthreads``. The seed convention needs a
second phase (``r * h`` must be complete before the candidate's product), reset-after needs one.
The recurrent weights are copied into shared memory once per launch when ``3 H^2`` plus the
state tiles fit in 48 KiB (H <= ~50 in float32); the backward copy is stored transposed so that
``dA U^T`` is read with unit stride. Otherwise they are read from global memory (cached in
L1/L2); the hidden state and gate-gradient tiles always stay in shared memory. Saved for BPTT:
``Hs``, ``RZ``, ``N``, ``AUX`` (as the CPU engine). The backward loop writes the per-step gate
gradients ``D (T, B, 3H)`` (seed: ``[da_r, da_z, da_n]``) or ``(T, B, 4H)`` (reset-after: plus
``dhn = da_n * r``) and keeps ``dh`` in shared memory.

Weight gradients are reduced after the loop, without atomics: ``gU = Hprev^T D``, ``gW = X^T D``,
``gb = 1^T D`` and ``dX = D W^T`` are jobs of one *job-table GEMM* launch. A job is a row of an
int64 table naming ``C = A1 B1 + A2 B2`` over virtual operands (buffer ``ws``/``theta``/``grad``
or a constant one, an offset and two strides), so transposes, column blocks of ``D`` and the split
``W_rz``/``W_n`` parameter blocks are views, never copies. A block of 16 x 16 threads computes a
64 x 64 output tile, each thread a 4 x 4 register micro-tile, staging 16-deep slices of both
operands in shared memory (loads are remapped when an operand is column-contiguous so they stay
coalesced); the blocks of all jobs form one 1-D grid. Every output element is summed by one
thread in a fixed order: results are deterministic run to run. Job tables depend only on the
batch size; they are built and uploaded once per size.

Kernels are built per dtype (``_kernels``: float32 first, float64 for checks) with lazy
signatures, and compile at their first launch; ``import fastgru.cuda`` touches no GPU.

Limits
------
* The recurrent kernels are latency-bound: one block per ``bt`` sequences, ``T`` dependent
  steps, and each thread's dot product is a sequential loop over ``H``. Small batches leave most
  of a large GPU idle; cuDNN's persistent kernels keep weights in registers and use tensor cores.
* The GEMM is a plain register-blocked SIMT tiling (no tensor cores, no double buffering, no
  split-K): the ``K = T * B`` reductions of the weight gradients run as few, long blocks.
* The float32 kernels compute the gates in float32 (``_typed_sigmoid``); the update and the
  loss sums are float64 by design (cheap there).
* Kernels are not cached on disk (``cache=True`` with per-dtype closures is unverified without a
  GPU): each process compiles what it launches, a few seconds per dtype.
* Shared memory stays within the default 48 KiB per block (numba-cuda has no opt-in for more);
  ``bt * max(4H, 2H + G)`` elements of state must fit (``G`` = 3H, or 4H reset-after), so
  ``H`` up to 2457 (seed convention) or 2048 (reset-after) in float32, half that in float64.
* The recurrent kernels run at most 512 threads per block (their register use), and memory
  is checked before a fit or a prediction allocates it (a clear error, not the driver's).
* Under Numba's CUDA simulator (no GPU) every thread is a Python thread: use tiny shapes (its
  default launch shapes are tiny too). The simulator proves the logic, not that the kernels are
  fast on a real GPU; they were compiled to PTX for sm_90 in both dtypes, never run on one.
"""

import functools
import math
import warnings
from dataclasses import dataclass
from types import SimpleNamespace

import numba
import numpy as np

from . import _math, config
from .params import B_N, B_RZ, BH_N, BH_RZ, F_, H_, U_N, U_RZ, W_N, W_RZ, NetworkSpec, pack, unpack

try:  # numba-cuda may be missing, or present without its CUDA bindings.
    from numba import cuda
except Exception as exc:  # pragma: no cover - depends on the installation
    cuda = None
    _IMPORT_ERROR = exc
else:
    _IMPORT_ERROR = None

__all__ = [
    "CUDARunner",
    "Tuning",
    "cuda_status",
    "layer_backward",
    "layer_forward",
    "network_loss_grad",
    "predict_cuda",
]

# Operand buffers of a GEMM job.
_WS, _THETA, _GRAD, _ONES = 0, 1, 2, 3
# Columns of a job row: M, N, first tile, n-tiles along N, then two (K, A[4], B[4]) segments,
# then C[4]. An operand is (buffer, offset, row stride, column stride).
_JOB_WIDTH = 26
# Static size of the float64 reduction scratch; block sizes of reducing kernels stay below it.
_RED = 1024
# Default dynamic shared memory limit per block without an opt-in.
_SHARED_LIMIT = 48 * 1024
# Threads per block of the recurrent loop kernels (see _Plan._loop_shape).
_LOOP_THREADS = 512
# Work memory of one prediction pass on a GPU (the chunk of sequences it holds).
_PREDICT_BYTES = 256 * 2**20


def _simulator():
    try:
        from numba import config as nbconfig

        return bool(nbconfig.ENABLE_CUDASIM)
    except Exception:  # pragma: no cover
        return False


def cuda_status():
    """Whether CUDA is usable here and, either way, why, in words.

    Returns
    -------
    (bool, str)
        ``(True, "CUDA simulator")`` under ``NUMBA_ENABLE_CUDASIM=1``; ``(True, device
        description)`` with a usable GPU; else ``(False, reason)``. Never raises.
    """
    if cuda is None:
        return False, f"numba-cuda is not installed or cannot be imported ({_IMPORT_ERROR})"
    try:
        if _simulator():
            return True, "CUDA simulator"
        if cuda.is_available():
            dev = cuda.get_current_device()
            name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
            cc = ".".join(str(v) for v in dev.compute_capability)
            failed = _kernel_probe()
            if failed:
                return False, f"{name} (compute capability {cc}) cannot run kernels: {failed}"
            return True, f"{name} (compute capability {cc})"
        try:
            n_devices = len(cuda.list_devices())  # the list is lazy: len() asks the driver
        except Exception as exc:
            text = " ".join(str(exc).split())
            if "driver library cannot be found" in text or "libcuda" in text:
                return False, "no NVIDIA driver (the CUDA driver library cannot be found)"
            return False, f"CUDA driver error: {text}"
        if n_devices == 0:
            return False, "no CUDA GPU found"
        return False, "no supported CUDA GPU found (compute capability too old?)"
    except Exception as exc:  # pragma: no cover - defensive: must not raise
        return False, f"CUDA check failed: {' '.join(str(exc).split())}"


@functools.cache
def _kernel_probe():
    """``None`` when a one-element kernel compiles, runs and reads back here, else why not,
    in words. ``cuda.is_available()`` only finds the driver and NVVM: a missing libnvrtc,
    a driver older than the PTX that NVVM emits, or a GPU older than NVVM supports all
    pass it and fail at the first launch, which ``device="auto"`` must not choose."""
    try:

        @cuda.jit
        def one(a):
            a[0] = 1.0

        d = cuda.device_array(1, np.float32)
        one[1, 1](d)
        if d.copy_to_host()[0] != 1.0:
            return "a test kernel returned a wrong value"
        return None
    except Exception as exc:
        return " ".join(str(exc).split())[:200] or type(exc).__name__


def _require_cuda():
    ok, why = cuda_status()
    if not ok:
        raise RuntimeError(f"CUDA is not usable: {why}")


@dataclass(frozen=True)
class Tuning:
    """Launch shapes; ``None`` picks a default (different under the simulator, where every
    thread is a Python thread). Tests use these to force the paths they check.

    seq_tile : sequences per block of the recurrent kernels.
    threads : threads per block of the recurrent kernels.
    shared : keep the recurrent weights in shared memory (``None``: when they fit).
    gemm_threads : GEMM block edge in threads (``gemm_threads**2`` threads per block).
    micro : GEMM outputs per thread along each axis (output tile edge
        ``gemm_threads * micro``).
    kt : GEMM depth of one shared-memory stage.
    red_threads : threads per block of the reducing kernels (a power of two <= 1024).
    poison : fill the work buffer with NaN at allocation (proves nothing reads stale memory).
    """

    seq_tile: int | None = None
    threads: int | None = None
    shared: bool | None = None
    gemm_threads: int | None = None
    micro: int | None = None
    kt: int | None = None
    red_threads: int | None = None
    poison: bool = False

    def resolved(self):
        sim = _simulator()
        rt = self.red_threads or (4 if sim else 256)
        if rt < 1 or rt > _RED or rt & (rt - 1):
            raise ValueError(f"red_threads must be a power of two <= {_RED}, got {rt}")
        return SimpleNamespace(
            sim=sim,
            seq_tile=self.seq_tile,
            threads=self.threads or (4 if sim else None),
            shared=self.shared,
            # Simulated threads cost about a millisecond each: one thread per GEMM block there.
            gemm_threads=self.gemm_threads or (1 if sim else 16),
            micro=self.micro or (8 if sim else 4),
            kt=self.kt or (8 if sim else 16),
            red_threads=rt,
            # Few blocks under the simulator (each costs Python threads), enough to fill a GPU.
            red_blocks=min(rt, 2 if sim else 128),
            target_pairs=16 if sim else 256,
            warp=1 if sim else 32,
            poison=self.poison,
        )


# ------------------------------------------------------------------------------------------
# Kernels
# ------------------------------------------------------------------------------------------
def _typed_sigmoid(npdt):
    """``_math.sigmoid`` with constants of the kernel's dtype: its ``1.0`` literals made
    the float32 kernels compute in float64 (PTX ``div.rn.f64``), at 1/32 or 1/64 of the
    float32 rate on consumer GPUs."""
    one = npdt(1.0)

    def sigmoid(x):
        if x >= 0:
            return one / (one + math.exp(-x))
        e = math.exp(x)
        return e / (one + e)

    return sigmoid


@functools.cache
def _kernels(dtype_name, micro):
    """The device functions and kernels for one dtype. Building them compiles nothing: each
    kernel compiles at its first launch. The dtype is a closure constant because shared
    arrays and typed constants need it at compile time."""
    RM = RN = micro  # GEMM outputs per thread along each axis (a local array's shape)
    RMN = RM * RN
    npdt = np.dtype(dtype_name).type  # typed constants: npdt(1.0)
    nbdt = numba.from_dtype(np.dtype(dtype_name))  # shared arrays (the simulator needs this)
    sigmoid = cuda.jit(device=True)(_typed_sigmoid(npdt))
    tanh = cuda.jit(device=True)(_math.tanh)
    clip_scale = cuda.jit(device=True)(_math.clip_scale)
    adam_element = cuda.jit(device=True)(_math.adam_element)
    sgd_element = cuda.jit(device=True)(_math.sgd_element)

    @cuda.jit(device=True)
    def _dot(S, so, U, uo, ld, K):
        # sum_k S[so + k] * U[uo + k * ld], accumulated in the dtype (float32 stays float32).
        acc = npdt(0.0)
        for k in range(K):
            acc += S[so + k] * U[uo + k * ld]
        return acc

    @cuda.jit(device=True)
    def _dots(A, ao, lda, Bm, bo, ldb, K):
        # sum_k A[ao + k * lda] * Bm[bo + k * ldb]
        acc = npdt(0.0)
        for k in range(K):
            acc += A[ao + k * lda] * Bm[bo + k * ldb]
        return acc

    @cuda.jit(device=True)
    def _ld(kind, off, rs, cs, r, c, ws, theta, grad):
        if kind == 0:
            return ws[off + r * rs + c * cs]
        if kind == 1:
            return theta[off + r * rs + c * cs]
        if kind == 2:
            return grad[off + r * rs + c * cs]
        return npdt(1.0)

    @cuda.jit(device=True)
    def _stage(sm, base, ld, w, kt, kind, off, xs, ks, x0, xlim, k0, K, lt, nth, ws, theta,
               grad):  # fmt: skip
        # Stage the w x kt block of an operand at (x0, k0) in shared memory, k-major
        # (sm[base + k * ld + x]; zero outside the operand). Its element (x, k) is at
        # off + x * xs + k * ks. Consecutive threads walk x when that is the contiguous
        # dimension (A transposed, B as stored), else k, so the global loads coalesce.
        xfast = xs == 1 and ks != 1
        for e in range(lt, w * kt, nth):
            if xfast:
                x = e % w
                k = e // w
            else:
                k = e % kt
                x = e // kt
            v = npdt(0.0)
            if x0 + x < xlim and k0 + k < K:
                v = _ld(kind, off, xs, ks, x0 + x, k0 + k, ws, theta, grad)
            sm[base + k * ld + x] = v

    @cuda.jit
    def gather(X, y, order, use_order, with_y, s, B, ws, o_xb, o_yb):
        T = X.shape[1]
        F = X.shape[2]
        O = y.shape[1]
        nx = T * B * F
        total = nx + B * O if with_y else nx
        for p in range(cuda.grid(1), total, cuda.gridsize(1)):
            if p < nx:
                t = p // (B * F)
                rem = p - t * B * F
                i = rem // F
                f = rem - i * F
                src = order[s + i] if use_order else s + i
                ws[o_xb + p] = X[src, t, f]
            else:
                q = p - nx
                i = q // O
                o = q - i * O
                src = order[s + i] if use_order else s + i
                ws[o_yb + q] = y[src, o]

    @cuda.jit
    def gemm(jobs, njobs, ws, theta, grad, kt):
        # Block (TX, TY) threads owns a (TY*RM) x (TX*RN) tile of C; thread (ty, tx) keeps
        # the RM x RN outputs at rows ty + a*TY, columns tx + b*TX in registers, so a warp's
        # shared-memory reads are broadcasts (A) or consecutive (B) and its stores coalesce.
        sm = cuda.shared.array(0, nbdt)
        acc = cuda.local.array(RMN, nbdt)
        ty = cuda.threadIdx.y
        tx = cuda.threadIdx.x
        TY = cuda.blockDim.y
        TX = cuda.blockDim.x
        lt = ty * TX + tx
        nth = TX * TY
        BM = TY * RM
        BN = TX * RN
        ldA = BM + 1  # padded: column-wise shared stores hit distinct banks
        ldB = BN + 1
        s_b = kt * ldA
        bid = cuda.blockIdx.x
        j = 0
        while j + 1 < njobs and jobs[j + 1, 2] <= bid:
            j += 1
        M = jobs[j, 0]
        N = jobs[j, 1]
        loc = bid - jobs[j, 2]
        ntn = jobs[j, 3]
        row0 = (loc // ntn) * BM
        col0 = (loc - (loc // ntn) * ntn) * BN
        for q in range(RMN):
            acc[q] = npdt(0.0)
        for seg in range(2):
            base = 4 + 9 * seg
            K = jobs[j, base]
            ak = jobs[j, base + 1]
            ao = jobs[j, base + 2]
            ars = jobs[j, base + 3]
            acs = jobs[j, base + 4]
            bk = jobs[j, base + 5]
            bo = jobs[j, base + 6]
            brs = jobs[j, base + 7]
            bcs = jobs[j, base + 8]
            for k0 in range(0, K, kt):
                # A's rows and B's columns are the tiles' "x" dimension.
                _stage(sm, 0, ldA, BM, kt, ak, ao, ars, acs, row0, M, k0, K, lt, nth, ws,
                       theta, grad)  # fmt: skip
                _stage(sm, s_b, ldB, BN, kt, bk, bo, bcs, brs, col0, N, k0, K, lt, nth, ws,
                       theta, grad)  # fmt: skip
                cuda.syncthreads()
                for k in range(kt):
                    for a in range(RM):
                        av = sm[k * ldA + ty + a * TY]
                        for b in range(RN):
                            acc[a * RN + b] += av * sm[s_b + k * ldB + tx + b * TX]
                cuda.syncthreads()
        ck = jobs[j, 22]
        co = jobs[j, 23]
        crs = jobs[j, 24]
        ccs = jobs[j, 25]
        for a in range(RM):
            r = row0 + ty + a * TY
            for b in range(RN):
                c = col0 + tx + b * TX
                if r < M and c < N:
                    if ck == 0:
                        ws[co + r * crs + c * ccs] = acc[a * RN + b]
                    else:
                        grad[co + r * crs + c * ccs] = acc[a * RN + b]

    @cuda.jit
    def fwd_loop(ws, theta, T, B, H, o_xp, o_hs, o_rz, o_n, o_aux, u_rz, u_n, bh_n, ra,
                 h0_zero, shared_u, bt):  # fmt: skip
        sm = cuda.shared.array(0, nbdt)
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        i0 = cuda.blockIdx.x * bt
        nb = min(bt, B - i0)
        npair = nb * H
        H2 = 2 * H
        H3 = 3 * H
        HH2 = 2 * H * H
        if shared_u:
            for p in range(tid, 3 * H * H, nt):
                if p < HH2:
                    sm[p] = theta[u_rz + p]
                else:
                    sm[p] = theta[u_n + p - HH2]
        s_h = 3 * H * H if shared_u else 0
        s_rh = s_h + 2 * bt * H
        s_z = s_rh + bt * H
        for p in range(tid, npair, nt):
            g = o_hs + i0 * H + p
            if h0_zero:
                ws[g] = npdt(0.0)
            sm[s_h + p] = ws[g]
        cuda.syncthreads()
        cur = 0
        for t in range(T):
            hc = s_h + cur * bt * H
            hn = s_h + (1 - cur) * bt * H
            for p in range(tid, npair, nt):
                i = p // H
                j = p - i * H
                row = t * B + i0 + i
                xp = o_xp + row * H3
                hrow = hc + i * H
                if shared_u:
                    ar = _dot(sm, hrow, sm, j, H2, H)
                    az = _dot(sm, hrow, sm, H + j, H2, H)
                else:
                    ar = _dot(sm, hrow, theta, u_rz + j, H2, H)
                    az = _dot(sm, hrow, theta, u_rz + H + j, H2, H)
                r = npdt(sigmoid(ar + ws[xp + j]))
                z = npdt(sigmoid(az + ws[xp + H + j]))
                ws[o_rz + row * H2 + j] = r
                ws[o_rz + row * H2 + H + j] = z
                hp = sm[hc + p]
                if ra:
                    if shared_u:
                        a = _dot(sm, hrow, sm, HH2 + j, H, H)
                    else:
                        a = _dot(sm, hrow, theta, u_n + j, H, H)
                    a += theta[bh_n + j]
                    ws[o_aux + row * H + j] = a
                    nn = npdt(tanh(ws[xp + 2 * H + j] + r * a))
                    ws[o_n + row * H + j] = nn
                    hnew = hp + z * (nn - hp)
                    sm[hn + p] = hnew
                    ws[o_hs + (row + B) * H + j] = hnew
                else:
                    rh = r * hp
                    ws[o_aux + row * H + j] = rh
                    sm[s_rh + p] = rh
                    sm[s_z + p] = z
            if not ra:
                # The candidate's product needs the whole row of r * h.
                cuda.syncthreads()
                for p in range(tid, npair, nt):
                    i = p // H
                    j = p - i * H
                    row = t * B + i0 + i
                    if shared_u:
                        a = _dot(sm, s_rh + i * H, sm, HH2 + j, H, H)
                    else:
                        a = _dot(sm, s_rh + i * H, theta, u_n + j, H, H)
                    nn = npdt(tanh(a + ws[o_xp + row * H3 + 2 * H + j]))
                    ws[o_n + row * H + j] = nn
                    hp = sm[hc + p]
                    hnew = hp + sm[s_z + p] * (nn - hp)
                    sm[hn + p] = hnew
                    ws[o_hs + (row + B) * H + j] = hnew
            cuda.syncthreads()
            cur = 1 - cur

    @cuda.jit
    def bwd_loop(ws, theta, T, B, H, o_hs, o_rz, o_n, o_aux, o_d, o_dy, dy_last, o_dh0,
                 u_rz, u_n, ra, shared_u, bt):  # fmt: skip
        sm = cuda.shared.array(0, nbdt)
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        i0 = cuda.blockIdx.x * bt
        nb = min(bt, B - i0)
        npair = nb * H
        H2 = 2 * H
        HH2 = 2 * H * H
        G = 4 * H if ra else 3 * H
        one = npdt(1.0)
        if shared_u:
            # Transposed copies: thread j then reads U[j, c] as sm[c * H + j], unit stride.
            for p in range(tid, HH2, nt):
                c = p // H
                jj = p - c * H
                sm[p] = theta[u_rz + jj * H2 + c]
            for p in range(tid, H * H, nt):
                c = p // H
                jj = p - c * H
                sm[HH2 + p] = theta[u_n + jj * H + c]
        s_dh = 3 * H * H if shared_u else 0
        s_d = s_dh + bt * H
        s_acc = s_d + bt * G
        for p in range(tid, npair, nt):
            sm[s_dh + p] = npdt(0.0)
        cuda.syncthreads()
        for tt in range(T):
            t = T - 1 - tt
            for p in range(tid, npair, nt):
                i = p // H
                j = p - i * H
                row = t * B + i0 + i
                g = sm[s_dh + p]
                if dy_last:
                    if t == T - 1:
                        g += ws[o_dy + (i0 + i) * H + j]
                else:
                    g += ws[o_dy + row * H + j]
                z = ws[o_rz + row * H2 + H + j]
                nn = ws[o_n + row * H + j]
                hp = ws[o_hs + row * H + j]
                dan = g * z * (one - nn * nn)
                daz = g * (nn - hp) * z * (one - z)
                sm[s_acc + p] = g * (one - z)
                d = o_d + row * G
                dr = s_d + i * G
                ws[d + H + j] = daz
                ws[d + 2 * H + j] = dan
                sm[dr + H + j] = daz
                sm[dr + 2 * H + j] = dan
                if ra:
                    r = ws[o_rz + row * H2 + j]
                    dar = dan * ws[o_aux + row * H + j] * r * (one - r)
                    dhn = dan * r
                    ws[d + j] = dar
                    ws[d + 3 * H + j] = dhn
                    sm[dr + j] = dar
                    sm[dr + 3 * H + j] = dhn
            cuda.syncthreads()
            if not ra:
                # da_r needs the whole row of da_n (through U_n^T).
                for p in range(tid, npair, nt):
                    i = p // H
                    j = p - i * H
                    row = t * B + i0 + i
                    dr = s_d + i * G
                    if shared_u:
                        tmp = _dot(sm, dr + 2 * H, sm, HH2 + j, H, H)
                    else:
                        tmp = _dot(sm, dr + 2 * H, theta, u_n + j * H, 1, H)
                    r = ws[o_rz + row * H2 + j]
                    dar = tmp * ws[o_hs + row * H + j] * r * (one - r)
                    ws[o_d + row * G + j] = dar
                    sm[dr + j] = dar
                    sm[s_acc + p] += tmp * r
                cuda.syncthreads()
            for p in range(tid, npair, nt):
                i = p // H
                j = p - i * H
                dr = s_d + i * G
                if shared_u:
                    v = _dot(sm, dr, sm, j, H, H2)
                else:
                    v = _dot(sm, dr, theta, u_rz + j * H2, 1, H2)
                if ra:
                    if shared_u:
                        v += _dot(sm, dr + 3 * H, sm, HH2 + j, H, H)
                    else:
                        v += _dot(sm, dr + 3 * H, theta, u_n + j * H, 1, H)
                sm[s_dh + p] = sm[s_acc + p] + v
            cuda.syncthreads()
        for p in range(tid, npair, nt):
            ws[o_dh0 + i0 * H + p] = sm[s_dh + p]

    @cuda.jit
    def head_train(ws, theta, grad, stat, B, H, O, o_hl, w_o, b_o, o_yhat, o_yb, o_dyh,
                   o_dytop, loss_kind, delta):  # fmt: skip
        red = cuda.shared.array(_RED, numba.float64)
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        inv = 1.0 / (B * O)
        part = 0.0
        for p in range(tid, B * O, nt):
            i = p // O
            o = p - i * O
            yh = _dot(ws, o_hl + i * H, theta, w_o + o, O, H) + theta[b_o + o]
            ws[o_yhat + p] = yh
            # As cpu.loss_and_grad: float64 error, float64 sum.
            e = np.float64(yh) - np.float64(ws[o_yb + p])
            if loss_kind == 0:
                part += e * e
                ws[o_dyh + p] = 2.0 * e * inv
            elif loss_kind == 1:
                part += abs(e)
                ws[o_dyh + p] = (1.0 if e > 0 else (-1.0 if e < 0 else 0.0)) * inv
            else:
                a = abs(e)
                if a <= delta:
                    part += 0.5 * e * e
                    ws[o_dyh + p] = e * inv
                else:
                    part += delta * (a - 0.5 * delta)
                    ws[o_dyh + p] = (delta if e > 0 else -delta) * inv
        red[tid] = part
        cuda.syncthreads()
        s = nt // 2
        while s > 0:
            if tid < s:
                red[tid] += red[tid + s]
            cuda.syncthreads()
            s //= 2
        if tid == 0:
            stat[2] = red[0] * inv
        for p in range(tid, H * O, nt):
            k = p // O
            o = p - k * O
            grad[w_o + p] = _dots(ws, o_hl + k, H, ws, o_dyh + o, O, B)
        for o in range(tid, O, nt):
            acc = npdt(0.0)
            for i in range(B):
                acc += ws[o_dyh + i * O + o]
            grad[b_o + o] = acc
        for p in range(tid, B * H, nt):
            i = p // H
            k = p - i * H
            ws[o_dytop + p] = _dot(ws, o_dyh + i * O, theta, w_o + k * O, 1, O)

    @cuda.jit
    def head_predict(ws, theta, B, H, O, o_hl, w_o, b_o, out, row0):
        for p in range(cuda.grid(1), B * O, cuda.gridsize(1)):
            i = p // O
            o = p - i * O
            out[row0 + i, o] = _dot(ws, o_hl + i * H, theta, w_o + o, O, H) + theta[b_o + o]

    @cuda.jit
    def sumsq(grad, n, partial):
        red = cuda.shared.array(_RED, numba.float64)
        tid = cuda.threadIdx.x
        part = 0.0
        for k in range(cuda.grid(1), n, cuda.gridsize(1)):
            g = np.float64(grad[k])
            part += g * g
        red[tid] = part
        cuda.syncthreads()
        s = cuda.blockDim.x // 2
        while s > 0:
            if tid < s:
                red[tid] += red[tid + s]
            cuda.syncthreads()
            s //= 2
        if tid == 0:
            partial[cuda.blockIdx.x] = red[0]

    @cuda.jit
    def update(theta, grad, m, v, n, partial, nparts, stat, start, bsz, opt_kind, alpha, lr,
               beta1, beta2, eps, momentum, nesterov, clip_norm):  # fmt: skip
        red = cuda.shared.array(_RED, numba.float64)
        tid = cuda.threadIdx.x
        red[tid] = partial[tid] if tid < nparts else 0.0
        cuda.syncthreads()
        s = cuda.blockDim.x // 2
        while s > 0:
            if tid < s:
                red[tid] += red[tid + s]
            cuda.syncthreads()
            s //= 2
        # Every block reduces the same partials in the same order: all see the same norm.
        norm = math.sqrt(red[0])
        loss = stat[2]
        prevbad = stat[1] >= 0.0
        bad = not (math.isfinite(loss) and math.isfinite(norm))
        if cuda.blockIdx.x == 0 and tid == 0 and not prevbad:
            # Another thread reading stat[1] after this write only skips a batch that is
            # skipped anyway.
            if bad:
                stat[1] = start
            else:
                stat[0] += loss * bsz
        if bad or prevbad:
            return
        scale = clip_scale(norm, clip_norm)
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            if opt_kind == 0:
                adam_element(theta, m, v, i, grad[i] * scale, alpha, beta1, beta2, eps)
            else:
                sgd_element(theta, m, i, grad[i] * scale, lr, momentum, nesterov)

    return SimpleNamespace(
        gather=gather,
        gemm=gemm,
        fwd_loop=fwd_loop,
        bwd_loop=bwd_loop,
        head_train=head_train,
        head_predict=head_predict,
        sumsq=sumsq,
        update=update,
    )


# ------------------------------------------------------------------------------------------
# Host side: the plan of the work buffer, job tables and launches
# ------------------------------------------------------------------------------------------
def _cdiv(a, b):
    return -(-a // b)


def _job(M, N, seg1, seg2, C):
    """One GEMM job row; a segment is ``(K, A, B)``, operands ``(buf, off, rs, cs)``."""
    row = [M, N, 0, 0]
    for K, A, B in (seg1, seg2 or (0, (_ONES, 0, 0, 0), (_ONES, 0, 0, 0))):
        row += [K, *A, *B]
    row += list(C)
    assert len(row) == _JOB_WIDTH
    return row


class _JobTable:
    """Job rows with their tile ranges, uploaded once."""

    def __init__(self, rows, tile):
        start = 0
        for r in rows:
            r[2] = start
            r[3] = _cdiv(r[1], tile)
            start += _cdiv(r[0], tile) * r[3]
        self.n = len(rows)
        self.blocks = start
        self.dev = cuda.to_device(np.array(rows, dtype=np.int64).reshape(-1, _JOB_WIDTH))


class _Plan:
    """Offsets of every region of the flat work buffer for batches of up to ``Bmax``
    sequences of ``T`` steps, the recurrent kernels' launch shapes, and the GEMM job tables
    (built per batch size on first use).

    ``train``: also the backward regions. ``full_dy``: the top layer takes a full
    ``(T, B, H)`` incoming gradient (layer helpers) instead of the head's last step only.
    ``need_dx0``: also the gradient with respect to the network input.
    """

    def __init__(self, spec, T, Bmax, dtype, tuning, train=True, full_dy=False, need_dx0=False):
        layout, head, _ = spec.layout()
        self.tn = tuning.resolved()
        self.dtype = np.dtype(dtype)
        self.item = self.dtype.itemsize
        self.T, self.Bmax = int(T), int(Bmax)
        self.ra = bool(spec.reset_after)
        self.train, self.full_dy, self.need_dx0 = train, full_dy, need_dx0
        self.rows = [tuple(int(v) for v in row) for row in layout]
        self.head = tuple(int(v) for v in head)
        self.L = len(self.rows)
        T, B = self.T, self.Bmax
        off = 0

        def take(n):
            nonlocal off
            o = off
            off += int(n)
            return o

        F0 = self.rows[0][F_]
        Htop, O = self.head[0], self.head[1]
        self.F0, self.O = F0, O
        self.o_xb = take(T * B * F0)
        self.o_yb = take(B * O)
        self.o_yhat = take(B * O)
        self.o_dyh = take(B * O)
        self.o_dytop = take(B * Htop) if train else -1
        self.layers = []
        for l, row in enumerate(self.rows):
            F, H = row[F_], row[H_]
            G = 4 * H if self.ra else 3 * H
            r = SimpleNamespace(F=F, H=H, G=G, row=row)
            r.hs = take((T + 1) * B * H)
            r.rz = take(T * B * 2 * H)
            r.n = take(T * B * H)
            r.aux = take(T * B * H)
            r.xp = take(T * B * 3 * H)
            if train:
                r.d = take(T * B * G)
                r.dh0 = take(B * H)
                r.dy = take(T * B * H) if (l < self.L - 1 or full_dy) else -1
            self._loop_shape(r)
            self.layers.append(r)
        self.o_dx0 = take(T * B * F0) if need_dx0 else -1
        self.size = off
        self._tables = {}

    def _loop_shape(self, r):
        tn, H = self.tn, r.H
        bt = tn.seq_tile or max(1, tn.target_pairs // H)
        bt = max(1, min(bt, self.Bmax))
        # At most 512 threads: the loop kernels take 80 registers per thread on sm_75-89
        # (PTX through ptxas), so 1024-thread blocks (64K registers) would not launch.
        nt = tn.threads or min(_LOOP_THREADS, _cdiv(bt * H, tn.warp) * tn.warp)
        state_f = 4 * bt * H  # h (two buffers), r * h, z
        state_b = bt * (2 * H + r.G)  # dh, gate gradients, partial dh
        state = max(state_f, state_b)
        if state * self.item > _SHARED_LIMIT:
            raise ValueError(
                f"{H} units with {bt} sequences per block need {state * self.item} bytes of "
                f"shared memory (limit {_SHARED_LIMIT}); "
                + ("use a smaller seq_tile" if bt > 1 else "use fewer units, or the CPU")
            )
        shared = tn.shared
        if shared is None:
            shared = (3 * H * H + state) * self.item <= _SHARED_LIMIT
        u = 3 * H * H if shared else 0
        r.bt, r.nt, r.shared = bt, nt, bool(shared)
        r.sh_f = (u + state_f) * self.item
        r.sh_b = (u + state_b) * self.item

    # -- job tables ------------------------------------------------------------------------
    def _x_operand(self, l, B, transposed):
        """Layer ``l``'s input as a (T*B, F) matrix, or its transpose."""
        if l == 0:
            off, F = self.o_xb, self.F0
        else:
            below = self.layers[l - 1]
            off, F = below.hs + B * below.H, below.H  # Hs[1:]
        return (_WS, off, 1, F) if transposed else (_WS, off, F, 1)

    def tables(self, B):
        if B not in self._tables:
            self._tables[B] = (
                [self._fwd_table(l, B) for l in range(self.L)],
                [self._bwd_table(l, B) for l in range(self.L)] if self.train else None,
            )
        return self._tables[B]

    def _fwd_table(self, l, B):
        r = self.layers[l]
        F, H, row = r.F, r.H, r.row
        TB = self.T * B
        X = self._x_operand(l, B, False)
        ones = (_ONES, 0, 0, 0)
        # Biases as a product with a column of ones; reset-after folds the constant recurrent
        # r/z bias in too, its row reached by the stride between the two bias blocks.
        kb = 2 if self.ra else 1
        brz = (_THETA, row[B_RZ], row[BH_RZ] - row[B_RZ] if self.ra else 0, 1)
        rows = [
            _job(TB, 2 * H, (F, X, (_THETA, row[W_RZ], 2 * H, 1)), (kb, ones, brz),
                 (_WS, r.xp, 3 * H, 1)),
            _job(TB, H, (F, X, (_THETA, row[W_N], H, 1)), (1, ones, (_THETA, row[B_N], 0, 1)),
                 (_WS, r.xp + 2 * H, 3 * H, 1)),
        ]  # fmt: skip
        return _JobTable(rows, self.tn.gemm_threads * self.tn.micro)

    def _bwd_table(self, l, B):
        r = self.layers[l]
        F, H, G, row = r.F, r.H, r.G, r.row
        TB = self.T * B
        ones = (_ONES, 0, 0, 0)
        XT = self._x_operand(l, B, True)
        HpT = (_WS, r.hs, 1, H)  # Hs[:T] transposed

        def Dc(c):
            return (_WS, r.d + c, G, 1)

        def g(col, rs):
            return (_GRAD, row[col], rs, 1)

        un_a, un_d = (HpT, Dc(3 * H)) if self.ra else ((_WS, r.aux, 1, H), Dc(2 * H))
        rows = [
            _job(H, 2 * H, (TB, HpT, Dc(0)), None, g(U_RZ, 2 * H)),
            _job(H, H, (TB, un_a, un_d), None, g(U_N, H)),
            _job(F, 2 * H, (TB, XT, Dc(0)), None, g(W_RZ, 2 * H)),
            _job(F, H, (TB, XT, Dc(2 * H)), None, g(W_N, H)),
            _job(1, 2 * H, (TB, ones, Dc(0)), None, g(B_RZ, 0)),
            _job(1, H, (TB, ones, Dc(2 * H)), None, g(B_N, 0)),
        ]
        if self.ra:
            rows += [
                _job(1, 2 * H, (TB, ones, Dc(0)), None, g(BH_RZ, 0)),
                _job(1, H, (TB, ones, Dc(3 * H)), None, g(BH_N, 0)),
            ]
        dst = self.layers[l - 1].dy if l > 0 else self.o_dx0
        if dst >= 0:
            # dX = D_rz W_rz^T + D_n W_n^T: one job, two segments, no partial sums to merge.
            rows.append(
                _job(TB, F, (2 * H, Dc(0), (_THETA, row[W_RZ], 1, 2 * H)),
                     (H, Dc(2 * H), (_THETA, row[W_N], 1, H)), (_WS, dst, F, 1))
            )  # fmt: skip
        return _JobTable(rows, self.tn.gemm_threads * self.tn.micro)

    def alloc(self):
        if self.tn.poison:
            return cuda.to_device(np.full(self.size, np.nan, self.dtype))
        return cuda.device_array(self.size, self.dtype)


class _Engine:
    """Launches over one plan: forward, head, backward, update. Holds no data itself."""

    def __init__(self, plan):
        self.p = plan
        tn = plan.tn
        self.k = _kernels(plan.dtype.name, tn.micro)
        self.gt, self.kt = tn.gemm_threads, tn.kt
        bm = tn.gemm_threads * tn.micro
        self.gemm_shared = 2 * tn.kt * (bm + 1) * plan.item
        self.rt = tn.red_threads
        self._cfgs = {}
        self._dummy = None
        self.rb = tn.red_blocks

    def launch(self, name, grid, block, shared=0):
        """``kernel[grid, block, 0, shared]``, the configured launcher cached on a GPU. Its
        creation warns about grids under 128 blocks; the recurrent and head kernels have
        small grids by design, so that warning is silenced here (and only here)."""
        kernel = getattr(self.k, name)
        if self.p.tn.sim:  # the simulator's launcher is the kernel itself, reconfigured
            return kernel[grid, block, 0, shared]
        key = (name, grid, block, shared)
        cfg = self._cfgs.get(key)
        if cfg is None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Grid size")
                cfg = self._cfgs[key] = kernel[grid, block, 0, shared]
        return cfg

    def _grid(self, n):
        per = self.rt
        return max(1, min(_cdiv(n, per), self.rb if self.p.tn.sim else 1024)), per

    def _gemm(self, table, ws, theta, grad):
        self.launch("gemm", table.blocks, (self.gt, self.gt), self.gemm_shared)(
            table.dev, table.n, ws, theta, grad, self.kt
        )

    def gather(self, X, y, order, s, B, ws):
        """Batch ``order[s:s+B]`` (or rows ``s:s+B`` when ``order`` is None) of ``X`` (and
        of ``y`` unless None) into the plan's batch regions."""
        p = self.p
        if self._dummy is None:
            # Typed stand-ins for absent arguments: one compiled signature serves every call.
            self._dummy = (cuda.to_device(np.zeros(1, np.int64)),
                           cuda.to_device(np.zeros((1, 1), p.dtype)))  # fmt: skip
        total = p.T * B * X.shape[2] + (B * p.O if y is not None else 0)
        g, t = self._grid(total)
        self.launch("gather", g, t)(
            X, self._dummy[1] if y is None else y, self._dummy[0] if order is None else order,
            order is not None, y is not None, int(s), int(B), ws, p.o_xb, p.o_yb,
        )  # fmt: skip

    def forward(self, B, ws, theta, h0_zero=True):
        p = self.p
        fwd, _ = p.tables(B)
        for l, r in enumerate(p.layers):
            self._gemm(fwd[l], ws, theta, theta)
            self.launch("fwd_loop", _cdiv(B, r.bt), r.nt, r.sh_f)(
                ws, theta, p.T, int(B), r.H, r.xp, r.hs, r.rz, r.n, r.aux,
                r.row[U_RZ], r.row[U_N], r.row[BH_N], p.ra, bool(h0_zero), r.shared, r.bt,
            )  # fmt: skip

    def top_row(self, B):
        r = self.p.layers[-1]
        return r.hs + self.p.T * B * r.H

    def head_train(self, B, ws, theta, grad, stat, loss_kind, delta):
        p = self.p
        Htop, O, w_o, b_o = p.head
        self.launch("head_train", 1, self.rt)(
            ws, theta, grad, stat, int(B), Htop, O, self.top_row(B), w_o, b_o,
            p.o_yhat, p.o_yb, p.o_dyh, p.o_dytop, int(loss_kind), float(delta),
        )  # fmt: skip

    def head_predict(self, B, ws, theta, out, row0):
        p = self.p
        Htop, O, w_o, b_o = p.head
        g, t = self._grid(B * O)
        self.launch("head_predict", g, t)(
            ws, theta, int(B), Htop, O, self.top_row(B), w_o, b_o, out, int(row0)
        )

    def backward(self, B, ws, theta, grad, top_dy_last=True):
        p = self.p
        _, bwd = p.tables(B)
        for l in range(p.L - 1, -1, -1):
            r = p.layers[l]
            top = l == p.L - 1
            last_only = top and top_dy_last
            o_dy = p.o_dytop if last_only else r.dy
            self.launch("bwd_loop", _cdiv(B, r.bt), r.nt, r.sh_b)(
                ws, theta, p.T, int(B), r.H, r.hs, r.rz, r.n, r.aux, r.d, o_dy, last_only,
                r.dh0, r.row[U_RZ], r.row[U_N], p.ra, r.shared, r.bt,
            )  # fmt: skip
            self._gemm(bwd[l], ws, theta, grad)


def _as_2d_targets(y, n):
    y = np.asarray(y)
    if y.ndim == 1:
        y = y.reshape(n, 1)
    return y


def _check_X(spec, X, dtype):
    X = np.ascontiguousarray(X, dtype=dtype)
    if X.ndim != 3 or X.shape[2] != spec.n_features:
        raise ValueError(f"X must have shape (N, T, {spec.n_features}); got {X.shape}")
    return X


def _new_stat():
    return np.array([0.0, -1.0, 0.0])


# ------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------
class CUDARunner:
    """Runner (see :mod:`fastgru.engine`) over the CUDA kernels: the data, the parameters and
    the optimizer state stay on the device for the whole fit.

    Parameters
    ----------
    spec : NetworkSpec
    theta : ndarray (n_params,), float32 or float64; the dtype of the whole computation.
    opt_state : engine.OptimizerState; updated in place by :meth:`finish`.
    cfg : engine.TrainConfig
    X : ndarray (N, T, F)
    y : ndarray (N, n_outputs)
    tuning : Tuning, optional
    """

    def __init__(self, spec, theta, opt_state, cfg, X, y, tuning=None):
        _require_cuda()
        if cfg.loss not in config.LOSSES:
            raise ValueError(f"unknown loss {cfg.loss!r}")
        if cfg.optimizer not in config.OPTIMIZERS:
            raise ValueError(f"unknown optimizer {cfg.optimizer!r}")
        self.spec, self.cfg = spec, cfg
        self.tuning = tuning or Tuning()
        self.theta = theta
        self.opt = opt_state
        dtype = theta.dtype
        X = _check_X(spec, X, dtype)
        y = np.ascontiguousarray(_as_2d_targets(y, X.shape[0]), dtype=dtype)
        n, T, _ = X.shape
        self.n = n
        bs = int(cfg.batch_size)
        self.plan = _Plan(spec, T, max(1, min(bs, n)), dtype, self.tuning, train=True)
        work = self.plan.size * self.plan.item
        _check_memory(work + X.nbytes + y.nbytes + 4 * theta.nbytes + 8 * n,
                      f"training on the GPU (work arrays for batches of {self.plan.Bmax} "
                      f"sequences of {T} steps: {work / 2**30:.1f} GiB; the data: "
                      f"{(X.nbytes + y.nbytes) / 2**30:.1f} GiB)",
                      "Lower batch_size or the window length, or use device='cpu'.")  # fmt: skip
        self.eng = _Engine(self.plan)
        self.d_X = cuda.to_device(X)
        self.d_y = cuda.to_device(y)
        self.d_theta = cuda.to_device(theta)
        self.d_grad = cuda.to_device(np.zeros_like(theta))
        self.d_m = cuda.to_device(np.ascontiguousarray(opt_state.m, dtype))
        self.d_v = cuda.to_device(np.ascontiguousarray(opt_state.v, dtype))
        self.ws = self.plan.alloc()
        self.d_order = cuda.device_array(max(n, 1), np.int64)
        self.d_stat = cuda.to_device(_new_stat())
        self.d_part = cuda.device_array(self.eng.rb, np.float64)
        self._pred = None
        self._pred_X = None  # (X, its device copy) of the last predict

    def _step(self, s, B, step, d_order):
        """Forward, loss, backward and update of the batch ``order[s:s+B]``, all enqueued."""
        c, eng = self.cfg, self.eng
        eng.gather(self.d_X, self.d_y, d_order, s, B, self.ws)
        eng.forward(B, self.ws, self.d_theta)
        eng.head_train(B, self.ws, self.d_theta, self.d_grad, self.d_stat,
                       config.LOSSES[c.loss], c.huber_delta)  # fmt: skip
        eng.backward(B, self.ws, self.d_theta, self.d_grad)
        n = self.d_theta.shape[0]
        eng.launch("sumsq", eng.rb, eng.rt)(self.d_grad, n, self.d_part)
        b1, b2 = float(c.beta1), float(c.beta2)
        lr = float(c.learning_rate)
        alpha = _math.adam_step_size(lr, b1, b2, step)
        g, t = eng._grid(n)
        eng.launch("update", g, t)(
            self.d_theta, self.d_grad, self.d_m, self.d_v, n, self.d_part, eng.rb, self.d_stat,
            float(s), float(B), config.OPTIMIZERS[c.optimizer], float(alpha), lr, b1, b2,
            float(c.epsilon), float(c.momentum), bool(c.nesterov), float(c.clip_norm or 0.0),
        )  # fmt: skip

    def epoch(self, order):
        """One epoch over ``order``; returns ``(mean_loss, bad_start)`` as the CPU engine."""
        order = np.ascontiguousarray(order, dtype=np.int64)
        n = order.shape[0]
        if n == 0:
            return float("nan"), -1
        # The device reads without bounds checks: refuse what would read past the buffers.
        if order.min() < 0 or order.max() >= self.n:
            raise ValueError(f"order holds indices outside [0, {self.n})")
        if min(int(self.cfg.batch_size), n) > self.plan.Bmax:
            raise ValueError(f"this runner's buffers hold batches of {self.plan.Bmax} samples")
        if n > self.d_order.shape[0]:
            self.d_order = cuda.device_array(n, np.int64)
        self.d_order[:n].copy_to_device(order)
        self.d_stat.copy_to_device(_new_stat())
        bs = int(self.cfg.batch_size)
        step0 = int(self.opt.step[0])
        nb = 0
        for s in range(0, n, bs):
            nb += 1
            # The update kernels skip every batch after a bad one, so this is the step count
            # of every batch that is applied.
            self._step(s, min(bs, n - s), step0 + nb, self.d_order)
        total, bad, _ = self.d_stat.copy_to_host()
        bad = int(bad)
        if bad >= 0:
            self.opt.step[0] = step0 + bad // bs
            return float(total / max(bad, 1)), bad
        self.opt.step[0] = step0 + nb
        return float(total / n), -1

    def predict(self, X):
        """Head output ``(N, n_outputs)`` for ``X (N, T, F)`` with the current parameters.
        The last array predicted stays on the GPU (the validation set, predicted after every
        epoch): an array changed in place between two calls must be passed as a copy."""
        X = _check_X(self.spec, X, self.theta.dtype)
        n, T, _ = X.shape
        chunk = _predict_chunk(self.spec, T, n, self.theta.dtype, self.tuning)
        pr = self._pred
        if pr is None or pr[0].T != T or pr[0].Bmax < chunk:
            self._pred = None  # (its memory goes back before the next is allocated)
            plan = _Plan(self.spec, T, chunk, self.theta.dtype, self.tuning, train=False)
            _check_memory(plan.size * plan.item + 2 * X.nbytes, "predicting on the GPU",
                          "Predict fewer windows at a time, or use device='cpu'.")  # fmt: skip
            pr = self._pred = (plan, _Engine(plan), plan.alloc())
        # The validation set is predicted after every epoch: uploaded once, not each time.
        held = self._pred_X
        if held is None or held[0] is not X:
            held = self._pred_X = (X, cuda.to_device(X))
        return _predict(pr[1], pr[2], self.d_theta, X, held[1])

    def snapshot(self):
        def dup(a):
            b = cuda.device_array_like(a)
            b.copy_to_device(a)
            return b

        return (dup(self.d_theta), dup(self.d_m), dup(self.d_v), self.opt.step.copy())

    def params_finite(self):
        return bool(np.isfinite(self.d_theta.copy_to_host()).all())

    def restore(self, token):
        theta, m, v, step = token
        self.d_theta.copy_to_device(theta)
        self.d_m.copy_to_device(m)
        self.d_v.copy_to_device(v)
        self.opt.step[:] = step

    def finish(self):
        """Copy the parameters and the optimizer moments back into the host arrays."""
        self.theta[:] = self.d_theta.copy_to_host()
        self.opt.m[:] = self.d_m.copy_to_host()
        self.opt.v[:] = self.d_v.copy_to_host()
        return self.theta, self.opt


def _check_memory(needed, what, advice):
    """Raise ``RuntimeError`` when ``needed`` bytes are more than the GPU has free (the
    driver's own error, CUDA_ERROR_OUT_OF_MEMORY from cuMemAlloc, names neither the cause
    nor the fix). Nothing to check under the simulator."""
    if _simulator():
        return
    try:
        free, total = cuda.current_context().get_memory_info()
    except Exception:  # no answer: let the allocation speak
        return
    if needed > free:
        gib = 2.0**30
        raise RuntimeError(f"{what} needs {needed / gib:.1f} GiB of GPU memory; {free / gib:.1f} "
                           f"of {total / gib:.1f} GiB are free. {advice}")  # fmt: skip


def _predict_chunk(spec, T, n, dtype, tuning):
    """Sequences per prediction pass: ``config.PREDICT_CHUNK`` (the CPU's) under the
    simulator, else as many as ``_PREDICT_BYTES`` of work memory hold (each pass is ``T``
    dependent steps: 32 sequences at a time left most of a GPU idle)."""
    if _simulator():
        return max(1, min(config.PREDICT_CHUNK, n))
    per_seq = _Plan(spec, T, 1, dtype, tuning, train=False).size * np.dtype(dtype).itemsize
    return int(max(1, min(n, max(config.PREDICT_CHUNK, _PREDICT_BYTES // max(per_seq, 1)))))


def _predict(eng, ws, d_theta, X, d_X=None):
    plan = eng.p
    n = X.shape[0]
    out = np.empty((n, plan.O), plan.dtype)
    if n == 0:
        return out
    if d_X is None:
        d_X = cuda.to_device(X)
    d_out = cuda.device_array((n, plan.O), plan.dtype)
    for s in range(0, n, plan.Bmax):
        B = min(plan.Bmax, n - s)
        eng.gather(d_X, None, None, s, B, ws)
        eng.forward(B, ws, d_theta)
        eng.head_predict(B, ws, d_theta, d_out, s)
    return d_out.copy_to_host()


def predict_cuda(spec, theta, X, chunk=None, tuning=None):
    """Head output ``(N, n_outputs)`` of the network for ``X (N, T, F)`` on the GPU, in
    ``theta``'s dtype, ``chunk`` sequences per pass (default: as many as 256 MiB of work
    memory hold, ``_predict_chunk``)."""
    _require_cuda()
    theta = np.ascontiguousarray(theta)
    X = _check_X(spec, X, theta.dtype)
    n, T, _ = X.shape
    tuning = tuning or Tuning()
    chunk = int(max(1, min(chunk or _predict_chunk(spec, T, n, theta.dtype, tuning), n)))
    plan = _Plan(spec, T, chunk, theta.dtype, tuning, train=False)
    _check_memory(plan.size * plan.item + 2 * X.nbytes, "predicting on the GPU",
                  "Predict fewer windows at a time, or use device='cpu'.")  # fmt: skip
    return _predict(_Engine(plan), plan.alloc(), cuda.to_device(theta), X)


def network_loss_grad(spec, theta, X, y, loss="mse", huber_delta=1.0, tuning=None):
    """Loss of the network on the batch ``X (B, T, F)``, ``y (B, O)`` and its gradient with
    respect to ``theta`` (the GPU twin of ``cpu.network_loss_grad``; batch-major input).

    Returns
    -------
    (float, ndarray of theta's shape and dtype)
    """
    _require_cuda()
    theta = np.ascontiguousarray(theta)
    dtype = theta.dtype
    X = _check_X(spec, X, dtype)
    B, T, _ = X.shape
    y = np.ascontiguousarray(_as_2d_targets(y, B), dtype=dtype)
    plan = _Plan(spec, T, B, dtype, tuning or Tuning(), train=True)
    eng = _Engine(plan)
    ws = plan.alloc()
    d_X, d_y = cuda.to_device(X), cuda.to_device(y)
    d_theta = cuda.to_device(theta)
    d_grad = cuda.to_device(np.zeros_like(theta))
    d_stat = cuda.to_device(_new_stat())
    eng.gather(d_X, d_y, None, 0, B, ws)
    eng.forward(B, ws, d_theta)
    eng.head_train(B, ws, d_theta, d_grad, d_stat, config.LOSSES[loss], huber_delta)
    eng.backward(B, ws, d_theta, d_grad)
    return float(d_stat.copy_to_host()[2]), d_grad.copy_to_host()


def _layer_spec(F, H, reset_after, dtype):
    return NetworkSpec(int(F), (int(H),), 1, bool(reset_after), np.dtype(dtype).name)


def layer_forward(X, h0, params, reset_after=False, tuning=None):
    """Run one GRU layer on the GPU; as ``cpu.layer_forward``.

    Parameters
    ----------
    X : ndarray (B, T, F), float32 or float64 (the dtype of the computation)
    h0 : ndarray (B, H)
    params : dict of canonical parameters ``W (F, 3H)``, ``U (H, 3H)``, ``b (3H,)`` and, with
        ``reset_after``, ``bh (3H,)``
    reset_after : bool
    tuning : Tuning, optional

    Returns
    -------
    H_seq : ndarray (B, T, H)
    cache : dict for :func:`layer_backward` (holds the device buffers)
    """
    _require_cuda()
    X = np.asarray(X)
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    B, T, F = X.shape
    H = np.asarray(h0).shape[1]
    spec = _layer_spec(F, H, reset_after, dtype)
    layer = {k: params.get(k) for k in ("W", "U", "b", "bh")}
    if not reset_after:
        layer["bh"] = None
    theta = pack(spec, [layer], {"W": np.zeros((H, 1)), "b": np.zeros(1)})
    plan = _Plan(spec, T, B, dtype, tuning or Tuning(), train=True, full_dy=True, need_dx0=True)
    eng = _Engine(plan)
    ws = plan.alloc()
    r = plan.layers[0]
    ws[plan.o_xb : plan.o_xb + T * B * F].copy_to_device(
        np.ascontiguousarray(X.transpose(1, 0, 2), dtype).ravel()
    )
    ws[r.hs : r.hs + B * H].copy_to_device(np.ascontiguousarray(h0, dtype).ravel())
    d_theta = cuda.to_device(theta)
    eng.forward(B, ws, d_theta, h0_zero=False)
    Hs = ws[r.hs : r.hs + (T + 1) * B * H].copy_to_host().reshape(T + 1, B, H)
    cache = {"plan": plan, "eng": eng, "ws": ws, "theta": d_theta, "spec": spec, "B": B}
    return Hs[1:].transpose(1, 0, 2).copy(), cache


def layer_backward(cache, dH_seq):
    """Backpropagation through time for one layer on the GPU; as ``cpu.layer_backward``.

    Returns
    -------
    dict
        ``W``, ``U``, ``b``, ``bh`` (``None`` unless reset-after), ``X (B, T, F)``, ``h0 (B, H)``.
    """
    plan, eng, ws, d_theta, spec, B = (cache[k] for k in ("plan", "eng", "ws", "theta", "spec",
                                                          "B"))  # fmt: skip
    T, r = plan.T, plan.layers[0]
    H, F = r.H, r.F
    dY = np.ascontiguousarray(np.asarray(dH_seq, plan.dtype).transpose(1, 0, 2)).ravel()
    ws[r.dy : r.dy + T * B * H].copy_to_device(dY)
    d_grad = cuda.to_device(np.zeros(d_theta.shape[0], plan.dtype))
    eng.backward(B, ws, d_theta, d_grad, top_dy_last=False)
    layers, _ = unpack(spec, d_grad.copy_to_host())
    g = layers[0]
    dX = ws[plan.o_dx0 : plan.o_dx0 + T * B * F].copy_to_host().reshape(T, B, F)
    return {
        "W": g["W"],
        "U": g["U"],
        "b": g["b"],
        "bh": g["bh"],
        "X": dX.transpose(1, 0, 2).copy(),
        "h0": ws[r.dh0 : r.dh0 + B * H].copy_to_host().reshape(B, H),
    }
