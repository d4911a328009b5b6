"""CPU kernels (``@njit``): GRU forward and backpropagation through time, the dense head,
the losses, gradient clipping, the optimizers, a whole training epoch and prediction.

Gate equations (gate order r, z, n everywhere; ``x`` is the layer input at step t, ``h``
the previous hidden state, row vectors, ``*`` elementwise):

Seed convention (``reset_after=False``, Cho et al. 2014; Keras ``reset_after=False``)::

    r  = sigmoid(x W_r + h U_r + b_r)
    z  = sigmoid(x W_z + h U_z + b_z)
    n  = tanh(x W_n + (r * h) U_n + b_n)
    h' = (1 - z) * h + z * n

Reset-after convention (``reset_after=True``; cuDNN, PyTorch, Keras' default)::

    r  = sigmoid(x W_r + b_r + h U_r + bh_r)
    z  = sigmoid(x W_z + b_z + h U_z + bh_z)
    n  = tanh(x W_n + b_n + r * (h U_n + bh_n))
    h' = (1 - z) * h + z * n

(PyTorch and Keras write the update as ``z * h + (1 - z) * n``: their ``z`` is our
``1 - z``, i.e. the same model with the z-gate weights and biases negated; ``interop``
does that conversion.)

How the work is laid out (``benchmarks/RESULTS.md`` has the measurements behind it):

* The batch is the vector dimension ("batch-as-vector"): one step's slice of a
  ``(T, rows, Bv)`` array is a contiguous ``(rows, Bv)`` block whose ``Bv`` columns are the
  sequences of the batch, rounded up to whole 8-lane vectors (``padded_width``; the padding
  columns hold zeros and get no gradient). A step's gates are one ``(3H, Bv)`` block of
  ``G (T, 3H, Bv)``, r, z and n one after the other, so every elementwise part of a step
  runs over ``H * Bv`` contiguous elements. Every product of a step is then a weight
  matrix times whole vectors of the batch (``C (3H, Bv) += UTc (3H, H) @ h (H, Bv)``): with
  the batch along the rows instead (sessions 1-5), ``H = 50`` was 6.25 vectors, and the
  partly used seventh vector and the narrower tiles it forced cost ~25% of the products.
  One sequence (``Bv = 1``) runs the same products as matrix-vector products (``_mm``:
  ``h.T @ Uc``, the packed blocks of both orientations are kept).
* Each step adds the input projection (biases included) and the recurrent products into
  ``G[t]`` and applies the nonlinearities in place, so ``G`` ends up holding ``r, z, n``.
  The backward pass overwrites ``G[t]`` with the gate gradients once it has read the gates
  and adds the gradient of the layer's input step by step; the weight and bias gradients
  are sums over steps of products along the batch (``_grad_steps``, after the loop).
* float32 matrix products use register-tiled AVX2/FMA micro-kernels emitted as LLVM IR
  (``_make_tile``: 6 x 2 or 8 x 1 vectors of accumulators for the batch-as-vector
  products, 4 x up to 3 otherwise; one row with two sets of accumulators for
  matrix-vector products; ``_make_nt_tile``: 4 x 3 dot products along the batch). On the
  small products of a GRU step they run at about twice OpenBLAS' speed (OpenBLAS packs
  both operands on every call). float64 products call BLAS ``dgemm`` (and loops for the
  sums over steps).
* The float32 elementwise parts of a step (gates, candidate, state update and their
  gradients) are 8-lane vector loops emitted as LLVM IR too (``_make_ew``): branch-free
  approximations of ``exp``, ``sigmoid`` and ``tanh`` with explicit FMAs (relative error
  below 1.5e-7, 1-2 ulp), the last partial vector under a mask. float64 keeps the exact
  ``math.exp``/``math.tanh`` of :mod:`fastgru._math` in plain loops.
* A training batch is split into ``P`` row slices ("parts"), one per thread (``prange``);
  each part has its own work buffer and gradient vector, and the part gradients are summed
  in a fixed order afterwards: bit-for-bit deterministic for a given ``P`` whatever the
  scheduling. ``P`` is chosen by the caller (``engine.CPURunner``).
* Compilation: Numba links every callee into each caller and optimises the whole again,
  level after level, and a parallel loop is compiled twice. The GEMMs (``_sgemm_c``,
  ``_snt_c``), the work of one part (``_part_c``), of one chunk of predictions
  (``_rows_c``), the weight packing (``_pack_c``) and the optimizer step (``_update_c``)
  are therefore compiled once each as C callbacks, and the drivers call them by symbol
  name, the GEMMs through address slots (``ensure_entries`` registers them). The
  products and the elementwise steps are intrinsics emitted in the calling kernel, and
  views are made by ``_view``, not by slicing and reshaping: each of those had compiled
  one more small function. Together
  that took the cold compilation of a first fit from 41-49 s to ~20 s (sessions 1-2) and
  then to 10-13 s from launch to the first prediction (session 4) on the 2-core machine.
* Work arrays come from flat buffers allocated once per fit (``part_workspace_size``):
  allocating megabytes per mini-batch made glibc return and re-fault pages.
"""

import ctypes
import math
import os
import types as pytypes

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, prange, types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

from . import _math
from .config import GEMM_KC, NJIT_OPTIONS, PARALLEL_OPTIONS
from .params import B_N, B_RZ, BH_N, BH_RZ, F_, H_, LAYOUT_WIDTH, U_N, U_RZ, W_N, W_RZ

# Exact scalar nonlinearities (float64 path; the CUDA engine compiles the same source).
sigmoid = njit(inline="always", **NJIT_OPTIONS)(_math.sigmoid)
tanh = njit(inline="always", **NJIT_OPTIONS)(_math.tanh)

#: Elements kept readable after every array :func:`gemm` reads as its right-hand operand
#: or bias: the micro-kernels load whole 8-lane vectors (and discard the extra lanes).
GUARD = 16

# --------------------------------------------------------------------------------------
# float32 kernels emitted as LLVM IR: vector math, elementwise step kernels, GEMM tiles
# --------------------------------------------------------------------------------------
# Numba's loop vectoriser left scalar remainders (as costly as the vector part for the
# 50-wide rows of the seed network), runtime alias checks, and no FMA contraction; and
# typing the scalar math inside every loop cost seconds of compilation. These kernels are
# written directly in 8-lane vector IR instead: masked loads and stores for the last
# partial vector, explicit FMAs.
_F32 = ir.FloatType()
_V8 = ir.VectorType(_F32, 8)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_PF = ir.PointerType(_F32)
_PV = ir.PointerType(_V8)
_V8I32 = ir.VectorType(_I32, 8)
_V8I64 = ir.VectorType(_I64, 8)
_V8I1 = ir.VectorType(ir.IntType(1), 8)
_V4I32 = ir.VectorType(_I32, 4)
_V2I32 = ir.VectorType(_I32, 2)


@intrinsic
def _ptr(typingctx, addr, like):
    """A typed pointer (``like``'s type) from an integer address."""
    sig = types.CPointer(like)(addr, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


_PROTO_I64 = np.int64(0)


_NO_ORDER = np.zeros(0, np.int64)  # a gather of rows in order


@intrinsic
def _view(typingctx, a, off, shape):
    """A C-contiguous view of ``shape`` (an int or a tuple of ints) on the memory of the
    contiguous array ``a``, from its element ``off`` on: ``a.ravel()[off:off + size]
    .reshape(shape)`` without the checks. Numba compiles a reshape (and a slice) as more
    code, once per calling function: this is most of the views the kernels carve out of
    their work buffers, cheaper to compile. Sizes are the caller's to get right."""
    if not (isinstance(a, types.Array) and a.layout == "C" and isinstance(off, types.Integer)):
        return None
    if isinstance(shape, types.Integer):
        nd = 1
    elif isinstance(shape, types.BaseTuple) and all(isinstance(t, types.Integer) for t in shape):
        nd = len(shape)
    else:
        return None
    ret = types.Array(a.dtype, nd, "C")
    sig = ret(a, off, shape)

    def codegen(context, builder, signature, args):
        aty, offty, shty = signature.args
        src = context.make_array(aty)(context, builder, args[0])
        intp = context.get_value_type(types.intp)
        if isinstance(shty, types.BaseTuple):
            parts = cgutils.unpack_tuple(builder, args[2])
            dims = [context.cast(builder, d, t, types.intp)
                    for d, t in zip(parts, shty, strict=True)]  # fmt: skip
        else:
            dims = [context.cast(builder, args[2], shty, types.intp)]
        itemsize = context.get_abi_sizeof(context.get_data_type(aty.dtype))
        strides = []
        step = ir.Constant(intp, itemsize)
        for d in reversed(dims):
            strides.insert(0, step)
            step = builder.mul(step, d)
        start = context.cast(builder, args[1], offty, types.intp)
        out = context.make_array(ret)(context, builder)
        populate_array(out, data=builder.gep(src.data, [start]), shape=dims, strides=strides,
                       itemsize=src.itemsize, meminfo=src.meminfo, parent=src.parent)  # fmt: skip
        return impl_ret_borrowed(context, builder, ret, out._getvalue())

    return sig, codegen


@intrinsic
def _copy(typingctx, src, src_off, dst, dst_off, n):
    """Copy ``n`` elements from ``src[src_off:]`` to ``dst[dst_off:]`` (flat arrays of one
    dtype, distinct buffers): one ``memcpy``, no bounds or wraparound checks (the callers
    compute the offsets from the layout). Element loops compiled to scalar code with a
    wraparound check per index: packing the seed network's weights took ~19 us, an eighth
    of a single-window prediction."""
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array)
            and src.dtype == dst.dtype):  # fmt: skip
        return None
    sig = types.void(src, src_off, dst, dst_off, n)

    def codegen(context, builder, signature, args):
        s, so, d, do, count = args
        sa = context.make_array(signature.args[0])(context, builder, s)
        da = context.make_array(signature.args[2])(context, builder, d)
        itemsize = context.get_abi_sizeof(context.get_data_type(signature.args[0].dtype))
        sp = builder.gep(sa.data, [so])
        dp = builder.gep(da.data, [do])
        cgutils.raw_memcpy(builder, dp, sp, count, itemsize)
        return context.get_dummy_value()

    return sig, codegen


def _splat(x):
    return ir.Constant(_V8, [float(np.float32(x))] * 8)


def _vfn(builder, name, n_args):
    return cgutils.get_or_insert_function(builder.module,
                                          ir.FunctionType(_V8, [_V8] * n_args), name)  # fmt: skip


def _fma(b, x, y, z):
    return b.call(_vfn(b, "llvm.fma.v8f32", 3), [x, y, z])


# exp: Cody-Waite reduction by ln 2 and the Cephes expf polynomial; 2**n built in the
# exponent bits. Relative error < 1e-7 on [-87, 88], clamped outside.
_EXP = dict(lo=-87.0, hi=88.0, log2e=1.44269504088896341, rnd=12582912.0,
            ln2_hi=0.693359375, ln2_lo=-2.12194440e-4,
            p=(1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
               1.6666665459e-1, 5.0000001201e-1))  # fmt: skip
# tanh on |x| < 0.625: x + x^3 P(x^2) (Cephes tanhf).
_TANH_P = (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1,
           -3.33332819422e-1)  # fmt: skip


def _vexp(b, x):
    e = _EXP
    # The clamp as compare-and-select: a NaN compares false and goes through (maxnum and
    # minnum would replace it by the bound), and infinities saturate, as libm's do.
    lo, hi = _splat(e["lo"]), _splat(e["hi"])
    x = b.select(b.fcmp_ordered("<", x, lo), lo, x)
    x = b.select(b.fcmp_ordered(">", x, hi), hi, x)
    # n = round(x log2 e) by the 1.5 * 2^23 trick: t's low mantissa bits hold n itself.
    t = _fma(b, x, _splat(e["log2e"]), _splat(e["rnd"]))
    n = b.fsub(t, _splat(e["rnd"]))
    r = _fma(b, n, _splat(-e["ln2_hi"]), x)
    r = _fma(b, n, _splat(-e["ln2_lo"]), r)
    p = _splat(e["p"][0])
    for c in e["p"][1:]:
        p = _fma(b, p, r, _splat(c))
    y = b.fadd(_fma(b, b.fmul(p, r), r, r), _splat(1.0))
    # 2^n from those bits (integer arithmetic, defined for a NaN too, where fptosi of n
    # would be poison); the same n as fptosi(n) for every other input.
    rnd_bits = int(np.float32(e["rnd"]).view(np.int32))
    ni = b.sub(b.bitcast(t, _V8I32), ir.Constant(_V8I32, [rnd_bits] * 8))
    bits = b.shl(b.add(ni, ir.Constant(_V8I32, [127] * 8)), ir.Constant(_V8I32, [23] * 8))
    return b.fmul(y, b.bitcast(bits, _V8))


def _vsigmoid(b, x):
    """1 / (1 + exp(-x)); relative error < 1.5e-7. NaN in, NaN out (through exp's clamp);
    saturates at the infinities."""
    return b.fdiv(_splat(1.0), b.fadd(_splat(1.0), _vexp(b, b.fneg(x))))


def _vtanh(b, x):
    """tanh: the odd polynomial for |x| < 0.625, else 1 - 2 / (exp(2|x|) + 1) with the
    sign of x; both computed and one selected. Relative error < 1.4e-7."""
    a = b.call(_vfn(b, "llvm.fabs.v8f32", 1), [x])
    e2 = _vexp(b, b.fmul(_splat(2.0), a))
    big = b.fsub(_splat(1.0), b.fdiv(_splat(2.0), b.fadd(e2, _splat(1.0))))
    big = b.call(_vfn(b, "llvm.copysign.v8f32", 2), [big, x])
    z = b.fmul(x, x)
    p = _splat(_TANH_P[0])
    for c in _TANH_P[1:]:
        p = _fma(b, p, z, _splat(c))
    small = _fma(b, b.fmul(p, z), x, x)
    # A NaN fails the comparison and takes the exp branch, which carries it through.
    return b.select(b.fcmp_ordered("<", a, _splat(0.625)), small, big)


def _vloop(builder, m, body):
    """Emit ``for i in range(0, m, 8): body(ld, st)``: whole vectors, one per trip, then the
    last partial one under a mask. ``body`` gets ``ld(addr) -> vector`` and
    ``st(vector, addr)`` for float32 arrays at the given base addresses (offset by the loop
    position).

    One vector per trip: out-of-order execution already overlaps the trips. Four per trip
    (the first version) were as fast on long arrays (gates of 16 and 32 rows: within 3%),
    slower on a row of 50 (17-20 against 16.5 us per layer of 100 steps), and emitted the
    body six times instead of twice (~0.5 s more to compile the training entry point)."""
    i64 = _I64
    mload = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_V8, [_PF, _I32, _V8I1, _V8]), "llvm.masked.load.v8f32.p0"
    )
    mstore = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [_V8, _PF, _I32, _V8I1]),
        "llvm.masked.store.v8f32.p0",
    )  # fmt: skip
    align = ir.Constant(_I32, 4)

    def ptr(addr, at):
        return builder.gep(builder.inttoptr(addr, _PF), [at])

    def whole_vectors(stop, emit):
        # for i in range(0, stop, 8), stop a multiple of 8.
        pre = builder.block
        loop = builder.append_basic_block("v.loop")
        after = builder.append_basic_block("v.loop.end")
        builder.cbranch(builder.icmp_signed("<", ir.Constant(i64, 0), stop), loop, after)
        builder.position_at_end(loop)
        i = builder.phi(i64)
        i.add_incoming(ir.Constant(i64, 0), pre)
        emit(i)
        nxt = builder.add(i, ir.Constant(i64, 8))
        i.add_incoming(nxt, builder.block)
        builder.cbranch(builder.icmp_signed("<", nxt, stop), loop, after)
        builder.position_at_end(after)

    def whole(i):
        body(lambda a: builder.load(builder.bitcast(ptr(a, i), _PV), align=4),
             lambda v, a: builder.store(v, builder.bitcast(ptr(a, i), _PV), align=4))  # fmt: skip

    m8 = builder.and_(m, ir.Constant(i64, -8))
    whole_vectors(m8, whole)
    last = builder.append_basic_block("v.last")
    done = builder.append_basic_block("v.done")
    builder.cbranch(builder.icmp_signed("<", m8, m), last, done)
    builder.position_at_end(last)
    rem = builder.sub(m, m8)
    remv = builder.insert_element(ir.Constant(_V8I64, ir.Undefined), rem, ir.Constant(_I32, 0))
    remv = builder.shuffle_vector(remv, ir.Constant(_V8I64, ir.Undefined),
                                  ir.Constant(_V8I32, [0] * 8))  # fmt: skip
    mask = builder.icmp_signed("<", ir.Constant(_V8I64, list(range(8))), remv)
    zero = ir.Constant(_V8, [0.0] * 8)
    body(lambda a: builder.call(mload, [ptr(a, m8), align, mask, zero]),
         lambda v, a: builder.call(mstore, [v, ptr(a, m8), align, mask]))  # fmt: skip
    builder.branch(done)
    builder.position_at_end(done)


def _make_ew(n_ptrs, body):
    """An intrinsic ``f(addr_1, ..., addr_n, m)`` running ``body`` over ``m`` elements
    (int64 addresses of float32 arrays); its ``emit(builder, addrs, m)`` emits the same
    loop into other code (the ``ew_*`` intrinsics)."""

    def emit(builder, addrs, m):
        _vloop(builder, m, lambda ld, st: body(builder, ld, st, addrs))

    def typer(typingctx, *args):
        def codegen(context, builder, signature, llargs):
            emit(builder, llargs[:-1], llargs[-1])
            return context.get_dummy_value()

        return types.void(*([types.int64] * (n_ptrs + 1))), codegen

    # Numba's intrinsics need named parameters: spell them out.
    names = ", ".join(f"a{i}" for i in range(n_ptrs + 1))
    ns = {"typer": typer}
    exec(f"def kernel(typingctx, {names}):\n    return typer(typingctx, {names})", ns)
    kernel = intrinsic(ns["kernel"])
    kernel.emit = emit
    return kernel


def _ew_fwd_seed1_body(b, ld, st, a):  # R, Z, h, aux: gates r, z and r * h
    R, Z, h, aux = a
    r = _vsigmoid(b, ld(R))
    st(r, R)
    st(_vsigmoid(b, ld(Z)), Z)
    st(b.fmul(r, ld(h)), aux)


def _ew_fwd_seed2_body(b, ld, st, a):  # N, Z, h, hnext: candidate and new state
    N, Z, h, hn = a
    n = _vtanh(b, ld(N))
    st(n, N)
    hp = ld(h)
    st(b.fadd(hp, b.fmul(ld(Z), b.fsub(n, hp))), hn)


def _ew_fwd_ra_body(b, ld, st, a):  # R, Z, N, h, aux (= h U_n + bh_n), hnext
    R, Z, N, h, aux, hn = a
    r = _vsigmoid(b, ld(R))
    z = _vsigmoid(b, ld(Z))
    n = _vtanh(b, _fma(b, r, ld(aux), ld(N)))
    st(r, R)
    st(z, Z)
    st(n, N)
    hp = ld(h)
    st(b.fadd(hp, b.fmul(z, b.fsub(n, hp))), hn)


def _ew_bwd_seed1_body(b, ld, st, a):  # Z, N, h, dh, dy
    Z, N, h, dh, dy = a
    one = _splat(1.0)
    g = b.fadd(ld(dh), ld(dy))
    z = ld(Z)
    n = ld(N)
    st(b.fmul(b.fmul(g, z), b.fsub(one, b.fmul(n, n))), N)
    st(b.fmul(b.fmul(b.fmul(g, b.fsub(n, ld(h))), z), b.fsub(one, z)), Z)
    st(b.fmul(g, b.fsub(one, z)), dh)


def _ew_bwd_seed2_body(b, ld, st, a):  # R, h, tmp (gradient of r * h), dh
    R, h, tmp, dh = a
    r = ld(R)
    d = ld(tmp)
    st(b.fmul(b.fmul(b.fmul(d, ld(h)), r), b.fsub(_splat(1.0), r)), R)
    st(b.fadd(ld(dh), b.fmul(d, r)), dh)


def _ew_bwd_ra_body(b, ld, st, a):  # R, Z, N, h, aux, dan, dh, dy
    R, Z, N, h, aux, dan, dh, dy = a
    one = _splat(1.0)
    g = b.fadd(ld(dh), ld(dy))
    r = ld(R)
    z = ld(Z)
    n = ld(N)
    dn = b.fmul(b.fmul(g, z), b.fsub(one, b.fmul(n, n)))
    st(dn, dan)
    st(b.fmul(b.fmul(b.fmul(dn, ld(aux)), r), b.fsub(one, r)), R)
    st(b.fmul(b.fmul(b.fmul(g, b.fsub(n, ld(h))), z), b.fsub(one, z)), Z)
    st(b.fmul(dn, r), N)
    st(b.fmul(g, b.fsub(one, z)), dh)


def _ew_act_body(b, ld, st, a):  # x, sigmoid(x), tanh(x): for tests and benchmarks
    x, s, t = a
    v = ld(x)
    st(_vsigmoid(b, v), s)
    st(_vtanh(b, v), t)


_ew_fwd_seed1 = _make_ew(4, _ew_fwd_seed1_body)
_ew_fwd_seed2 = _make_ew(4, _ew_fwd_seed2_body)
_ew_fwd_ra = _make_ew(6, _ew_fwd_ra_body)
_ew_bwd_seed1 = _make_ew(5, _ew_bwd_seed1_body)
_ew_bwd_seed2 = _make_ew(4, _ew_bwd_seed2_body)
_ew_bwd_ra = _make_ew(8, _ew_bwd_ra_body)
_ew_act = _make_ew(3, _ew_act_body)


@njit(**NJIT_OPTIONS)
def activations32(x, sig, tnh):
    """The float32 kernels' sigmoid and tanh of ``x`` into ``sig`` and ``tnh`` (1-D
    contiguous float32 arrays of one size): for accuracy checks and benchmarks."""
    _ew_act(x.ctypes.data, sig.ctypes.data, tnh.ctypes.data, x.shape[0])


# --------------------------------------------------------------------------------------
# float32 matrix products: register-tiled micro-kernels
# --------------------------------------------------------------------------------------


def _incoming(phis, values, block):
    """``phis[r][v]`` gets ``values[r][v]`` from ``block``: a tile's accumulators at a loop
    edge."""
    for prow, vrow in zip(phis, values, strict=True):
        for p, v in zip(prow, vrow, strict=True):
            p.add_incoming(v, block)


def _tile_start(builder, a_, b_, c_):
    """The float pointers of a tile's operands, the FMA intrinsic and a zero vector."""
    fma = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_V8, [_V8, _V8, _V8]), "llvm.fma.v8f32"
    )
    ptrs = [builder.inttoptr(x, _PF) for x in (a_, b_, c_)]
    return (*ptrs, fma, ir.Constant(_V8, [0.0] * 8))


def _make_tile(MR, NV):
    """An intrinsic for one register tile ``C (MR x 8NV) (+)= A (MR x K) B (K x 8NV) (+ bias)``.

    Arguments (all ``intp``): ``a, sai, sak`` (address of ``A[0, 0]`` and element strides),
    ``b, ldb`` (address of ``B[0, 0]``, row stride; rows contiguous; whole 8-lane vectors
    are loaded, so up to 7 elements past each row's last used column must be readable),
    ``c, ldc`` (rows contiguous), ``bias`` (0, or the address of a row added to every row
    of the result; read as whole vectors), ``K``, ``acc`` (nonzero: add to ``C``) and
    ``ncols`` (columns of ``C`` to store, ``8(NV-1) < ncols <= 8NV``; the last vector is
    loaded and stored under a mask). The ``MR * NV`` accumulators stay in registers over the
    k loop.
    """

    @intrinsic
    def tile(typingctx, a, sai, sak, b, ldb, c, ldc, bias, K, acc, ncols):
        sig = types.void(*([types.intp] * 11))

        def codegen(context, builder, signature, args):
            a_, sai_, sak_, b_, ldb_, c_, ldc_, bias_, K_, acc_, ncols_ = args
            ap, bp, cp, fma, zero = _tile_start(builder, a_, b_, c_)
            undef = ir.Constant(_V8, ir.Undefined)
            splat0 = ir.Constant(ir.VectorType(_I32, 8), [0] * 8)
            pre = builder.block

            def rows_of_b(k):
                boff = builder.mul(k, ldb_)
                out = []
                for v in range(NV):
                    ptr = builder.gep(bp, [builder.add(boff, ir.Constant(_I64, 8 * v))])
                    out.append(builder.load(builder.bitcast(ptr, _PV), align=4))
                return out

            def a_splat(k, r):
                off = builder.add(builder.mul(k, sak_), builder.mul(sai_, ir.Constant(_I64, r)))
                s = builder.load(builder.gep(ap, [off]), align=4)
                sv = builder.insert_element(undef, s, ir.Constant(_I32, 0))
                return builder.shuffle_vector(sv, undef, splat0)

            def phis(incoming):
                out = []
                for row in incoming:
                    out.append([])
                    for val, blk in row:
                        p = builder.phi(_V8)
                        for vv, bb in zip(val, blk, strict=True):
                            p.add_incoming(vv, bb)
                        out[-1].append(p)
                return out

            if MR > 1:
                # k loop: the MR x NV accumulators are phis; one row of B (NV vectors) and
                # MR broadcasts of A per step. The offsets into A and B advance by their
                # strides (phis, not k times a stride: LLVM left a multiply per row in the
                # loop of the 6-row tile, and spilled registers).
                rowoff = [builder.mul(sai_, ir.Constant(_I64, r)) for r in range(MR)]
                loop = builder.append_basic_block("tile.loop")
                done = builder.append_basic_block("tile.done")
                builder.cbranch(builder.icmp_signed(">", K_, ir.Constant(_I64, 0)), loop, done)
                builder.position_at_end(loop)
                k = builder.phi(_I64)
                k.add_incoming(ir.Constant(_I64, 0), pre)
                ao = builder.phi(_I64)
                ao.add_incoming(ir.Constant(_I64, 0), pre)
                bo = builder.phi(_I64)
                bo.add_incoming(ir.Constant(_I64, 0), pre)
                accs = [[builder.phi(_V8) for _v in range(NV)] for _r in range(MR)]
                _incoming(accs, [[zero] * NV] * MR, pre)
                bv = []
                for v in range(NV):
                    ptr = builder.gep(bp, [builder.add(bo, ir.Constant(_I64, 8 * v))])
                    bv.append(builder.load(builder.bitcast(ptr, _PV), align=4))
                new = []
                for r in range(MR):
                    sa = builder.load(builder.gep(ap, [builder.add(ao, rowoff[r])]), align=4)
                    sv = builder.shuffle_vector(
                        builder.insert_element(undef, sa, ir.Constant(_I32, 0)), undef, splat0
                    )
                    new.append([builder.call(fma, [sv, bv[v], accs[r][v]]) for v in range(NV)])
                k1 = builder.add(k, ir.Constant(_I64, 1))
                k.add_incoming(k1, loop)
                ao.add_incoming(builder.add(ao, sak_), loop)
                bo.add_incoming(builder.add(bo, ldb_), loop)
                _incoming(accs, new, loop)
                builder.cbranch(builder.icmp_signed("<", k1, K_), loop, done)
                builder.position_at_end(done)
                fin = phis([[((zero, new[r][v]), (pre, loop)) for v in range(NV)]
                            for r in range(MR)])  # fmt: skip
            else:
                # One row (a matrix-vector product): the k loop is a chain of dependent
                # FMAs per vector, so even and odd k go to two sets of accumulators.
                loop = builder.append_basic_block("tile.loop2")
                mid = builder.append_basic_block("tile.mid")
                odd = builder.append_basic_block("tile.odd")
                done = builder.append_basic_block("tile.done")
                builder.cbranch(builder.icmp_signed(">", K_, ir.Constant(_I64, 1)), loop, mid)
                builder.position_at_end(loop)
                k = builder.phi(_I64)
                k.add_incoming(ir.Constant(_I64, 0), pre)
                acc0 = [builder.phi(_V8) for _v in range(NV)]
                acc1 = [builder.phi(_V8) for _v in range(NV)]
                for p in acc0 + acc1:
                    p.add_incoming(zero, pre)
                kb = builder.add(k, ir.Constant(_I64, 1))
                b0, b1 = rows_of_b(k), rows_of_b(kb)
                s0, s1 = a_splat(k, 0), a_splat(kb, 0)
                n0 = [builder.call(fma, [s0, b0[v], acc0[v]]) for v in range(NV)]
                n1 = [builder.call(fma, [s1, b1[v], acc1[v]]) for v in range(NV)]
                k2 = builder.add(k, ir.Constant(_I64, 2))
                k.add_incoming(k2, loop)
                for v in range(NV):
                    acc0[v].add_incoming(n0[v], loop)
                    acc1[v].add_incoming(n1[v], loop)
                more = builder.icmp_signed("<", builder.add(k2, ir.Constant(_I64, 1)), K_)
                builder.cbranch(more, loop, mid)
                builder.position_at_end(mid)
                kk = builder.phi(_I64)
                kk.add_incoming(ir.Constant(_I64, 0), pre)
                kk.add_incoming(k2, loop)
                m0 = [builder.phi(_V8) for _v in range(NV)]
                m1 = [builder.phi(_V8) for _v in range(NV)]
                for v in range(NV):
                    m0[v].add_incoming(zero, pre)
                    m0[v].add_incoming(n0[v], loop)
                    m1[v].add_incoming(zero, pre)
                    m1[v].add_incoming(n1[v], loop)
                builder.cbranch(builder.icmp_signed("<", kk, K_), odd, done)
                builder.position_at_end(odd)
                bo = rows_of_b(kk)
                so = a_splat(kk, 0)
                o0 = [builder.call(fma, [so, bo[v], m0[v]]) for v in range(NV)]
                builder.branch(done)
                builder.position_at_end(done)
                f0 = phis([[((m0[v], o0[v]), (mid, odd)) for v in range(NV)]])[0]
                fin = [[builder.fadd(f0[v], m1[v]) for v in range(NV)]]
            # The bias row (zero when there is none).
            hasb = builder.icmp_signed("!=", bias_, ir.Constant(_I64, 0))
            from_block = builder.block
            with builder.if_then(hasb):
                biasp = builder.inttoptr(bias_, _PF)
                loaded = []
                for v in range(NV):
                    ptr = builder.bitcast(builder.gep(biasp, [ir.Constant(_I64, 8 * v)]), _PV)
                    loaded.append(builder.load(ptr, align=4))
                load_block = builder.block
            bvec = []
            for v in range(NV):
                p = builder.phi(_V8)
                p.add_incoming(zero, from_block)
                p.add_incoming(loaded[v], load_block)
                bvec.append(p)
            doacc = builder.icmp_signed("!=", acc_, ir.Constant(_I64, 0))
            # Lanes of the last vector to store: ncols - 8 (NV - 1), as a mask.
            rem = builder.sub(ncols_, ir.Constant(_I64, 8 * (NV - 1)))
            remv = builder.insert_element(ir.Constant(_V8I64, ir.Undefined), rem,
                                          ir.Constant(_I32, 0))  # fmt: skip
            remv = builder.shuffle_vector(remv, ir.Constant(_V8I64, ir.Undefined), splat0)
            mask = builder.icmp_signed("<", ir.Constant(_V8I64, list(range(8))), remv)
            mload = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(_V8, [_PF, _I32, _V8I1, _V8]),
                "llvm.masked.load.v8f32.p0",
            )
            mstore = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(ir.VoidType(), [_V8, _PF, _I32, _V8I1]),
                "llvm.masked.store.v8f32.p0",
            )
            align = ir.Constant(_I32, 4)
            for r in range(MR):
                crow = builder.mul(ldc_, ir.Constant(_I64, r))
                for v in range(NV):
                    val = builder.fadd(fin[r][v], bvec[v])
                    ptr = builder.gep(cp, [builder.add(crow, ir.Constant(_I64, 8 * v))])
                    if v < NV - 1:
                        vptr = builder.bitcast(ptr, _PV)
                        old = builder.load(vptr, align=4)
                        builder.store(builder.select(doacc, builder.fadd(old, val), val), vptr,
                                      align=4)  # fmt: skip
                    else:
                        old = builder.call(mload, [ptr, align, mask, zero])
                        res = builder.select(doacc, builder.fadd(old, val), val)
                        builder.call(mstore, [res, ptr, align, mask])
            return context.get_dummy_value()

        return sig, codegen

    return tile


# 4 rows x 1-3 vectors (up to 12 of the 16 AVX2 registers as accumulators), narrower and
# wider shapes for the row remainder and for matrix-vector products (one row, two sets of
# accumulators: up to 14 registers).
_t4_1, _t4_2, _t4_3 = _make_tile(4, 1), _make_tile(4, 2), _make_tile(4, 3)
_t3_1, _t3_2, _t3_3 = _make_tile(3, 1), _make_tile(3, 2), _make_tile(3, 3)
_t2_1, _t2_2, _t2_3, _t2_4 = _make_tile(2, 1), _make_tile(2, 2), _make_tile(2, 3), _make_tile(2, 4)
_t1_1, _t1_2, _t1_3, _t1_4 = _make_tile(1, 1), _make_tile(1, 2), _make_tile(1, 3), _make_tile(1, 4)
_t1_5, _t1_6, _t1_7 = _make_tile(1, 5), _make_tile(1, 6), _make_tile(1, 7)
# Tall tiles for the batch-as-vector products (weights' rows times 8 or 16 batch columns):
# 6 x 2 and 8 x 1 vectors keep 12 and 8 accumulators busy where 4-row tiles kept 8 and 4.
_t6_2, _t8_1 = _make_tile(6, 2), _make_tile(8, 1)


@njit(**NJIT_OPTIONS)
def _tile(mr, nv, a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc):
    if mr == 6:
        _t6_2(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
    elif mr == 8:
        _t8_1(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
    elif mr == 4:
        if nv == 3:
            _t4_3(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
        elif nv == 2:
            _t4_2(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
        else:
            _t4_1(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
    elif mr == 3:
        if nv == 3:
            _t3_3(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
        elif nv == 2:
            _t3_2(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
        else:
            _t3_1(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
    elif mr == 2:
        if nv == 4:
            _t2_4(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
        elif nv == 3:
            _t2_3(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
        elif nv == 2:
            _t2_2(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
        else:
            _t2_1(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
    elif nv <= 4:
        if nv == 4:
            _t1_4(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
        elif nv == 3:
            _t1_3(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
        elif nv == 2:
            _t1_2(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
        else:
            _t1_1(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
    elif nv == 7:
        _t1_7(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
    elif nv == 6:
        _t1_6(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)
    else:
        _t1_5(a, sai, sak, b, ldb, c, ldc, bias, K, acc, nc)


@njit(**NJIT_OPTIONS)
def _outer_c(a0, sai, b0, c0, ldc, bias0, M, N, acc):
    """``C (+)= a b + bias`` for a column ``a (M,)`` and a row ``b (N,)`` (addresses)."""
    proto = np.float32(0)
    b = carray(_ptr(b0, proto), N)
    bias = carray(_ptr(bias0 if bias0 != 0 else b0, proto), N)
    hb = np.float32(1) if bias0 != 0 else np.float32(0)
    for i in range(M):
        a = carray(_ptr(a0 + 4 * i * sai, proto), 1)[0]
        c = carray(_ptr(c0 + 4 * i * ldc, proto), N)
        if acc:
            for j in range(N):
                c[j] += a * b[j] + hb * bias[j]
        else:
            for j in range(N):
                c[j] = a * b[j] + hb * bias[j]


@njit(inline="always", **NJIT_OPTIONS)
def _col_split(nvec, maxv):
    """``(blocks, base, extra)``: ``nvec`` vectors in near-equal blocks of at most ``maxv``
    (the first ``extra`` blocks one wider), with no lone 1-vector block where avoidable.
    No division when one block fits (every matrix-vector product of H <= 56)."""
    if nvec <= maxv:
        return 1, nvec, 0
    nblk = (nvec + maxv - 1) // maxv
    return nblk, nvec // nblk, nvec % nblk


@njit(**NJIT_OPTIONS)
def _bv_gemm(a0, sai, b0, c0, M, N, K, acc):
    """``C (M, N) (+)= A (M, K) B (K, N)`` for the batch-as-vector products of 8 or a
    multiple of 16 columns (the batch), rows of ``A`` contiguous (a weight matrix), ``B`` and ``C``
    without gaps between rows: 6 x 2 tiles with the unit strides as constants (through
    the general loop's dispatch, with every stride a variable, the tile's k loop kept a
    multiply per row and spilled registers: 3.6 us for a 150 x 50 x 16 product, 2.6 us
    here, 93 GFLOP/s). Returns the first row not done (the general loop does the last
    few)."""
    i = 0
    if N == 8:  # parts of up to 8 sequences: 8 x 1 tiles (45 GFLOP/s with variable strides)
        while M - i >= 8:
            _t8_1(a0 + 4 * i * sai, sai, 1, b0, 8, c0 + 32 * i, 8, 0, K, acc, 8)
            i += 8
        return i
    while M - i >= 6:
        a = a0 + 4 * i * sai
        c = c0 + 4 * i * N
        for j in range(0, N, 16):
            _t6_2(a, sai, 1, b0 + 4 * j, N, c + 4 * j, N, 0, K, acc, 16)
        i += 6
    return i


_SGEMM_SIG = types.void(*([types.int64] * 12))


def _sgemm_c(a0, sai, sak, b0, ldb, c0, ldc, bias0, M, N, K, acc):
    """``C (M, N) (+)= A (M, K) B (K, N) (+ bias)`` on float32 addresses and element strides.

    ``K`` in panels of ``GEMM_KC`` (a panel of B stays in L1 while every row block of A
    passes over it); row blocks of 4 outside, the row's vectors split into near-equal
    column blocks inside (no lone 1-vector block where avoidable). The bias is added once.
    """
    if M <= 0 or N <= 0:
        return
    if K == 1:
        # An outer product (a layer with one input feature): no k loop to amortise a tile's
        # set-up on, and the compiler vectorises the row update well.
        _outer_c(a0, sai, b0, c0, ldc, bias0, M, N, acc)
        return
    i0 = 0
    if sak == 1 and bias0 == 0 and ldb == N and ldc == N and (N % 16 == 0 or N == 8):
        i0 = _bv_gemm(a0, sai, b0, c0, M, N, K, acc)
        if i0 >= M:
            return
    # The split of a row's vectors into column blocks, per row-block height: computed once
    # per call, not per row block and k panel (each integer division costs ~15-40 cycles).
    # Every block is mrb rows high but the last ones, of at most 4 rows.
    nvec = (N + 7) >> 3
    if nvec <= 2 or nvec == 4:
        # The batch as the vector dimension (8, 16 or 32 columns): tall tiles of 8 x 1 or
        # 6 x 2 vectors; leftover rows in tiles of at most 4 rows, the same column blocks.
        mrb = 8 if nvec == 1 else 6
        nb4, base4, extra4 = nvec // min(nvec, 2), min(nvec, 2), 0
        nbr, baser, extrar = nb4, base4, extra4
    else:
        mrb = 4
        nb4, base4, extra4 = _col_split(nvec, 3) if M >= 4 else (0, 0, 0)
        rem = M & 3
        nbr, baser, extrar = _col_split(nvec, 3 if rem == 3 else (4 if rem == 2 else 7))
    k0 = 0
    while True:
        kk = max(min(GEMM_KC, K - k0), 0)  # one pass with kk = 0 when K = 0: C = bias
        first = k0 == 0
        ac = acc if first else 1
        bz = bias0 if first else 0
        ak = a0 + 4 * k0 * sak
        bk = b0 + 4 * k0 * ldb
        i = i0
        while i < M:
            mr = mrb if M - i >= mrb else min(4, M - i)
            if mr == mrb:
                nblk, base, extra = nb4, base4, extra4
            else:
                nblk, base, extra = nbr, baser, extrar
            j0 = 0
            for q in range(nblk):
                nv = base + (1 if q < extra else 0)
                nc = min(8 * nv, N - j0)
                _tile(mr, nv, ak + 4 * i * sai, sai, sak, bk + 4 * j0, ldb,
                      c0 + 4 * (i * ldc + j0), ldc, bz + 4 * j0 if bz != 0 else 0, kk, ac,
                      nc)  # fmt: skip
                j0 += nc
            i += mr
        k0 += GEMM_KC
        if k0 >= K:
            break


def _make_nt_tile(MI, NJ):
    """An intrinsic for one register tile of products summed over steps:
    ``C[i, j] (+)= sum_t sum_k A[t, i, k] B[t, j, k]`` for ``i < MI``, ``j < NJ``, ``k`` over
    ``8 nv`` contiguous elements of each step (the weight gradients of the batch-as-vector
    layout, where the batch is the contiguous dimension of both operands).

    Arguments (all ``intp``): ``a, sai, sat`` (address of ``A[0, 0, 0]``, row and step
    strides in elements), ``b, sbj, sbt``, ``c, ldc``, ``T`` (steps), ``nv`` (vectors per
    step, at least 1) and ``acc`` (nonzero: add to ``C``). One vector accumulator per
    ``(i, j)``, summed across its lanes in a fixed order at the end.
    """

    @intrinsic
    def tile(typingctx, a, sai, sat, b, sbj, sbt, c, ldc, T, nv, acc):
        sig = types.void(*([types.intp] * 11))

        def codegen(context, builder, signature, args):
            a_, sai_, sat_, b_, sbj_, sbt_, c_, ldc_, T_, nv_, acc_ = args
            ap, bp, cp, fma, zero = _tile_start(builder, a_, b_, c_)
            i64 = lambda x: ir.Constant(_I64, x)  # noqa: E731
            pre = builder.block
            outer = builder.append_basic_block("nt.outer")
            inner = builder.append_basic_block("nt.inner")
            latch = builder.append_basic_block("nt.latch")
            done = builder.append_basic_block("nt.done")
            # Offsets advance by their strides (phis), the row offsets computed once: with
            # products of the loop counters LLVM kept multiplies in the loops.
            row_a = [builder.mul(sai_, i64(i)) for i in range(MI)]
            row_b = [builder.mul(sbj_, i64(j)) for j in range(NJ)]
            go = builder.and_(builder.icmp_signed(">", T_, i64(0)),
                              builder.icmp_signed(">", nv_, i64(0)))  # fmt: skip
            builder.cbranch(go, outer, done)

            builder.position_at_end(outer)
            t = builder.phi(_I64)
            t.add_incoming(i64(0), pre)
            a_t = builder.phi(_I64)
            a_t.add_incoming(i64(0), pre)
            b_t = builder.phi(_I64)
            b_t.add_incoming(i64(0), pre)
            acc_o = [[builder.phi(_V8) for _j in range(NJ)] for _i in range(MI)]
            _incoming(acc_o, [[zero] * NJ] * MI, pre)
            builder.branch(inner)

            builder.position_at_end(inner)
            v = builder.phi(_I64)
            v.add_incoming(i64(0), outer)
            k8 = builder.phi(_I64)
            k8.add_incoming(i64(0), outer)
            acc_i = [[builder.phi(_V8) for _j in range(NJ)] for _i in range(MI)]
            _incoming(acc_i, acc_o, outer)
            ka = builder.add(a_t, k8)
            kb = builder.add(b_t, k8)

            def load(base, off):
                return builder.load(builder.bitcast(builder.gep(base, [off]), _PV), align=4)

            av = [load(ap, builder.add(ka, row_a[i])) for i in range(MI)]
            bv = [load(bp, builder.add(kb, row_b[j])) for j in range(NJ)]
            new = [[builder.call(fma, [av[i], bv[j], acc_i[i][j]]) for j in range(NJ)]
                   for i in range(MI)]  # fmt: skip
            v1 = builder.add(v, i64(1))
            v.add_incoming(v1, inner)
            k8.add_incoming(builder.add(k8, i64(8)), inner)
            _incoming(acc_i, new, inner)
            builder.cbranch(builder.icmp_signed("<", v1, nv_), inner, latch)

            builder.position_at_end(latch)
            t1 = builder.add(t, i64(1))
            t.add_incoming(t1, latch)
            a_t.add_incoming(builder.add(a_t, sat_), latch)
            b_t.add_incoming(builder.add(b_t, sbt_), latch)
            _incoming(acc_o, new, latch)
            builder.cbranch(builder.icmp_signed("<", t1, T_), outer, done)

            builder.position_at_end(done)
            fin = [[builder.phi(_V8) for _j in range(NJ)] for _i in range(MI)]
            _incoming(fin, [[zero] * NJ] * MI, pre)
            _incoming(fin, new, latch)
            doacc = builder.icmp_signed("!=", acc_, i64(0))
            for i in range(MI):
                for j in range(NJ):
                    p = fin[i][j]
                    lo = builder.shuffle_vector(p, p, ir.Constant(_V4I32, [0, 1, 2, 3]))
                    hi = builder.shuffle_vector(p, p, ir.Constant(_V4I32, [4, 5, 6, 7]))
                    s4 = builder.fadd(lo, hi)
                    s2 = builder.fadd(
                        builder.shuffle_vector(s4, s4, ir.Constant(_V2I32, [0, 1])),
                        builder.shuffle_vector(s4, s4, ir.Constant(_V2I32, [2, 3])),
                    )
                    e0 = builder.extract_element(s2, ir.Constant(_I32, 0))
                    s1 = builder.fadd(e0, builder.extract_element(s2, ir.Constant(_I32, 1)))
                    ptr = builder.gep(cp, [builder.add(builder.mul(ldc_, i64(i)), i64(j))])
                    old = builder.load(ptr, align=4)
                    builder.store(builder.select(doacc, builder.fadd(old, s1), s1), ptr,
                                  align=4)  # fmt: skip
            return context.get_dummy_value()

        return sig, codegen

    return tile


_nt4_3, _nt4_1, _nt1_3, _nt1_1 = (_make_nt_tile(4, 3), _make_nt_tile(4, 1),
                                  _make_nt_tile(1, 3), _make_nt_tile(1, 1))  # fmt: skip
#: Steps of the summed products per pass over ``C`` (``_snt_c``): the operands' rows of
#: one pass stay in L2 (the seed network's 48 x 150 gradient at 16 columns, tiles alone:
#: 76 GFLOP/s at 12 steps, 71 at 24, 55 at 50; 12-24 equal through ``_snt_c``).
NT_STEPS = 12


@njit(inline="always", **NJIT_OPTIONS)
def _nt_pass(a0, sai, sat, b0, sbj, sbt, c0, ldc, M, N, T, nv, acc):
    # Inlined where the vectors per step are a constant (``_snt_c``): with them a variable
    # LLVM compiled the tiles' loops at ~45% of the speed.
    t0 = 0
    while True:
        tt = max(min(NT_STEPS, T - t0), 0)
        ac = acc if t0 == 0 else 1
        ak = a0 + 4 * t0 * sat
        bk = b0 + 4 * t0 * sbt
        i = 0
        while i < M:
            mi = 4 if M - i >= 4 else 1
            j = 0
            while j < N:
                nj = 3 if N - j >= 3 else 1
                a = ak + 4 * i * sai
                b = bk + 4 * j * sbj
                c = c0 + 4 * (i * ldc + j)
                if mi == 4:
                    if nj == 3:
                        _nt4_3(a, sai, sat, b, sbj, sbt, c, ldc, tt, nv, ac)
                    else:
                        _nt4_1(a, sai, sat, b, sbj, sbt, c, ldc, tt, nv, ac)
                elif nj == 3:
                    _nt1_3(a, sai, sat, b, sbj, sbt, c, ldc, tt, nv, ac)
                else:
                    _nt1_1(a, sai, sat, b, sbj, sbt, c, ldc, tt, nv, ac)
                j += nj
            i += mi
        t0 += NT_STEPS
        if t0 >= T:
            break


def _snt_c(a0, sai, sat, b0, sbj, sbt, c0, ldc, M, N, T, nv, acc):
    """``C (M, N) (+)= sum_t A[t] B[t]^T`` on float32 addresses: ``A[t]`` is ``M x 8nv``
    (rows ``sai`` apart, steps ``sat`` apart), ``B[t]`` is ``N x 8nv``; the weight gradients
    of the batch-as-vector layout. Steps in passes of ``NT_STEPS``, 4 x 3 tiles inside."""
    if M <= 0 or N <= 0:
        return
    # The batch in slices of two vectors, then the odd vector: the vectors per step as a
    # constant (the generic loop over them ran at 28-31 GFLOP/s against 62-70), one copy of
    # the pass per width (each costs ~0.4 s of compilation).
    for v in range(0, nv - 1, 2):
        _nt_pass(a0 + 32 * v, sai, sat, b0 + 32 * v, sbj, sbt, c0, ldc, M, N, T, 2,
                 acc if v == 0 else 1)  # fmt: skip
    if nv % 2 == 1:
        v = nv - 1
        _nt_pass(a0 + 32 * v, sai, sat, b0 + 32 * v, sbj, sbt, c0, ldc, M, N, T, 1,
                 acc if v == 0 else 1)  # fmt: skip


_SNT_SIG = types.void(*([types.int64] * 13))


# The kernels call the GEMM through an address in this table, not by symbol name: a kernel
# can then be compiled (and cached) before the GEMM is, so that a cold first fit compiles
# its training entry point while the precompile helper compiles the GEMM. The table is
# registered under this name at import, before any kernel is loaded; ``ensure_entries``
# ("gemm") stores the compiled GEMM's address in it. Until then the slot holds a
# trampoline that does that on the first call (kernels called directly, as in tests).
_SLOTS_SYMBOL = "fastgru_slots_v1"
_SLOTS = np.zeros(2, np.int64)
_SLOT_SGEMM = 0  # _sgemm_c
_SLOT_SNT = 1  # _snt_c
llvm.add_symbol(_SLOTS_SYMBOL, _SLOTS.ctypes.data)


def _first_call(entry):
    def call(*args):
        try:
            ensure_entries(np.float32, ("gemm",))
            _ENTRIES[_entry_name(entry, types.float32)].ctypes(*args)
        except BaseException:  # a ctypes callback cannot raise: never return a wrong result
            import traceback

            traceback.print_exc()
            os.abort()

    return call


_TRAMPOLINES = (
    ctypes.CFUNCTYPE(None, *([ctypes.c_int64] * 12))(_first_call("gemm")),
    ctypes.CFUNCTYPE(None, *([ctypes.c_int64] * 13))(_first_call("nt")),
)
for _slot, _tramp in enumerate(_TRAMPOLINES):
    _SLOTS[_slot] = ctypes.cast(_tramp, ctypes.c_void_p).value


def _emit_slot_call(builder, slot_index, i64_args):
    """Emit the call of the float32 kernel in slot ``slot_index`` (int64 arguments)."""
    fnty = ir.FunctionType(ir.VoidType(), [_I64] * len(i64_args))
    module = builder.module
    table = module.globals.get(_SLOTS_SYMBOL)
    if table is None:
        table = ir.GlobalVariable(module, ir.ArrayType(_I64, len(_SLOTS)), _SLOTS_SYMBOL)
        table.linkage = "external"
    slot = builder.gep(table, [ir.Constant(_I32, 0), ir.Constant(_I32, slot_index)])
    fn = builder.inttoptr(builder.load(slot), fnty.as_pointer())
    builder.call(fn, i64_args)


# --------------------------------------------------------------------------------------
# float64 matrix products: BLAS dgemm through Numba's SciPy binding
# --------------------------------------------------------------------------------------
@intrinsic
def _dgemm(typingctx, transa, transb, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """Column-major BLAS ``dgemm`` (alpha 1) through Numba's own SciPy BLAS binding."""
    from numba.np.linalg import ensure_blas

    ensure_blas()
    sig = types.void(*([types.intp] * 9), types.float64, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        transa_, transb_, m_, n_, k_, a_, lda_, b_, ldb_, beta_, c_, ldc_ = args
        i8 = ir.IntType(8)
        vp = ir.PointerType(i8)
        fnty = ir.FunctionType(ir.IntType(32), [i8, i8, i8, _I64, _I64, _I64, vp, vp, _I64,
                                                vp, _I64, vp, vp, _I64])  # fmt: skip
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        alpha = cgutils.alloca_once_value(builder, ir.Constant(ir.DoubleType(), 1.0))
        betap = cgutils.alloca_once_value(builder, beta_)
        builder.call(fn, [ir.Constant(i8, ord("d")), builder.trunc(transa_, i8),
                          builder.trunc(transb_, i8), m_, n_, k_,
                          builder.bitcast(alpha, vp), builder.inttoptr(a_, vp), lda_,
                          builder.inttoptr(b_, vp), ldb_, builder.bitcast(betap, vp),
                          builder.inttoptr(c_, vp), ldc_])  # fmt: skip
        return context.get_dummy_value()

    return sig, codegen


@njit(**NJIT_OPTIONS)
def _blas_operand(rows, cols, s_row, s_col):
    """BLAS ``(trans, ld)`` presenting a ``rows x cols`` operand (element strides
    ``s_row``, ``s_col``) transposed in column-major order; ``(-1, 0)`` if impossible."""
    if (s_col == 1 or cols == 1) and (s_row >= cols or rows == 1):
        return ord("n"), max(s_row, cols, 1)
    if (s_row == 1 or rows == 1) and (s_col >= rows or cols == 1):
        return ord("t"), max(s_col, rows, 1)
    return -1, 0


@njit(**NJIT_OPTIONS)
def _gemm_f64(A, B, C, acc, bias, has_bias):
    M, K = A.shape
    N = C.shape[1]
    if M == 0 or N == 0:
        return
    # Row-major C = A B is column-major C^T = B^T A^T.
    ta, lda = _blas_operand(K, N, B.strides[0] // 8, B.strides[1] // 8)
    tb, ldb = _blas_operand(M, K, A.strides[0] // 8, A.strides[1] // 8)
    if K == 0 or ta < 0 or tb < 0 or C.strides[1] // 8 != 1:
        for i in range(M):
            for j in range(N):
                s = C[i, j] if acc else 0.0
                for kk in range(K):
                    s += A[i, kk] * B[kk, j]
                C[i, j] = s
    else:
        _dgemm(ta, tb, N, M, K, B.ctypes.data, lda, A.ctypes.data, ldb,
               1.0 if acc else 0.0, C.ctypes.data, max(C.strides[0] // 8, N))  # fmt: skip
    if has_bias:
        for i in range(M):
            for j in range(N):
                C[i, j] += bias[j]


def _gemm_typer(A, B, C, last, has_bias):
    arrays = (A, B, C, last) if has_bias else (A, B, C)
    if not all(isinstance(a, types.Array) for a in arrays):
        return None
    if A.ndim != 2 or B.ndim != 2 or C.ndim != 2 or (has_bias and last.ndim != 1):
        return None
    if A.dtype not in (types.float32, types.float64) or any(a.dtype != A.dtype for a in arrays):
        return None
    return types.void(A, B, C, last)


def _struct(context, builder, signature, args, i):
    """Argument ``i`` (a float32 array): its address, and ``dim(k)``, ``stride(k)`` (in
    elements; never negative here) as IR values."""
    arr = context.make_array(signature.args[i])(context, builder, args[i])
    four = ir.Constant(_I64, 4)

    def dim(k):
        return builder.extract_value(arr.shape, k)

    def stride(k):  # in elements
        return builder.sdiv(builder.extract_value(arr.strides, k), four)

    return builder.ptrtoint(arr.data, _I64), dim, stride


def _by_dtype(f64_impl, emit_f32):
    """An intrinsic's codegen over arrays of one float dtype: float64 compiles ``f64_impl``
    (once per signature); float32 emits ``emit_f32(context, builder, signature, args)``
    right in the caller."""

    def codegen(context, builder, signature, args):
        if signature.args[0].dtype == types.float64:
            return context.compile_internal(builder, f64_impl, signature, args)
        emit_f32(context, builder, signature, args)
        return context.get_dummy_value()

    return codegen


def _gemm_codegen(has_bias, f64_impl):
    def emit(context, builder, signature, args):
        a, adim, astride = _struct(context, builder, signature, args, 0)
        b, _, bstride = _struct(context, builder, signature, args, 1)
        c, cdim, cstride = _struct(context, builder, signature, args, 2)
        if has_bias:
            bias = _struct(context, builder, signature, args, 3)[0]
            acc = ir.Constant(_I64, 0)
        else:
            bias = ir.Constant(_I64, 0)
            acc = context.cast(builder, args[3], signature.args[3], types.int64)
        _emit_slot_call(builder, _SLOT_SGEMM, [a, astride(0), astride(1), b, bstride(0), c,
                                               cstride(0), bias, adim(0), cdim(1), adim(1),
                                               acc])  # fmt: skip

    return _by_dtype(f64_impl, emit)


# gemm and gemm_bias are intrinsics, not overloads: for float32 their code (the call of the
# kernel through its slot) is emitted right in the caller, where an overload compiled one
# more small function per combination of array layouts (~0.2 s each, six in a first fit).
# float64 compiles the BLAS path once per signature (``compile_internal``).
def _gemm_f64_impl(A, B, C, acc):
    _gemm_f64(A, B, C, acc, C[0], False)


def _gemm_bias_f64_impl(A, B, C, bias):
    _gemm_f64(A, B, C, False, bias, True)


@intrinsic
def gemm(typingctx, A, B, C, acc):
    """``C = A @ B`` (``acc`` false) or ``C += A @ B`` for 2-D views with unit column
    stride in ``B`` and ``C`` (any strides in ``A``: transposed views are fine).

    float32: the register-tiled kernels; up to 7 elements past the end of each used row of
    ``B`` are read (and ignored), which the work buffers guarantee with :data:`GUARD`.
    float64: BLAS. Compiled code only.
    """
    if not isinstance(acc, (types.Boolean, types.Integer)):
        return None
    sig = _gemm_typer(A, B, C, acc, False)
    return None if sig is None else (sig, _gemm_codegen(False, _gemm_f64_impl))


@intrinsic
def gemm_bias(typingctx, A, B, C, bias):
    """``C = A @ B + bias`` (the row ``bias`` added to every row); as :func:`gemm`."""
    sig = _gemm_typer(A, B, C, bias, True)
    return None if sig is None else (sig, _gemm_codegen(True, _gemm_bias_f64_impl))


@njit(**NJIT_OPTIONS)
def _nt_f64(A, B, C, acc):
    T, M, K = A.shape
    N = B.shape[1]
    for i in range(M):
        for j in range(N):
            s = C[i, j] if acc else 0.0
            for t in range(T):
                for k in range(K):
                    s += A[t, i, k] * B[t, j, k]
            C[i, j] = s


# --------------------------------------------------------------------------------------
# Elementwise parts of a step, on (H, Bv) blocks: float32 vector kernels, float64 loops
# --------------------------------------------------------------------------------------
@njit(**NJIT_OPTIONS)
def _fwd_seed1_f64(R, Z, h, aux):
    r1, z1, h1, a1 = R.ravel(), Z.ravel(), h.ravel(), aux.ravel()
    for k in range(r1.shape[0]):
        r = sigmoid(r1[k])
        r1[k] = r
        z1[k] = sigmoid(z1[k])
        a1[k] = r * h1[k]


@njit(**NJIT_OPTIONS)
def _fwd_seed2_f64(N, Z, h, hnext):
    n1, z1, h1, hn1 = N.ravel(), Z.ravel(), h.ravel(), hnext.ravel()
    for k in range(n1.shape[0]):
        nn = tanh(n1[k])
        n1[k] = nn
        hn1[k] = h1[k] + z1[k] * (nn - h1[k])


@njit(**NJIT_OPTIONS)
def _fwd_ra_f64(R, Z, N, h, aux, hnext):
    r1, z1, n1, h1, a1, hn1 = R.ravel(), Z.ravel(), N.ravel(), h.ravel(), aux.ravel(), hnext.ravel()
    for k in range(r1.shape[0]):
        r = sigmoid(r1[k])
        z = sigmoid(z1[k])
        nn = tanh(n1[k] + r * a1[k])
        r1[k] = r
        z1[k] = z
        n1[k] = nn
        hn1[k] = h1[k] + z * (nn - h1[k])


@njit(**NJIT_OPTIONS)
def _bwd_seed1_f64(Z, N, h, dh, dy):
    z1, n1, h1, d1, y1 = Z.ravel(), N.ravel(), h.ravel(), dh.ravel(), dy.ravel()
    for k in range(z1.shape[0]):
        g = d1[k] + y1[k]
        z = z1[k]
        nn = n1[k]
        n1[k] = g * z * (1.0 - nn * nn)
        z1[k] = g * (nn - h1[k]) * z * (1.0 - z)
        d1[k] = g * (1.0 - z)


@njit(**NJIT_OPTIONS)
def _bwd_seed2_f64(R, h, tmp, dh):
    r1, h1, t1, d1 = R.ravel(), h.ravel(), tmp.ravel(), dh.ravel()
    for k in range(r1.shape[0]):
        r = r1[k]
        d = t1[k]
        r1[k] = d * h1[k] * r * (1.0 - r)
        d1[k] += d * r


@njit(**NJIT_OPTIONS)
def _bwd_ra_f64(R, Z, N, h, aux, dan, dh, dy):
    r1, z1, n1, h1, a1 = R.ravel(), Z.ravel(), N.ravel(), h.ravel(), aux.ravel()
    dn1, d1, y1 = dan.ravel(), dh.ravel(), dy.ravel()
    for k in range(r1.shape[0]):
        g = d1[k] + y1[k]
        r = r1[k]
        z = z1[k]
        nn = n1[k]
        dn = g * z * (1.0 - nn * nn)
        dn1[k] = dn
        r1[k] = dn * a1[k] * r * (1.0 - r)
        z1[k] = g * (nn - h1[k]) * z * (1.0 - z)
        n1[k] = dn * r
        d1[k] = g * (1.0 - z)


# float32: one call of the vector kernel on the blocks' addresses (the blocks are
# C-contiguous (B, H) slices); float64: the exact loop.


def _ew_intrinsic(params, f32_kernel, f64_kernel, doc):
    """The elementwise step named by ``params`` (its arrays, all of one float dtype): for
    float32 the 8-lane IR loop of ``f32_kernel`` over the first array's elements, emitted
    right in the caller; for float64 ``f64_kernel`` (compiled once per signature). As
    intrinsics, not overloads: an overload compiled one more small function per dtype and
    layout, ~0.15 s each in a first fit."""
    names = ", ".join(params)

    def typer(typingctx, *arrays):
        if not all(isinstance(a, types.Array) for a in arrays):
            return None
        dt = arrays[0].dtype
        if dt not in (types.float32, types.float64) or any(a.dtype != dt for a in arrays):
            return None

        return types.void(*arrays), _by_dtype(f64_impl, emit)

    def emit(context, builder, signature, args):
        arrs = [context.make_array(t)(context, builder, v)
                for t, v in zip(signature.args, args, strict=True)]  # fmt: skip
        f32_kernel.emit(builder, [builder.ptrtoint(a.data, _I64) for a in arrs],
                        arrs[0].nitems)  # fmt: skip

    ns = {"f64_kernel": f64_kernel, "typer": typer}
    exec(f"def f64_impl({names}):\n    f64_kernel({names})", ns)
    exec(f"def kernel(typingctx, {names}):\n    return typer(typingctx, {names})", ns)
    f64_impl = ns["f64_impl"]
    ns["kernel"].__doc__ = doc
    return intrinsic(ns["kernel"])


ew_fwd_seed1 = _ew_intrinsic(
    "R Z h aux".split(),
    _ew_fwd_seed1,
    _fwd_seed1_f64,
    """Seed forward, part 1: ``R, Z <- sigmoid(R), sigmoid(Z)``; ``aux <- r * h``.""",
)
ew_fwd_seed2 = _ew_intrinsic(
    "N Z h hnext".split(),
    _ew_fwd_seed2,
    _fwd_seed2_f64,
    """Seed forward, part 2: ``N <- tanh(N)``; ``hnext <- h + z (n - h)``.""",
)
ew_fwd_ra = _ew_intrinsic(
    "R Z N h aux hnext".split(),
    _ew_fwd_ra,
    _fwd_ra_f64,
    """Reset-after forward: ``r, z = sigmoid(R, Z)``, ``n = tanh(N + r aux)`` into ``R, Z,
    N``; ``hnext <- h + z (n - h)``.""",
)
ew_bwd_seed1 = _ew_intrinsic(
    "Z N h dh dy".split(),
    _ew_bwd_seed1,
    _bwd_seed1_f64,
    """Seed backward, part 1 (``g = dh + dy``): ``N <- g z (1 - n^2)``,
    ``Z <- g (n - h) z (1 - z)``, ``dh <- g (1 - z)``.""",
)
ew_bwd_seed2 = _ew_intrinsic(
    "R h tmp dh".split(),
    _ew_bwd_seed2,
    _bwd_seed2_f64,
    """Seed backward, part 2 (``tmp``: gradient of ``r * h``): ``R <- tmp h r (1 - r)``,
    ``dh += tmp r``.""",
)
ew_bwd_ra = _ew_intrinsic(
    "R Z N h aux dan dh dy".split(),
    _ew_bwd_ra,
    _bwd_ra_f64,
    """Reset-after backward (``g = dh + dy``): ``dan <- g z (1 - n^2)``,
    ``R <- dan aux r (1 - r)``, ``Z <- g (n - h) z (1 - z)``, ``N <- dan r``,
    ``dh <- g (1 - z)``.""",
)


# --------------------------------------------------------------------------------------
# Parameters: views into theta and the per-batch packed copies the kernels multiply by
# --------------------------------------------------------------------------------------
@njit(**NJIT_OPTIONS)
def layer_params(theta, layout, l, reset_after):
    """Views of layer ``l``'s parameter blocks in ``theta`` (or in a gradient vector)."""
    F = layout[l, F_]
    H = layout[l, H_]
    W_rz = _view(theta, layout[l, W_RZ], (F, 2 * H))
    W_n = _view(theta, layout[l, W_N], (F, H))
    U_rz = _view(theta, layout[l, U_RZ], (H, 2 * H))
    U_n = _view(theta, layout[l, U_N], (H, H))
    b_rz = _view(theta, layout[l, B_RZ], 2 * H)
    b_n = _view(theta, layout[l, B_N], H)
    if reset_after:
        bh_rz = _view(theta, layout[l, BH_RZ], 2 * H)
        bh_n = _view(theta, layout[l, BH_N], H)
    else:
        bh_rz = _view(theta, 0, 0)
        bh_n = _view(theta, 0, 0)
    return W_rz, W_n, U_rz, U_n, b_rz, b_n, bh_rz, bh_n


@njit(inline="always", **NJIT_OPTIONS)
def head_params(theta, head):
    Hl = head[0]
    O = head[1]
    W = _view(theta, head[2], (Hl, O))
    b = _view(theta, head[3], O)
    return W, b


@njit(inline="always", **NJIT_OPTIONS)
def _layer_pack_size(F, H):
    return 6 * F * H + 6 * H * H + 4 * H


@njit(**NJIT_OPTIONS)
def pack_size(layout):
    """Length of the packed-weights buffer (``pack_weights``), guard included."""
    total = GUARD
    for l in range(layout.shape[0]):
        total += _layer_pack_size(layout[l, F_], layout[l, H_])
    return total


@njit(**NJIT_OPTIONS)
def _packed(wpack, layout, l):
    """Views of layer ``l`` in the packed buffer, the three gates (r, z, n) side by side:
    ``Wc (F, 3H)`` and ``Uc (H, 3H)`` (rows of the input and of the state), their
    transposes ``WTc (3H, F)`` and ``UTc (3H, H)`` (rows of the gates), and the biases
    ``bias (4, H)``: the input-side ``b_r (+ bh_r)``, ``b_z (+ bh_z)``, ``b_n``, then
    ``bh_n`` (reset-after)."""
    off = 0
    for q in range(l):
        off += _layer_pack_size(layout[q, F_], layout[q, H_])
    F = layout[l, F_]
    H = layout[l, H_]
    Wc = _view(wpack, off, (F, 3 * H))
    off += 3 * F * H
    Uc = _view(wpack, off, (H, 3 * H))
    off += 3 * H * H
    UTc = _view(wpack, off, (3 * H, H))
    off += 3 * H * H
    WTc = _view(wpack, off, (3 * H, F))
    off += 3 * H * F
    bias = _view(wpack, off, (4, H))
    return Wc, Uc, UTc, WTc, bias


@njit(**NJIT_OPTIONS)
def pack_weights(theta, layout, reset_after, wpack):
    """Copy every layer's weights and biases into ``wpack`` (the layout of ``_packed``):
    ``Wc`` and ``Uc`` row by row, each row the ``r|z`` block's row then the ``n`` block's,
    with ``_copy`` (a memcpy; as an element loop packing took 19.7 us for the seed network,
    against 3.8 us). :func:`pack_transposes` adds the transposed blocks. (Two functions,
    not one with a flag: a constant flag from compiled code is typed as a literal, and each
    value compiled a copy.)"""
    off = 0
    for l in range(layout.shape[0]):
        F = layout[l, F_]
        H = layout[l, H_]
        for blk in range(2):  # Wc (F rows), then Uc (H rows)
            if blk == 0:
                rows, dst, src_rz, src_n = F, off, layout[l, W_RZ], layout[l, W_N]
            else:
                rows, dst, src_rz, src_n = H, off + 3 * F * H, layout[l, U_RZ], layout[l, U_N]
            for i in range(rows):
                _copy(theta, src_rz + i * 2 * H, wpack, dst + i * 3 * H, 2 * H)
                _copy(theta, src_n + i * H, wpack, dst + i * 3 * H + 2 * H, H)
        bias = off + 6 * F * H + 6 * H * H
        b_rz = layout[l, B_RZ]
        b_n = layout[l, B_N]
        bh_rz = layout[l, BH_RZ]
        bh_n = layout[l, BH_N]
        for j in range(H):
            if reset_after:
                wpack[bias + j] = theta[b_rz + j] + theta[bh_rz + j]
                wpack[bias + H + j] = theta[b_rz + H + j] + theta[bh_rz + H + j]
                wpack[bias + 3 * H + j] = theta[bh_n + j]
            else:
                wpack[bias + j] = theta[b_rz + j]
                wpack[bias + H + j] = theta[b_rz + H + j]
                wpack[bias + 3 * H + j] = 0.0
            wpack[bias + 2 * H + j] = theta[b_n + j]
        off += _layer_pack_size(F, H)


@njit(**NJIT_OPTIONS)
def pack_transposes(wpack, layout):
    """The transposed blocks ``UTc`` and ``WTc`` from the blocks :func:`pack_weights` wrote
    into ``wpack``, through 2-D views indexed by the loop counters (on flat offsets every
    index kept its wraparound check: 29 us a batch for the seed network against 11.5)."""
    off = 0
    for l in range(layout.shape[0]):
        F = layout[l, F_]
        H = layout[l, H_]
        for blk in range(2):  # UTc = Uc.T (3H x H), then WTc = Wc.T (3H x F)
            if blk == 0:
                rows, src, dst = H, off + 3 * F * H, off + 3 * F * H + 3 * H * H
            else:
                rows, src, dst = F, off, off + 3 * F * H + 6 * H * H
            S = _view(wpack, src, (rows, 3 * H))
            D = _view(wpack, dst, (3 * H, rows))
            for j in range(3 * H):
                for k in range(rows):
                    D[j, k] = S[k, j]
        off += _layer_pack_size(F, H)


# --------------------------------------------------------------------------------------
# One GRU layer: the whole sequence forward, and backpropagation through time
# --------------------------------------------------------------------------------------
@njit(inline="always", **NJIT_OPTIONS)
def padded_width(B):
    """Columns of the batch-as-vector layout for ``B`` sequences: ``B`` rounded up to whole
    8-lane vectors (the extra columns hold zeros and get no gradient), but 1 for one
    sequence, whose products run as matrix-vector products instead."""
    return B if B <= 1 else (B + 7) // 8 * 8


def _mm_f64_impl(P, Q, lo, hi, backward, X, C, acc):
    if backward:
        A = Q[:, lo:hi]
        AT = P[lo:hi]
    else:
        A = P[lo:hi]
        AT = Q[:, lo:hi]
    if X.shape[1] == 1:
        gemm(_view(X, 0, (1, X.shape[0])), AT, _view(C, 0, (1, C.shape[0])), acc != 0)
    else:
        gemm(A, X, C, acc != 0)


@intrinsic
def _mm(typingctx, P, Q, lo, hi, backward, X, C, acc):
    """A product of a step, of one packed matrix and its transpose: ``P (n, K)`` (rows of
    the gates) and ``Q = P.T``. ``C (M, Bv) (+)= A @ X`` with ``A = P[lo:hi]`` (forward)
    or ``A = Q[:, lo:hi]`` (``backward``); with one column, as the row product
    ``X.T @ A.T`` (the other orientation's rows are the vectors). float32: the addresses
    and strides computed here and one call of the GEMM (as a function with array
    arguments, slicing and all, it was ~0.5 s of a cold fit's compilation); float64: the
    same by slicing, through BLAS. All arrays C-contiguous."""
    arrays = (P, Q, X, C)
    if not (all(isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C" for a in arrays)
            and P.dtype in (types.float32, types.float64)
            and all(a.dtype == P.dtype for a in arrays)):  # fmt: skip
        return None
    sig = types.void(P, Q, types.int64, types.int64, types.int64, X, C, types.int64)

    def emit(context, builder, signature, args):
        p, pdim, _ = _struct(context, builder, signature, args, 0)
        q, qdim, _ = _struct(context, builder, signature, args, 1)
        x, xdim, _ = _struct(context, builder, signature, args, 5)
        c = _struct(context, builder, signature, args, 6)[0]
        lo_, hi_, bwd_, acc_ = args[2], args[3], args[4], args[7]
        four = ir.Constant(_I64, 4)
        one = ir.Constant(_I64, 1)
        zero = ir.Constant(_I64, 0)
        pn = pdim(1)  # row length of P (K of the forward product)
        qn = qdim(1)  # row length of Q (n)
        width = builder.sub(hi_, lo_)
        p_lo = builder.add(p, builder.mul(builder.mul(lo_, pn), four))  # P[lo:hi]
        q_lo = builder.add(q, builder.mul(lo_, four))  # Q[:, lo:hi]
        bwd = builder.icmp_signed("!=", bwd_, zero)
        # A (M x K, rows sai apart) and its transpose AT (K x M, rows ldt apart).
        a0 = builder.select(bwd, q_lo, p_lo)
        sai = builder.select(bwd, qn, pn)
        M = builder.select(bwd, qdim(0), width)
        K = builder.select(bwd, width, pn)
        t0 = builder.select(bwd, p_lo, q_lo)
        ldt = builder.select(bwd, pn, qn)
        Bv = xdim(1)
        row = builder.icmp_signed("==", Bv, one)
        # Bv > 1: C = A X. One column: C.T (1 x M) = X.T (1 x K) AT.
        ga = builder.select(row, x, a0)
        gsai = builder.select(row, K, sai)
        gb = builder.select(row, t0, x)
        gldb = builder.select(row, ldt, Bv)
        gldc = builder.select(row, M, Bv)
        gM = builder.select(row, one, M)
        gN = builder.select(row, M, Bv)
        _emit_slot_call(builder, _SLOT_SGEMM, [ga, gsai, one, gb, gldb, c, gldc, zero, gM,
                                               gN, K, acc_])  # fmt: skip

    return sig, _by_dtype(_mm_f64_impl, emit)


@njit(**NJIT_OPTIONS)
def _fill_rows(C, values):
    """``C[i, :] = values[i]``: the biases, before products are added to them."""
    for i in range(C.shape[0]):
        v = values[i]
        for k in range(C.shape[1]):
            C[i, k] = v


@njit(**NJIT_OPTIONS)
def _outer_bias(w, x, values, C):
    """``C[i, :] = w[i, 0] x[0, :] + values[i]``: the input projection of one feature."""
    for i in range(C.shape[0]):
        a = w[i, 0]
        v = values[i]
        for k in range(C.shape[1]):
            C[i, k] = a * x[0, k] + v


@njit(**NJIT_OPTIONS)
def gru_forward(X, Wc, Uc, UTc, WTc, bias, reset_after, Hs, G, AUX):
    """Forward pass of one GRU layer over a batch in the batch-as-vector layout, saving what
    BPTT needs. Every step's arrays are ``(rows, Bv)`` blocks with the ``Bv`` sequences of
    the batch along the contiguous dimension (``padded_width``): the products multiply the
    weights' rows by whole vectors of the batch.

    Parameters
    ----------
    X : (T, F, Bv) input sequence.
    Wc, Uc, UTc, WTc, bias : packed weights (``_packed``).
    reset_after : bool, gate convention.
    Hs : (T + 1, H, Bv) in/out: ``Hs[0]`` the initial state on entry, ``Hs[t + 1]`` the
        state after step t.
    G : (T, 3H, Bv) out: the gates r, z, n of each step.
    AUX : (T, H, Bv) out: ``r * h`` (seed) or ``h U_n + bh_n`` (reset-after).
    """
    T, F, Bv = X.shape
    H = Hs.shape[1]
    H2 = 2 * H
    bias3 = _view(bias, 0, 3 * H)
    if Bv == 1:
        # One sequence: the input projections of all steps as one product of T rows.
        gemm_bias(_view(X, 0, (T, F)), Wc, _view(G, 0, (T, 3 * H)), bias3)
    for t in range(T):
        h = Hs[t]
        Gt = G[t]
        if Bv > 1:
            # Step by step: the step's block stays in L1 for the recurrent products.
            if F == 1:  # one pass over the block, not a fill and then a product
                _outer_bias(WTc, X[t], bias3, Gt)
            else:
                _fill_rows(Gt, bias3)
                _mm(WTc, Wc, 0, 3 * H, 0, X[t], Gt, 1)
        RZ = _view(Gt, 0, (H2, Bv))
        R = _view(Gt, 0, (H, Bv))
        Z = _view(Gt, H * Bv, (H, Bv))
        N = _view(Gt, H2 * Bv, (H, Bv))
        aux = AUX[t]
        _mm(UTc, Uc, 0, H2, 0, h, RZ, 1)
        if reset_after:
            _fill_rows(aux, bias[3])
            _mm(UTc, Uc, H2, 3 * H, 0, h, aux, 1)
            ew_fwd_ra(R, Z, N, h, aux, Hs[t + 1])
        else:
            ew_fwd_seed1(R, Z, h, aux)
            _mm(UTc, Uc, H2, 3 * H, 0, aux, N, 1)
            ew_fwd_seed2(N, Z, h, Hs[t + 1])


def _grad_steps_f64_impl(A, B, lo, hi, C):
    Bs = B[:, lo:hi, :]
    if A.shape[2] == 1:
        gemm(A[:, :, 0].T, Bs[:, :, 0], C, False)
    else:
        _nt_f64(A, Bs, C, False)


@intrinsic
def _grad_steps(typingctx, A, B, lo, hi, C):
    """``C = sum_t A[t] @ B[t, lo:hi].T`` over ``A (T, M, Bv)``, ``B (T, n, Bv)``: a weight or
    bias gradient. One column: the steps are the rows (``C = A2.T @ B2``). float32: one
    call of a GEMM (as :func:`_mm`); float64: by slicing. ``A`` and ``B`` C-contiguous,
    ``C`` with contiguous rows."""
    if not (isinstance(A, types.Array) and isinstance(B, types.Array)
            and isinstance(C, types.Array) and A.ndim == 3 and B.ndim == 3 and C.ndim == 2
            and A.layout == "C" and B.layout == "C"
            and A.dtype in (types.float32, types.float64)
            and B.dtype == A.dtype and C.dtype == A.dtype):  # fmt: skip
        return None
    sig = types.void(A, B, types.int64, types.int64, C)

    def emit(context, builder, signature, args):
        a, adim, _ = _struct(context, builder, signature, args, 0)
        b, bdim, _ = _struct(context, builder, signature, args, 1)
        c, _, cstride = _struct(context, builder, signature, args, 4)
        lo_, hi_ = args[2], args[3]
        four = ir.Constant(_I64, 4)
        one = ir.Constant(_I64, 1)
        zero = ir.Constant(_I64, 0)
        T, M, Bv = adim(0), adim(1), adim(2)
        n = bdim(1)
        N = builder.sub(hi_, lo_)
        b_lo = builder.add(b, builder.mul(builder.mul(lo_, Bv), four))
        ldc = cstride(0)
        with builder.if_else(builder.icmp_signed("==", Bv, one)) as (rowwise, batched):
            with rowwise:  # C (M x N) = A2.T (M x T, strides 1, M) @ B2 (T x N, rows n apart)
                _emit_slot_call(builder, _SLOT_SGEMM, [a, one, M, b_lo, n, c, ldc, zero, M,
                                                       N, T, zero])  # fmt: skip
            with batched:
                nv = builder.ashr(Bv, ir.Constant(_I64, 3))
                _emit_slot_call(builder, _SLOT_SNT, [a, Bv, builder.mul(M, Bv), b_lo, Bv,
                                                     builder.mul(n, Bv), c, ldc, M, N, T, nv,
                                                     zero])  # fmt: skip

    return sig, _by_dtype(_grad_steps_f64_impl, emit)


@njit(**NJIT_OPTIONS)
def gru_backward(X, Hs, G, AUX, DAN, Wc, Uc, UTc, WTc, reset_after, dY, dh, tmp, ONES,
                 gW_rz, gW_n, gU_rz, gU_n, gb_rz, gb_n, gbh_rz, gbh_n, dX, need_dx):  # fmt: skip
    """Backpropagation through time for one layer (the layout of :func:`gru_forward`).

    Parameters
    ----------
    X, Hs, G, AUX : the forward pass's input and saved arrays; ``G`` is overwritten with the
        gradients of the gates' pre-activations: ``dr, dz, dn`` (seed) or ``dr, dz, dhn``
        (reset-after, ``dhn`` the gradient of ``h U_n + bh_n``).
    DAN : (T, H, Bv) work (reset-after): gradient of the candidate's pre-activation.
    Wc, Uc, UTc, WTc : packed weights (``_packed``).
    reset_after : bool.
    dY : (T, H, Bv) gradient of the loss with respect to ``Hs[1:]``.
    dh : (H, Bv) in: gradient reaching the last state besides ``dY`` (usually zero); out:
        the gradient with respect to ``Hs[0]``.
    tmp : (H, Bv) work.
    ONES : (T, 1, Bv) ones (the bias gradients are products with it).
    gW_rz ... gbh_n : out: parameter gradients (overwritten; ``gbh_*`` only when
        ``reset_after``).
    dX : (T, F, Bv) out: gradient with respect to ``X``, when ``need_dx``.
    """
    T, F, Bv = X.shape
    H = dh.shape[0]
    H2 = 2 * H
    for t in range(T - 1, -1, -1):
        Gt = G[t]
        R = _view(Gt, 0, (H, Bv))
        Z = _view(Gt, H * Bv, (H, Bv))
        N = _view(Gt, H2 * Bv, (H, Bv))
        if reset_after:
            ew_bwd_ra(R, Z, N, Hs[t], AUX[t], DAN[t], dh, dY[t])
            _mm(UTc, Uc, 0, 3 * H, 1, Gt, dh, 1)
        else:
            ew_bwd_seed1(Z, N, Hs[t], dh, dY[t])
            _mm(UTc, Uc, H2, 3 * H, 1, N, tmp, 0)  # gradient with respect to r * h
            ew_bwd_seed2(R, Hs[t], tmp, dh)
            _mm(UTc, Uc, 0, H2, 1, _view(Gt, 0, (H2, Bv)), dh, 1)
        if need_dx:
            if reset_after:
                _mm(WTc, Wc, 0, H2, 1, _view(Gt, 0, (H2, Bv)), dX[t], 0)
                _mm(WTc, Wc, H2, 3 * H, 1, DAN[t], dX[t], 1)
            else:
                _mm(WTc, Wc, 0, 3 * H, 1, Gt, dX[t], 0)

    Hp = _view(Hs, 0, (T, H, Bv))  # the state before each step
    _grad_steps(Hp, G, 0, H2, gU_rz)
    _grad_steps(X, G, 0, H2, gW_rz)
    _grad_steps(ONES, G, 0, H2, _view(gb_rz, 0, (1, H2)))
    if reset_after:
        _grad_steps(Hp, G, H2, 3 * H, gU_n)
        _grad_steps(X, DAN, 0, H, gW_n)
        _grad_steps(ONES, DAN, 0, H, _view(gb_n, 0, (1, H)))
        _grad_steps(ONES, G, H2, 3 * H, _view(gbh_n, 0, (1, H)))
        for j in range(H2):  # (a loop: array-to-array slice assignment compiles slowly)
            gbh_rz[j] = gb_rz[j]
    else:
        _grad_steps(AUX, G, H2, 3 * H, gU_n)
        _grad_steps(X, G, H2, 3 * H, gW_n)
        _grad_steps(ONES, G, H2, 3 * H, _view(gb_n, 0, (1, H)))


# --------------------------------------------------------------------------------------
# Loss
# --------------------------------------------------------------------------------------
@njit(inline="always", **NJIT_OPTIONS)
def _loss_part(yhat, y, loss_kind, delta, inv, dyhat):
    """``inv`` times the summed loss of the rows given, and its gradient (also scaled by
    ``inv``) in ``dyhat``; the errors and their sum in float64."""
    B, O = yhat.shape
    total = 0.0
    for i in range(B):
        for j in range(O):
            e = np.float64(yhat[i, j]) - np.float64(y[i, j])  # (float() keeps float32)
            if loss_kind == 0:
                total += e * e
                dyhat[i, j] = 2.0 * e * inv
            elif loss_kind == 1:
                total += abs(e)
                dyhat[i, j] = (1.0 if e > 0 else (-1.0 if e < 0 else 0.0)) * inv
            else:
                a = abs(e)
                if a <= delta:
                    total += 0.5 * e * e
                    dyhat[i, j] = e * inv
                else:
                    total += delta * (a - 0.5 * delta)
                    dyhat[i, j] = (delta if e > 0 else -delta) * inv
    return total * inv


@njit(**NJIT_OPTIONS)
def loss_and_grad(yhat, y, loss_kind, delta, dyhat):
    """Mean loss over all ``B * O`` entries and its gradient with respect to ``yhat``.

    ``loss_kind``: 0 mean squared error, 1 mean absolute error, 2 Huber with threshold
    ``delta`` (``0.5 e^2`` for ``|e| <= delta``, else ``delta (|e| - delta / 2)``, as Keras).
    The sum is accumulated in float64.
    """
    B, O = yhat.shape
    return _loss_part(yhat, y, loss_kind, delta, 1.0 / (B * O), dyhat)


# --------------------------------------------------------------------------------------
# The network on one slice of a batch ("part"): carving views out of the work buffer
# --------------------------------------------------------------------------------------
@njit(inline="always", **NJIT_OPTIONS)
def _layer_ws_size(T, Bv, H):
    return (T + 1) * Bv * H + 3 * T * Bv * H + 3 * T * Bv * H + 2 * Bv * H


@njit(inline="always", **NJIT_OPTIONS)
def _inputs_size(T, Bv, F0, O):
    """The start of a part's work buffer: the gathered input ``(T, F0, Bv)``, the targets
    ``(Bv, O)`` and the row of ones ``(T, 1, Bv)`` the bias gradients multiply by."""
    return T * Bv * F0 + Bv * O + T * Bv


@njit(**NJIT_OPTIONS)
def part_workspace_size(layout, head, T, B):
    """Length of the flat work buffer of one part of up to ``B`` sequences of ``T`` steps:
    the gathered input and targets, every layer's saved arrays, the head; guard included."""
    O = head[1]
    Bv = padded_width(B)
    total = _inputs_size(T, Bv, layout[0, F_], O) + 2 * Bv * O + GUARD
    for l in range(layout.shape[0]):
        total += _layer_ws_size(T, Bv, layout[l, H_])
    return total


@njit(**NJIT_OPTIONS)
def workspace_size(layout, head, T, B):
    """Length of the flat work buffer ``network_loss_grad`` needs for batches of up to
    ``B`` sequences of ``T`` steps (one part plus the packed weights)."""
    return part_workspace_size(layout, head, T, B) + pack_size(layout)


@njit(**NJIT_OPTIONS)
def _layer_views(ws, layout, T, Bv, F0, O, l):
    """Layer ``l``'s arrays in a part's work buffer (after the inputs): ``Hs (T+1, H, Bv)``,
    ``G (T, 3H, Bv)``, ``AUX``, ``DAN``, ``dY (T, H, Bv)``, ``dh``, ``tmp (H, Bv)``."""
    off = _inputs_size(T, Bv, F0, O)
    for q in range(l):
        off += _layer_ws_size(T, Bv, layout[q, H_])
    H = layout[l, H_]
    TBH = T * Bv * H
    Hs = _view(ws, off, (T + 1, H, Bv))
    off += TBH + Bv * H
    G = _view(ws, off, (T, 3 * H, Bv))
    off += 3 * TBH
    AUX = _view(ws, off, (T, H, Bv))
    off += TBH
    DAN = _view(ws, off, (T, H, Bv))
    off += TBH
    dY = _view(ws, off, (T, H, Bv))
    off += TBH
    dh = _view(ws, off, (H, Bv))
    off += Bv * H
    tmp = _view(ws, off, (H, Bv))
    return Hs, G, AUX, DAN, dY, dh, tmp


@njit(inline="always", **NJIT_OPTIONS)
def _head_offset(layout, T, Bv, F0, O):
    off = _inputs_size(T, Bv, F0, O)
    for q in range(layout.shape[0]):
        off += _layer_ws_size(T, Bv, layout[q, H_])
    return off


@njit(inline="always", **NJIT_OPTIONS)
def _head_output(theta, head, hT, B, out, r0):
    """The dense head on the first ``B`` columns of ``hT (H, Bv)`` into
    ``out[r0:r0 + B]``: one piece of code for training and prediction, so that both give
    the same bits."""
    Htop = hT.shape[0]
    O = head[1]
    Wo, bo = head_params(theta, head)
    for i in range(B):
        for o in range(O):
            s = bo[o]
            for k in range(Htop):
                s += hT[k, i] * Wo[k, o]
            out[r0 + i, o] = s


@njit(**NJIT_OPTIONS)
def _head_forward_backward(theta, grad, head, hT, B, yb, loss_kind, delta, inv, yhat, dyhat,
                           dY_last):  # fmt: skip
    """Dense head on the top layer's last state ``hT (H, Bv)`` (its first ``B`` columns):
    output, loss (scaled by ``inv``), the head's gradients into ``grad`` and the gradient
    of ``hT`` into ``dY_last`` (zero in the padding columns)."""
    Htop, Bv = hT.shape
    O = head[1]
    _head_output(theta, head, hT, B, yhat, 0)
    Wo = head_params(theta, head)[0]
    loss = _loss_part(yhat, yb, loss_kind, delta, inv, dyhat)
    gWo, gbo = head_params(grad, head)
    for k in range(Htop):
        for o in range(O):
            s = 0.0
            for i in range(B):
                s += hT[k, i] * dyhat[i, o]
            gWo[k, o] = s
    for o in range(O):
        s = 0.0
        for i in range(B):
            s += dyhat[i, o]
        gbo[o] = s
    for k in range(Htop):
        for i in range(Bv):
            s = 0.0
            if i < B:
                for o in range(O):
                    s += dyhat[i, o] * Wo[k, o]
            dY_last[k, i] = s
    return loss


# Inlined by Numba into the two functions that run it (the training entry point and
# network_loss_grad): compiled there once, not as one more level of linked code.
@njit(inline="always", **NJIT_OPTIONS)
def _part_loss_grad(theta, layout, head, reset_after, Xb, B, yb, loss_kind, delta, inv,
                    ws, wpack, grad, backward, out, r0):  # fmt: skip
    """``inv`` times the summed loss of the first ``B`` sequences of ``Xb (T, F, Bv)``
    (batch-as-vector layout, zeros in the padding columns), ``yb (B, O)``, and its gradient
    with respect to ``theta`` (written into ``grad``). ``wpack`` holds the packed weights
    and their transposes; ``ws`` is this part's work buffer, with the inputs (``Xb``,
    ``yb``, the ones it fills) at its start. Without ``backward``: the forward pass only, its head
    output into ``out[r0:r0 + B]`` (what ``predict_rows`` computes, by the same code: the
    same bits), and 0.0 returned."""
    T, F0, Bv = Xb.shape
    L = layout.shape[0]
    O = head[1]
    inp = Xb
    for l in range(L):
        Hs, G, AUX, _, _, _, _ = _layer_views(ws, layout, T, Bv, F0, O, l)
        Wc, Uc, UTc, WTc, bias = _packed(wpack, layout, l)
        Hs[0] = 0.0
        gru_forward(inp, Wc, Uc, UTc, WTc, bias, reset_after, Hs, G, AUX)
        inp = _view(Hs, Hs.shape[1] * Bv, (T, Hs.shape[1], Bv))
    if not backward:
        _head_output(theta, head, inp[T - 1], B, out, r0)
        return 0.0
    off = _head_offset(layout, T, Bv, F0, O)
    yhat = _view(ws, off, (B, O))
    dyhat = _view(ws, off + Bv * O, (B, O))
    ONES = _view(ws, T * Bv * F0 + Bv * O, (T, 1, Bv))
    ONES[:] = 1.0
    # Only the last step of the top layer feeds the head: dY of the top layer is zero but
    # for its last step.
    dY_top = _layer_views(ws, layout, T, Bv, F0, O, L - 1)[4]
    dY_top[: T - 1] = 0.0
    loss = _head_forward_backward(theta, grad, head, inp[T - 1], B, yb, loss_kind, delta,
                                  inv, yhat, dyhat, dY_top[T - 1])  # fmt: skip
    for l in range(L - 1, -1, -1):
        Hs, G, AUX, DAN, dY, dh, tmp = _layer_views(ws, layout, T, Bv, F0, O, l)
        dh[:] = 0.0
        Wc, Uc, UTc, WTc, _ = _packed(wpack, layout, l)
        gW_rz, gW_n, gU_rz, gU_n, gb_rz, gb_n, gbh_rz, gbh_n = layer_params(
            grad, layout, l, reset_after
        )
        # The input of layer l and where its gradient goes: the layer below's states and
        # its dY, or the batch itself (no gradient needed).
        X = Xb
        dX = dY
        if l > 0:
            below = _layer_views(ws, layout, T, Bv, F0, O, l - 1)
            Hb = below[0]
            X = _view(Hb, Hb.shape[1] * Bv, (T, Hb.shape[1], Bv))
            dX = below[4]
        gru_backward(X, Hs, G, AUX, DAN, Wc, Uc, UTc, WTc, reset_after, dY, dh, tmp, ONES,
                     gW_rz, gW_n, gU_rz, gU_n, gb_rz, gb_n, gbh_rz, gbh_n, dX, l > 0)  # fmt: skip
    return loss


@njit(inline="always", **NJIT_OPTIONS)
def _gather(X, order, n_order, r0, B, Bv, xb):
    """Sequences ``order[r0:r0 + B]`` of ``X (N, T, F)`` (rows ``r0...`` when ``n_order``
    is 0) into the batch-as-vector ``xb (T, F, Bv)``, zeros in the padding columns."""
    T = xb.shape[0]
    F = xb.shape[1]
    for t in range(T):
        for f in range(F):
            for i in range(B, Bv):
                xb[t, f, i] = 0.0
    for i in range(B):
        q = order[r0 + i] if n_order > 0 else r0 + i
        for t in range(T):
            for f in range(F):
                xb[t, f, i] = X[q, t, f]


@njit(**NJIT_OPTIONS)
def network_loss_grad(theta, layout, head, reset_after, Xb, yb, loss_kind, delta, ws, grad):
    """Loss of the network on one time-major batch ``Xb (T, B, F)``, ``yb (B, O)`` and its
    gradient with respect to ``theta`` (written into ``grad``, which has ``theta``'s
    layout). ``ws`` has ``workspace_size(layout, head, T, B)`` elements."""
    T, B, F = Xb.shape
    O = yb.shape[1]
    Bv = padded_width(B)
    n_ws = part_workspace_size(layout, head, T, B)
    wpack = _view(ws, n_ws, pack_size(layout))
    pack_weights(theta, layout, reset_after, wpack)
    pack_transposes(wpack, layout)
    part = _view(ws, 0, n_ws)
    xb = _view(part, 0, (T, F, Bv))
    yv = _view(part, T * Bv * F, (B, O))
    for t in range(T):
        for f in range(F):
            for i in range(Bv):
                xb[t, f, i] = Xb[t, i, f] if i < B else 0.0
    for i in range(B):
        for o in range(O):
            yv[i, o] = yb[i, o]
    return _part_loss_grad(theta, layout, head, reset_after, xb, B, yv, loss_kind, delta,
                           1.0 / (B * O), part, wpack, grad, True, yv, 0)  # fmt: skip


# --------------------------------------------------------------------------------------
# Clipping and optimizers
# --------------------------------------------------------------------------------------
@njit(inline="always", **NJIT_OPTIONS)
def _sq(x):
    y = np.float64(x)
    return y * y


@njit(inline="always", **NJIT_OPTIONS)
def global_norm(g):
    """The Euclidean norm of ``g``: squares and sums in float64 (``float()`` of a float32
    stays float32 in Numba: the squares were rounded to float32 before), in eight
    interleaved partial sums added in a fixed order (one sum is a chain of dependent
    additions: 22 us for the seed network's 23k gradients, a third of the serial step
    between two batches; now 7.5 us)."""
    n = g.shape[0]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    n8 = n - n % 8
    for i in range(0, n8, 8):
        s0 += _sq(g[i])
        s1 += _sq(g[i + 1])
        s2 += _sq(g[i + 2])
        s3 += _sq(g[i + 3])
        s4 += _sq(g[i + 4])
        s5 += _sq(g[i + 5])
        s6 += _sq(g[i + 6])
        s7 += _sq(g[i + 7])
    for i in range(n8, n):
        s0 += _sq(g[i])
    return math.sqrt(((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)))


clip_scale = njit(inline="always", **NJIT_OPTIONS)(_math.clip_scale)
_adam_element = njit(inline="always", **NJIT_OPTIONS)(_math.adam_element)
_sgd_element = njit(inline="always", **NJIT_OPTIONS)(_math.sgd_element)
_adam_step_size = njit(inline="always", **NJIT_OPTIONS)(_math.adam_step_size)


@njit(inline="always", **NJIT_OPTIONS)
def adam_update(theta, grad, m, v, step, lr, beta1, beta2, eps, scale):
    """One fused Adam step (Keras' form: ``eps`` added to ``sqrt(v)``, bias correction folded
    into the step size) on the gradient ``grad * scale``; ``step`` counts from 1."""
    alpha = _adam_step_size(lr, beta1, beta2, step)
    for i in range(theta.shape[0]):
        _adam_element(theta, m, v, i, grad[i] * scale, alpha, beta1, beta2, eps)


@njit(inline="always", **NJIT_OPTIONS)
def sgd_update(theta, grad, velocity, lr, momentum, nesterov, scale):
    """One fused SGD step with momentum (Keras' form): ``velocity = momentum * velocity -
    lr * g``; ``theta += velocity``, or ``momentum * velocity - lr * g`` with Nesterov."""
    for i in range(theta.shape[0]):
        _sgd_element(theta, velocity, i, grad[i] * scale, lr, momentum, nesterov)


# --------------------------------------------------------------------------------------
# Separately compiled entry points, called by symbol name
# --------------------------------------------------------------------------------------
# The part of a training batch and the rows of a prediction are compiled as C callbacks
# (one per dtype, on first use) and called by name from the parallel drivers below, so
# that the drivers do not link and re-optimise them (a parallel driver compiles its loop
# body as a second function: two more copies). Arguments are addresses and sizes.


def _part_c(theta_a, n_params, layout_a, L, head_a, reset_after, loss_kind, delta,
            X_a, N, T, F, y_a, O, order_a, n_order, s, B, p, P, inv,
            ws_a, ws_size, wpack_a, wpack_size, grad_a, out_a, backward, proto):  # fmt: skip
    """Part ``p`` of ``P`` of the batch ``order[s:s + B]``: gather it (batch-as-vector) into the
    start of ``ws``, then loss and gradient (``_part_loss_grad``). Returns the loss.

    With ``backward`` 0 (prediction while the prediction kernels are still being compiled
    elsewhere; see ``predict_by_parts``): rows ``s + ...`` of ``X`` in order (``n_order``
    0), the forward pass only, the head output into ``out (N, O)``; ``y``, ``grad`` and the
    transposed weights are not used."""
    theta = carray(_ptr(theta_a, proto), n_params)
    grad = carray(_ptr(grad_a, proto), n_params)
    layout = carray(_ptr(layout_a, _PROTO_I64), (L, LAYOUT_WIDTH))
    head = carray(_ptr(head_a, _PROTO_I64), 4)
    X = carray(_ptr(X_a, proto), (N, T, F))
    y = carray(_ptr(y_a, proto), (N, O))
    out = carray(_ptr(out_a, proto), (N, O))
    order = carray(_ptr(order_a, _PROTO_I64), n_order)
    ws = carray(_ptr(ws_a, proto), ws_size)
    wpack = carray(_ptr(wpack_a, proto), wpack_size)
    r0 = s + (B * p) // P
    r1 = s + (B * (p + 1)) // P
    if r1 <= r0:
        if backward != 0:
            grad[:] = 0.0
        return 0.0
    Bp = r1 - r0
    Bv = padded_width(Bp)
    xb = _view(ws, 0, (T, F, Bv))
    yb = _view(ws, T * Bv * F, (Bp, O))
    _gather(X, order, n_order, r0, Bp, Bv, xb)
    if backward != 0:
        for i in range(Bp):
            q = order[r0 + i] if n_order > 0 else r0 + i
            for j in range(O):
                yb[i, j] = y[q, j]
    return _part_loss_grad(theta, layout, head, reset_after != 0, xb, Bp, yb, loss_kind,
                           delta, inv, ws, wpack, grad, backward != 0, out, r0)  # fmt: skip


def _rows_c(theta_a, n_params, layout_a, L, head_a, reset_after, X_a, N, T, F, r0, r1,
            wpack_a, wpack_size, ws_a, ws_size, out_a, O, proto):  # fmt: skip
    """Head output of sequences ``X[r0:r1]`` into ``out[r0:r1]`` (``predict_rows``)."""
    theta = carray(_ptr(theta_a, proto), n_params)
    layout = carray(_ptr(layout_a, _PROTO_I64), (L, LAYOUT_WIDTH))
    head = carray(_ptr(head_a, _PROTO_I64), 4)
    X = carray(_ptr(X_a, proto), (N, T, F))
    wpack = carray(_ptr(wpack_a, proto), wpack_size)
    ws = carray(_ptr(ws_a, proto), ws_size)
    out = carray(_ptr(out_a, proto), (N, O))
    predict_rows(theta, layout, head, reset_after != 0, X, r0, r1, wpack, ws, out)


def _pack_c(theta_a, n_params, layout_a, L, reset_after, wpack_a, wpack_size, transposes,
            proto):  # fmt: skip
    """``pack_weights`` into ``wpack`` (and ``pack_transposes`` when ``transposes``)."""
    theta = carray(_ptr(theta_a, proto), n_params)
    layout = carray(_ptr(layout_a, _PROTO_I64), (L, LAYOUT_WIDTH))
    wpack = carray(_ptr(wpack_a, proto), wpack_size)
    pack_weights(theta, layout, reset_after != 0, wpack)
    if transposes != 0:
        pack_transposes(wpack, layout)


def _update_c(theta_a, n_params, grads_a, P, part_loss_a, opt_kind, lr, beta1, beta2, eps,
              momentum, nesterov, clip_norm, m_a, v_a, step_a, proto):  # fmt: skip
    """``_apply_update`` on addresses: the batch loss, or NaN (nothing updated)."""
    theta = carray(_ptr(theta_a, proto), n_params)
    grads = carray(_ptr(grads_a, proto), (P, n_params))
    part_loss = carray(_ptr(part_loss_a, 0.0), P)
    m = carray(_ptr(m_a, proto), n_params)
    v = carray(_ptr(v_a, proto), n_params)
    step = carray(_ptr(step_a, _PROTO_I64), 1)
    return _apply_update(theta, grads, part_loss, opt_kind, lr, beta1, beta2, eps, momentum,
                         nesterov != 0, clip_norm, m, v, step)  # fmt: skip


_PART_ARGS = "i i i i i i i d i i i i i i i i i i i i d i i i i i i i"
_ROWS_ARGS = "i i i i i i i i i i i i i i i i i i"
_PACK_ARGS = "i i i i i i i i"
_UPDATE_ARGS = "i i i i i i d d d d d i d i i i"
# kind: (Python function, argument spec, returns a float64)
_KINDS = {
    "part": (_part_c, _PART_ARGS, True),
    "rows": (_rows_c, _ROWS_ARGS, False),
    "pack": (_pack_c, _PACK_ARGS, False),
    "update": (_update_c, _UPDATE_ARGS, True),
}
_ENTRIES = {}
_READY = set()


def _arg_types(spec, ft):
    return [types.int64 if c == "i" else types.float64 for c in spec.split()] + [ft]


def _numba_float(dtype):
    """The Numba float type of the kernels for ``dtype`` (float32, else float64)."""
    return types.float32 if np.dtype(dtype) == np.float32 else types.float64


def _entry_name(kind, ft):
    return f"fastgru_{kind}_{ft}_v2"


def kernels_cacheable():
    """Whether compiled kernels go to Numba's on-disk cache (``FASTGRU_NO_CACHE`` unset)."""
    return type(_train_epoch._cache).__name__ != "NullCache"


def cache_directory():
    """The directory of Numba's cache of these kernels, or ``None`` (caching off)."""
    if not kernels_cacheable():
        return None
    try:
        return _train_epoch._cache._cache_path
    except AttributeError:  # Numba internals moved
        return None


def kernels_compiled(dtype=None):
    """Whether the training kernels (of ``dtype``, or of any dtype when ``None``) are ready
    without compiling: already in this process, or in Numba's on-disk cache for this CPU
    (their index lists them and is newer than this module; a heuristic). ``None`` when it
    cannot be told."""
    try:
        ft = None
        if dtype is not None:
            ft = _numba_float(dtype)

        def listed(signatures):
            return any(ft is None or sig[0].dtype == ft for sig in signatures)

        if listed(_train_epoch.overloads):
            return True
        if not kernels_cacheable():  # every process compiles
            return False
        from numba.core.registry import cpu_target

        cache_file = _train_epoch._cache._cache_file
        index = cache_file._index_path
        if not os.path.exists(index) or os.path.getmtime(index) < os.path.getmtime(__file__):
            return False
        magic = cpu_target.target_context.codegen().magic_tuple()
        # Index keys are (signature, target, ...): Numba 0.68 added a third item.
        return listed(key[0] for key in cache_file._load_index() if key[1] == magic)
    except Exception:  # Numba internals moved: say nothing rather than guess
        return None


def ensure_entries(dtype, kinds=("part",)):
    """Compile (or load from the cache) the entry points of ``dtype`` named in ``kinds``
    (``"gemm"``: the float32 matrix product; ``"part"``: one part of a training batch;
    ``"update"``: the optimizer step; ``"pack"``: the packed weights; ``"rows"``:
    prediction) and register their symbols (the GEMM: its slot).
    Must run before a driver that calls them is compiled or loaded; the public drivers do
    it."""
    key = (dtype, kinds)
    if key in _READY:  # the usual case, once per call of a driver (~0.2 us)
        return
    ft = _numba_float(dtype)
    for kind in kinds:
        name = _entry_name(kind, ft)
        if name in _ENTRIES:
            continue
        if kind == "gemm":  # float32 only (float64 products go to BLAS or loops)
            if ft != types.float32:
                continue
            for entry, sig, pyfunc, slot in (("gemm", _SGEMM_SIG, _sgemm_c, _SLOT_SGEMM),
                                             ("nt", _SNT_SIG, _snt_c, _SLOT_SNT)):  # fmt: skip
                fn = cfunc(sig, cache=NJIT_OPTIONS["cache"], error_model="numpy")(pyfunc)
                _SLOTS[slot] = fn.address
                _ENTRIES[_entry_name(entry, ft)] = fn
            continue
        pyfunc, spec, ret_double = _KINDS[kind]
        sig = (types.float64 if ret_double else types.void)(*_arg_types(spec, ft))
        fn = cfunc(sig, cache=NJIT_OPTIONS["cache"], error_model="numpy")(pyfunc)
        llvm.add_symbol(name, fn.address)
        _ENTRIES[name] = fn
    try:
        _READY.add(key)
    except TypeError:  # an unhashable dtype-like: no shortcut next time
        pass


def _extern_codegen(kind, spec, ret_double):
    def typer(ft):
        if not isinstance(ft, types.Float):
            return None
        ret = types.float64 if ret_double else types.void
        return ret(*_arg_types(spec, ft))

    def codegen(context, builder, signature, args):
        name = _entry_name(kind, signature.args[-1])
        argtys = [context.get_value_type(a) for a in signature.args]
        rt = ir.DoubleType() if ret_double else ir.VoidType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(rt, argtys), name)
        res = builder.call(fn, args)
        return res if ret_double else context.get_dummy_value()

    return typer, codegen


_part_typer, _part_codegen = _extern_codegen("part", _PART_ARGS, True)
_rows_typer, _rows_codegen = _extern_codegen("rows", _ROWS_ARGS, False)
_pack_typer, _pack_codegen = _extern_codegen("pack", _PACK_ARGS, False)
_update_typer, _update_codegen = _extern_codegen("update", _UPDATE_ARGS, True)


@intrinsic
def _call_part(typingctx, theta_a, n_params, layout_a, L, head_a, reset_after, loss_kind,
               delta, X_a, N, T, F, y_a, O, order_a, n_order, s, B, p, P, inv,
               ws_a, ws_size, wpack_a, wpack_size, grad_a, out_a, backward, proto):  # fmt: skip
    return _part_typer(proto), _part_codegen


@intrinsic
def _call_rows(typingctx, theta_a, n_params, layout_a, L, head_a, reset_after, X_a, N, T, F,
               r0, r1, wpack_a, wpack_size, ws_a, ws_size, out_a, O, proto):  # fmt: skip
    return _rows_typer(proto), _rows_codegen


@intrinsic
def _call_pack(typingctx, theta_a, n_params, layout_a, L, reset_after, wpack_a, wpack_size,
               transposes, proto):  # fmt: skip
    return _pack_typer(proto), _pack_codegen


@intrinsic
def _call_update(typingctx, theta_a, n_params, grads_a, P, part_loss_a, opt_kind, lr, beta1,
                 beta2, eps, momentum, nesterov, clip_norm, m_a, v_a, step_a, proto):  # fmt: skip
    return _update_typer(proto), _update_codegen


# --------------------------------------------------------------------------------------
# Whole epoch
# --------------------------------------------------------------------------------------
@njit(**NJIT_OPTIONS)
def _apply_update(theta, grads, part_loss, opt_kind, lr, beta1, beta2, eps, momentum,
                  nesterov, clip_norm, m, v, step):  # fmt: skip
    """Sum the part gradients and losses in a fixed order, clip, update. Returns the batch
    loss, or NaN (without updating) if the loss or the gradient is not finite."""
    P = grads.shape[0]
    grad = grads[0]
    for p in range(1, P):
        gp = grads[p]
        for i in range(grad.shape[0]):
            grad[i] += gp[i]
    loss = 0.0
    for p in range(P):
        loss += part_loss[p]
    norm = global_norm(grad)
    if not (math.isfinite(loss) and math.isfinite(norm)):
        return math.nan
    scale = clip_scale(norm, clip_norm)
    step[0] += 1
    if opt_kind == 0:
        adam_update(theta, grad, m, v, step[0], lr, beta1, beta2, eps, scale)
    else:
        sgd_update(theta, grad, m, lr, momentum, nesterov, scale)
    return loss


@njit(**PARALLEL_OPTIONS)
def _train_epoch(theta, layout, head, reset_after, loss_kind, delta, X, y, order, batch_size,
                 opt_kind, lr, beta1, beta2, eps, momentum, nesterov, clip_norm,
                 m, v, step, ws, grads, wpack, part_loss):  # fmt: skip
    # Packing and the update are C entry points too (called by symbol, not linked in):
    # linked, they were most of this driver's compilation.
    n = order.shape[0]
    N, T, F = X.shape
    O = y.shape[1]
    P = ws.shape[0]
    L = layout.shape[0]
    n_params = theta.shape[0]
    ws_size = ws.shape[1]
    ra = 1 if reset_after else 0
    total = 0.0
    for s in range(0, n, batch_size):
        B = min(batch_size, n - s)
        _call_pack(theta.ctypes.data, n_params, layout.ctypes.data, L, ra, wpack.ctypes.data,
                   wpack.shape[0], 1, theta[0])  # fmt: skip
        inv = 1.0 / (B * O)
        for p in prange(P):
            part_loss[p] = _call_part(theta.ctypes.data, n_params, layout.ctypes.data, L,
                                      head.ctypes.data, ra, loss_kind, delta, X.ctypes.data,
                                      N, T, F, y.ctypes.data, O, order.ctypes.data, n, s, B,
                                      p, P, inv, ws[p].ctypes.data, ws_size,
                                      wpack.ctypes.data, wpack.shape[0], grads[p].ctypes.data,
                                      0, 1, theta[0])  # fmt: skip
        loss = _call_update(theta.ctypes.data, n_params, grads.ctypes.data, P,
                            part_loss.ctypes.data, opt_kind, lr, beta1, beta2, eps, momentum,
                            1 if nesterov else 0, clip_norm, m.ctypes.data, v.ctypes.data,
                            step.ctypes.data, theta[0])  # fmt: skip
        if not math.isfinite(loss):
            return total / max(s, 1), s
        total += loss * B
    return total / n, -1


def _renamed(fn, name):
    """``fn``'s code under another name: Numba caches a function by its qualified name, so
    the copy compiled with other options has its own cache entries."""
    copy = pytypes.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__,
                                fn.__closure__)  # fmt: skip
    copy.__qualname__ = name
    return copy


# The epoch driver without threads (prange runs as range): the same parts, in order, so the
# same results. For a process forked from one whose OpenMP threads had started: GNU OpenMP
# terminates such a child when it starts a parallel region (Numba's "fork() called from a
# process already using GNU OpenMP"), and multiprocessing.Pool then waits forever.
_train_epoch_serial = njit(**NJIT_OPTIONS)(_renamed(_train_epoch.py_func, "_train_epoch_serial"))
_OPENMP_FORKED = False


def _after_fork_in_child():
    global _OPENMP_FORKED
    try:
        from numba.np.ufunc import parallel

        started = parallel._is_initialized and parallel._threading_layer in ("omp", None)
    except (ImportError, AttributeError):  # Numba internals moved: assume the worst
        started = True
    _OPENMP_FORKED = _OPENMP_FORKED or bool(started)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def epoch_driver():
    """The compiled epoch driver this process can run: ``_train_epoch`` (parallel), or
    ``_train_epoch_serial`` in a child forked after OpenMP started."""
    return _train_epoch_serial if _OPENMP_FORKED else _train_epoch


def train_epoch(theta, layout, head, reset_after, loss_kind, delta, X, y, order, batch_size,
                opt_kind, lr, beta1, beta2, eps, momentum, nesterov, clip_norm,
                m, v, step, ws, grads, wpack, part_loss):  # fmt: skip
    """Train one epoch: every mini-batch of ``order`` (forward, loss, BPTT, clipping, update).

    ``X (N, T, F)`` and ``y (N, O)`` are sample-major, C-contiguous, of ``theta``'s dtype;
    ``order`` int64. Each batch is split into ``P = ws.shape[0]`` row slices run in parallel
    (``prange``); slice ``p`` is gathered (batch-as-vector) into ``ws[p]`` (``part_workspace_size``
    long) and its gradient written to ``grads[p]``; the slices are summed in the order
    ``0, 1, ..., P-1``. ``wpack`` (``pack_size``) receives the packed weights once per
    batch; ``part_loss`` is float64 of length ``P``. ``step`` is a one-element int64 array,
    the optimizer's step counter. ``opt_kind``: 0 Adam (``m``, ``v`` its moments), 1 SGD
    (``m`` the velocity).

    Returns ``(mean_loss, bad_batch_start)``: the sample-weighted mean of the batch losses,
    and ``-1``, or the first sample index of a batch whose loss or gradient was not finite;
    training stops there without applying that batch's update.
    """
    ensure_entries(theta.dtype, ("gemm", "part", "pack", "update"))
    return epoch_driver()(theta, layout, head, reset_after, loss_kind, delta, X, y, order,
                          batch_size, opt_kind, lr, beta1, beta2, eps, momentum, nesterov,
                          clip_norm, m, v, step, ws, grads, wpack, part_loss)  # fmt: skip


# --------------------------------------------------------------------------------------
# Prediction: a lean forward pass (no BPTT saves)
# --------------------------------------------------------------------------------------
@njit(**NJIT_OPTIONS)
def predict_workspace_size(layout, head, T, B):
    """Length of the work buffer of :func:`predict_rows` for up to ``B`` sequences of ``T``
    steps: the input, two state sequences used in turn, the gate planes and ``AUX``."""
    Hmax = 0
    for l in range(layout.shape[0]):
        Hmax = max(Hmax, layout[l, H_])
    Bv = padded_width(B)
    return T * Bv * layout[0, F_] + 2 * (T + 1) * Bv * Hmax + 4 * T * Bv * Hmax + GUARD


@njit(inline="always", **NJIT_OPTIONS)
def predict_rows(theta, layout, head, reset_after, X, r0, r1, wpack, ws, out):
    """Head output of sequences ``X[r0:r1]`` into ``out[r0:r1]``: the forward pass layer by
    layer, each layer's state sequence in one of two buffers used in turn (nothing is kept
    for BPTT). ``wpack`` holds packed weights and their transposes."""
    T = X.shape[1]
    F0 = X.shape[2]
    B = r1 - r0
    Bv = padded_width(B)
    L = layout.shape[0]
    Hmax = 0
    for l in range(L):
        Hmax = max(Hmax, layout[l, H_])
    xb = _view(ws, 0, (T, F0, Bv))
    _gather(X, _NO_ORDER, 0, r0, B, Bv, xb)
    off = T * Bv * F0
    SH = (T + 1) * Bv * Hmax
    seqs = _view(ws, off, 2 * SH)
    off += 2 * SH
    gbuf = _view(ws, off, 3 * T * Bv * Hmax)
    off += 3 * T * Bv * Hmax
    abuf = _view(ws, off, T * Bv * Hmax)
    inp = xb
    for l in range(L):
        H = layout[l, H_]
        Wc, Uc, UTc, WTc, bias = _packed(wpack, layout, l)
        Hs = _view(seqs, (l % 2) * SH, (T + 1, H, Bv))
        G = _view(gbuf, 0, (T, 3 * H, Bv))
        AUX = _view(abuf, 0, (T, H, Bv))
        Hs[0] = 0.0
        gru_forward(inp, Wc, Uc, UTc, WTc, bias, reset_after, Hs, G, AUX)
        inp = _view(Hs, H * Bv, (T, H, Bv))
    _head_output(theta, head, inp[T - 1], B, out, r0)


@njit(**NJIT_OPTIONS)
def _predict_chunks(theta, layout, head, reset_after, X, chunk, out, wpack, ws, first, step,
                    pack):  # fmt: skip
    """Pack the weights into ``wpack`` when ``pack``; then the chunks ``first, first + step,
    ...`` of ``X`` (none when ``step`` is 0), in the work buffer ``ws``."""
    ra = 1 if reset_after else 0
    if pack:
        # The transposes multiply batches of more than one sequence (``gru_forward``).
        _call_pack(theta.ctypes.data, theta.shape[0], layout.ctypes.data, layout.shape[0],
                   ra, wpack.ctypes.data, wpack.shape[0], 1 if X.shape[0] > 1 else 0,
                   theta[0])  # fmt: skip
    if step <= 0:
        return
    N, T, F = X.shape
    n_chunks = (N + chunk - 1) // chunk
    for c in range(first, n_chunks, step):
        s = c * chunk
        _call_rows(theta.ctypes.data, theta.shape[0], layout.ctypes.data, layout.shape[0],
                   head.ctypes.data, ra, X.ctypes.data, N, T, F, s, min(s + chunk, N),
                   wpack.ctypes.data, wpack.shape[0], ws.ctypes.data, ws.shape[0],
                   out.ctypes.data, out.shape[1], theta[0])  # fmt: skip


# Parallel prediction runs the same compiled driver in Python threads (it releases the
# GIL), one stride of chunks each: a prange driver took ~1 s more to compile, for no
# measurable gain on a predict of any size worth splitting.
_POOL = None


def _pool(workers):
    global _POOL
    if _POOL is None or _POOL._max_workers < workers:
        from concurrent.futures import ThreadPoolExecutor

        if _POOL is not None:
            _POOL.shutdown(wait=False)
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fastgru-predict")
    return _POOL


def _forget_pool():  # a forked child has the pool object but not its threads
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _spread(work, P):
    """``work(p)`` for ``p`` in ``0 .. P - 1``: ``p = 0`` in this thread, the others in the
    pool's threads; returns when all are done."""
    futures = [_pool(P - 1).submit(work, p) for p in range(1, P)] if P > 1 else []
    work(0)
    for f in futures:
        f.result()


def predict(theta, layout, head, reset_after, X, chunk, out, wpack, ws):
    """Head output for every sequence of ``X (N, T, F)`` (C-contiguous, ``theta``'s dtype)
    into ``out (N, O)``, ``chunk`` sequences at a time. ``wpack`` has ``pack_size``
    elements. ``ws`` is one work buffer (``predict_workspace_size`` for ``chunk``
    sequences): the chunks run in this thread; or a 2-D array of ``P`` such buffers: the
    chunks are dealt round-robin to ``P`` threads. Every row is computed by the same code
    whatever the split, so the result does not depend on ``P``."""
    ensure_entries(theta.dtype, ("gemm", "pack", "rows"))
    chunk = int(chunk)
    if ws.ndim == 1 or ws.shape[0] == 1:
        buf = ws if ws.ndim == 1 else ws[0]
        _predict_chunks(theta, layout, head, reset_after, X, chunk, out, wpack, buf, 0, 1,
                        True)  # fmt: skip
        return
    P = ws.shape[0]
    args = (theta, layout, head, reset_after, X, chunk, out, wpack)
    _predict_chunks(*args, ws[0], 0, 0, True)  # the packed weights, before any thread
    _spread(lambda p: _predict_chunks(*args, ws[p], p, P, False), P)


def entries_loaded(dtype, kinds):
    """Whether the entry points ``kinds`` of ``dtype`` are loaded in this process already
    (compiled or read from the cache: ``ensure_entries`` would do nothing)."""
    ft = _numba_float(dtype)
    return all(_ENTRIES.get(_entry_name(kind, ft)) is not None
               for kind in kinds if kind != "gemm" or ft == types.float32)  # fmt: skip


def predict_by_parts(theta, layout, head, reset_after, X, chunk, out, wpack, ws):
    """As :func:`predict`, but through the training entry point run forward only, from
    Python (``ctypes``, which releases the GIL), instead of the prediction kernels.

    For the first predictions of a cold process that has just compiled the training entry
    point while the precompile helper is still compiling the prediction kernels: waiting
    for those would cost up to the helper's whole prediction stage (~1.5-2 s here). Each
    row goes through the same code as in :func:`predict` (``gru_forward``, then
    ``_head_output``), so the output is the same to the bit. Needs the entry points
    "part", "pack" (and "gemm") loaded (:func:`entries_loaded`); ``ws`` is one buffer, or
    ``P`` of them (one thread each), of ``part_workspace_size(layout, head, T, chunk)``."""
    ft = _numba_float(theta.dtype)
    part = _ENTRIES[_entry_name("part", ft)].ctypes
    pack = _ENTRIES[_entry_name("pack", ft)].ctypes
    N, T, F = X.shape
    O = out.shape[1]
    L = layout.shape[0]
    ra = 1 if reset_after else 0
    proto = float(theta[0])
    pack(theta.ctypes.data, theta.shape[0], layout.ctypes.data, L, ra, wpack.ctypes.data,
         wpack.shape[0], 1 if N > 1 else 0, proto)  # fmt: skip
    chunk = int(chunk)
    n_chunks = (N + chunk - 1) // chunk
    bufs = [ws] if ws.ndim == 1 else list(ws)

    P = len(bufs)

    def run(p):
        buf = bufs[p]
        for c in range(p, n_chunks, P):
            s = c * chunk
            part(theta.ctypes.data, theta.shape[0], layout.ctypes.data, L, head.ctypes.data,
                 ra, 0, 0.0, X.ctypes.data, N, T, F, 0, O, 0, 0, s, min(chunk, N - s), 0, 1,
                 0.0, buf.ctypes.data, buf.shape[0], wpack.ctypes.data, wpack.shape[0], 0,
                 out.ctypes.data, 0, proto)  # fmt: skip

    _spread(run, P)


# --------------------------------------------------------------------------------------
# Convenience wrappers over one layer (batch-major, canonical parameters)
# --------------------------------------------------------------------------------------
def _guarded(shape, dtype):
    """A zeroed array of ``shape`` followed by :data:`GUARD` readable elements."""
    n = int(np.prod(shape))
    return np.zeros(n + GUARD, dtype)[:n].reshape(shape)


def _pack_layer(params, F, H, dtype, reset_after):
    """The packed blocks of one layer (as ``pack_weights``) from canonical parameters."""
    spec_layout = np.array([[F, H] + [0] * 8], dtype=np.int64)
    W = np.asarray(params["W"], dtype=dtype)
    U = np.asarray(params["U"], dtype=dtype)
    b = np.asarray(params["b"], dtype=dtype)
    theta = [W[:, : 2 * H].ravel(), W[:, 2 * H :].ravel(), U[:, : 2 * H].ravel(),
             U[:, 2 * H :].ravel(), b[: 2 * H], b[2 * H :]]  # fmt: skip
    if reset_after:
        bh = np.asarray(params["bh"], dtype=dtype)
        theta += [bh[: 2 * H], bh[2 * H :]]
    offs = np.cumsum([0] + [len(a) for a in theta])
    spec_layout[0, 2 : 2 + len(theta)] = offs[:-1]
    if not reset_after:
        spec_layout[0, 8:] = offs[-1]
    theta = np.concatenate(theta + [np.zeros(GUARD, dtype)])
    wpack = np.zeros(pack_size(spec_layout), dtype)
    pack_weights(theta, spec_layout, reset_after, wpack)
    pack_transposes(wpack, spec_layout)
    return wpack, spec_layout


def layer_forward(X, h0, params, reset_after=False):
    """Run one GRU layer on a batch.

    Parameters
    ----------
    X : ndarray of shape (B, T, F), float32 or float64
    h0 : ndarray of shape (B, H)
    params : dict
        Canonical parameters ``W (F, 3H)``, ``U (H, 3H)``, ``b (3H,)`` and, with
        ``reset_after``, ``bh (3H,)``; gate order r, z, n.
    reset_after : bool

    Returns
    -------
    H_seq : ndarray of shape (B, T, H)
        The hidden state after every step.
    cache : dict
        What :func:`layer_backward` needs.
    """
    X = np.asarray(X)
    dtype = X.dtype
    B, T, F = X.shape
    H = h0.shape[1]
    wpack, lay = _pack_layer(params, F, H, dtype, reset_after)
    Bv = padded_width(B)
    # The batch-as-vector layout: (T, F, Bv), zeros in the padding columns.
    Xt = _guarded((T, F, Bv), dtype)
    Xt[:, :, :B] = X.transpose(1, 2, 0)
    Hs = _guarded((T + 1, H, Bv), dtype)
    Hs[0, :, :B] = np.asarray(h0).T
    G = _guarded((T, 3 * H, Bv), dtype)
    AUX = _guarded((T, H, Bv), dtype)
    gru_forward(Xt, *_packed(wpack, lay, 0), reset_after, Hs, G, AUX)
    cache = {"Xt": Xt, "Hs": Hs, "G": G, "AUX": AUX, "wpack": wpack, "layout": lay,
             "reset_after": reset_after, "B": B}  # fmt: skip
    return Hs[1:, :, :B].transpose(2, 0, 1).copy(), cache


def layer_backward(cache, dH_seq):
    """Backpropagation through time for one layer (consumes ``cache``: the saved gates are
    overwritten by their gradients).

    Parameters
    ----------
    cache : dict from :func:`layer_forward`
    dH_seq : ndarray of shape (B, T, H)
        Gradient of the loss with respect to every hidden state the forward returned.

    Returns
    -------
    dict
        ``W``, ``U``, ``b``, ``bh`` (``None`` unless reset-after): parameter gradients in
        canonical form; ``X`` (B, T, F) and ``h0`` (B, H): input and initial-state gradients.
    """
    Xt, Hs, G, AUX = cache["Xt"], cache["Hs"], cache["G"], cache["AUX"]
    ra = cache["reset_after"]
    B = cache["B"]
    Wc, Uc, UTc, WTc, _ = _packed(cache["wpack"], cache["layout"], 0)
    dtype = Xt.dtype
    T, F, Bv = Xt.shape
    H = Hs.shape[1]
    dY = _guarded((T, H, Bv), dtype)
    dY[:, :, :B] = np.asarray(dH_seq, dtype=dtype).transpose(1, 2, 0)
    e = _guarded
    DAN, dh, tmp = e((T, H, Bv), dtype), e((H, Bv), dtype), e((H, Bv), dtype)
    dX = e((T, F, Bv), dtype)
    ones = np.ones((T, 1, Bv), dtype)
    g = [e((F, 2 * H), dtype), e((F, H), dtype), e((H, 2 * H), dtype), e((H, H), dtype),
         e(2 * H, dtype), e(H, dtype), e(2 * H, dtype), e(H, dtype)]  # fmt: skip
    gru_backward(Xt, Hs, G, AUX, DAN, Wc, Uc, UTc, WTc, ra, dY, dh, tmp, ones, *g, dX, True)
    return {
        "W": np.concatenate([g[0], g[1]], axis=1),
        "U": np.concatenate([g[2], g[3]], axis=1),
        "b": np.concatenate([g[4], g[5]]),
        "bh": np.concatenate([g[6], g[7]]) if ra else None,
        "X": dX[:, :, :B].transpose(2, 0, 1).copy(),
        "h0": dh[:, :B].T.copy(),
    }
