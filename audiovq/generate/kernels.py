"""The numba kernels of the fast CPU path: the whole WaveNet step loop of a chunk of steps
(`run_lanes`), its mat-vecs in float32 and over reduced-precision panels (LLVM IR), and the
sampling rule of `nn/sampling.py` in exact arithmetic.

Everything `run_lanes` calls lives in this file: numba's cache of a kernel notices changes
to its own file only, so a helper moved elsewhere could be edited without the cached kernel
being rebuilt. (The plain-Python side, lane planning and the thread pool, is fast.py.)

Same arithmetic as `incremental.TorchStack` on the fused layouts of `weights.py`, without
per-op overhead: per layer one (G × K·R) mat-vec over the gathered taps, the gate, one
(R × H) residual mat-vec; all layers' skip projections as one (S × L·H) mat-vec; the head;
then sampling by the rule of `nn/sampling.py` from the same uniforms.

Items ("lanes") are processed alone (mat-vecs), or eight at a time sharing every weight
load (`_matmul8`) when a thread has more than four of them.
tanh/sigmoid use a rational approximation (max error 3.2e-7) that vectorizes, unlike libm's.

Numbers: logits match the PyTorch path to ~1e-7 (float32 rounding, summation order). An
item's samples are the same alone or in a batch when it runs as a single lane in both;
in an eight-lane group the dot products are summed in another order, so its samples are
the same unless a uniform falls within ~1e-7 of a class boundary. The mat-vecs are compiled
with fast-math (reassociation lets them vectorize); whatever must not depend on compiler
choices (input quantisation, sampling) is compiled without it (`_EXACT`), so a seed gives
the same output whether the kernels were just compiled or loaded from the cache
(tests/test_kernel_cache.py).

For one lane the float32 row-by-row mat-vecs are bound by instructions more than by the
~2.5 MB of weights read per step (a horizontal sum per output row; with the weights in L2 a
step takes half the time, not a tenth); for a group, by FMA throughput.

Reduced precision (precision="bf16" | "int8"): the mat-vecs read panels of rounded
weights (`weights.PanelWeights`) with kernels written in LLVM IR ("reduced-precision panels"
below); logits then differ from float32 by the rounding (int8 ~0.6 %, bf16 ~0.3 % of their
spread, rms; tests/test_generate_precision.py). Reference decoder, batch 1, one thread: int8
~1.7×, bf16 ~1.2× the float32 rate (tools/bench_generate.py).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ..nn.sampling import CATEGORICAL, U_CLIP
from .weights import PANEL

GROUP = 8  # lanes per shared-weight group
_FAST = dict(fastmath=True, error_model="numpy", cache=True)
_EXACT = dict(fastmath=False, error_model="numpy", cache=True)  # step by step as written: explicit, since
# numba compiles a callee that does not set fastmath with its caller's (flag inheritance)

# tanh(x) ≈ x·P(x²)/Q(x²) on |x| ≤ 9 (tanh(9) = 1 − 3e-8), fitted by weighted least squares
# iterated towards minimax; max abs error 3.2e-7 in float32.
_P0, _P1, _P2, _P3, _P4 = (np.float32(v) for v in (
    0.9999999064174645, 0.13373187158070313, 0.003486569046253951, 2.0471609137724407e-05,
    1.3183906272251633e-08))
_Q1, _Q2, _Q3, _Q4 = (np.float32(v) for v in (
    0.46706484037214296, 0.02584193114682089, 0.00032713638967155284, 7.702535355300077e-07))
_CLAMP = np.float32(9.0)
_HALF = np.float32(0.5)
_SQRT_HALF = np.float32(math.sqrt(0.5))


@njit(inline="always", **_FAST)
def _tanh(x):
    x = min(max(x, -_CLAMP), _CLAMP)
    z = x * x
    p = (((_P4 * z + _P3) * z + _P2) * z + _P1) * z + _P0
    q = (((_Q4 * z + _Q3) * z + _Q2) * z + _Q1) * z + np.float32(1.0)
    return x * p / q


@njit(inline="always", **_FAST)
def _matvec(W, x, out):
    """out (O,) += W (O, I) @ x (I,)."""
    for o in range(W.shape[0]):
        acc = np.float32(0.0)
        for i in range(W.shape[1]):
            acc += W[o, i] * x[i]
        out[o] += acc


@njit(inline="always", **_FAST)
def _rows2_lanes4(W, X, out, o, b):
    """out[b:b+4, o:o+2] += X[b:b+4] @ W[o:o+2]ᵀ: 8 accumulators, 6 loads per 8 FMAs."""
    a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = np.float32(0.0)
    for i in range(W.shape[1]):
        w0 = W[o, i]
        w1 = W[o + 1, i]
        x0 = X[b, i]
        x1 = X[b + 1, i]
        x2 = X[b + 2, i]
        x3 = X[b + 3, i]
        a00 += w0 * x0
        a01 += w0 * x1
        a02 += w0 * x2
        a03 += w0 * x3
        a10 += w1 * x0
        a11 += w1 * x1
        a12 += w1 * x2
        a13 += w1 * x3
    out[b, o] += a00
    out[b + 1, o] += a01
    out[b + 2, o] += a02
    out[b + 3, o] += a03
    out[b, o + 1] += a10
    out[b + 1, o + 1] += a11
    out[b + 2, o + 1] += a12
    out[b + 3, o + 1] += a13


@njit(inline="always", **_FAST)
def _matmul8(W, X, out):
    """out (8, O) += X (8, I) @ W (O, I)ᵀ, in blocks of 2 rows × 4 lanes (what fits the 16
    vector registers of AVX2: each weight and input load serves several FMAs)."""
    O = W.shape[0]
    for o in range(0, O - 1, 2):
        _rows2_lanes4(W, X, out, o, 0)
        _rows2_lanes4(W, X, out, o, 4)
    if O % 2:
        for b in range(GROUP):
            acc = np.float32(0.0)
            for i in range(W.shape[1]):
                acc += W[O - 1, i] * X[b, i]
            out[b, O - 1] += acc


@njit(**_FAST)
def _matmul(W, X, out, width):
    """out (width, O) += X (width, I) @ W (O, I)ᵀ. (The helpers are inlined here, once; the
    kernel calls this function, which keeps its compile time down.)"""
    if width == GROUP:
        _matmul8(W, X, out)
    else:
        for b in range(width):
            _matvec(W, X[b], out[b])


# ---------------------------------------------------------------- reduced-precision panels
# Mat-vecs over the int8 / bfloat16 panels of `weights.PanelWeights`, written as LLVM IR
# (numba intrinsics: numba has no vector types, and LLVM does not find this form itself).
# For each panel of PANEL outputs, PANEL / 16 vectors of 16 lanes stay in registers while
# the loop runs over the inputs, each step broadcasting x[i] and adding one contiguous row of
# PANEL weights — no horizontal sums and no reloads of x per output, which is what bounds
# the float32 row-by-row `_matvec` at batch 1. Two accumulator sets (even and odd steps)
# let the multiply-adds overlap. LLVM lowers 16-lane vectors to what the CPU has (two AVX2
# registers, four SSE ones).
# bfloat16: the upper half of a float32, widened with a shift, float32 multiply-adds.
# int8: x is first rounded to 16-bit integers (`_quantize`, ≥ 13 bits: far finer than the
# weights), then products are summed exactly in int32, two at a time (LLVM turns the
# pattern into pmaddwd, or VNNI vpdpwssd: 32 products per instruction and no int → float
# conversion per weight); the float32 scale is applied once per output.
# (Kept in this file: numba's cache of `run_lanes` only notices changes to this file.)

LANES = 16
VECTORS = PANEL // LANES


class _IR:
    """What both panel kernels build their IR from: constants, vector views of array data,
    broadcasts and the fused multiply-add of LANES float32."""

    def __init__(self, builder):
        self.b = builder
        self.i32, self.i64, self.f32 = ir.IntType(32), ir.IntType(64), ir.FloatType()
        self.vf = ir.VectorType(self.f32, LANES)
        self.vi32 = ir.VectorType(self.i32, LANES)
        self.fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(self.vf, [self.vf] * 3),
                                                  f"llvm.fma.v{LANES}f32")

    def const(self, v):
        return ir.Constant(self.i64, v)

    def vector_at(self, base, offset, vty):
        """A pointer to a vector of type vty at element `offset` of `base`."""
        return self.b.bitcast(self.b.gep(base, [offset]), vty.as_pointer())

    def broadcast(self, value, vty):
        """`value` in every lane of a vector of type vty."""
        b = self.b
        v = b.insert_element(ir.Constant(vty, ir.Undefined), value, ir.Constant(self.i32, 0))
        return b.shuffle_vector(v, ir.Constant(vty, ir.Undefined), ir.Constant(self.vi32, [0] * LANES))

    def accumulators(self, vty, zero):
        """Two sets of VECTORS accumulators (even and odd inputs: their adds overlap), in the
        entry block (mem2reg makes registers of them); call inside the panel loop."""
        sets = [[cgutils.alloca_once(self.b, vty) for _ in range(VECTORS)] for _ in range(2)]
        for acc in sets[0] + sets[1]:
            self.b.store(zero, acc)
        return sets

    def panels(self, count, inputs, add, finish):
        """for p < count: zero the accumulators; add(accs, p, i) for i < inputs, alternating the
        two sets; finish(p, k, acc_even, acc_odd) for each of the VECTORS outputs vectors."""
        b = self.b
        with cgutils.for_range(b, count) as p:
            sets = self.accumulators(*self.zero)
            with cgutils.for_range(b, b.udiv(inputs, self.const(2))) as pair:
                i = b.mul(pair.index, self.const(2))
                add(sets[0], p.index, i)
                add(sets[1], p.index, b.add(i, self.const(1)))
            with b.if_then(b.icmp_unsigned("!=", b.urem(inputs, self.const(2)), self.const(0))):
                add(sets[0], p.index, b.sub(inputs, self.const(1)))
            for k in range(VECTORS):
                finish(p.index, k, b.load(sets[0][k]), b.load(sets[1][k]))

    def fma_into(self, out_data, p, k, acc, scale):
        """out[p·PANEL + k·LANES …] += acc · scale (one fused multiply-add per lane)."""
        b = self.b
        dst = self.vector_at(out_data, b.add(b.mul(p, self.const(PANEL)), self.const(k * LANES)), self.vf)
        b.store(b.call(self.fma, [acc, scale, b.load(dst, align=1)]), dst, align=1)


@intrinsic
def _panel_bf16(typingctx, data, scale, x, out):
    """out[:n·PANEL] += scale[:n·PANEL] ⊙ (W x), W given as bfloat16 panels data (n, I, PANEL)
    (uint16 bits); all arrays C-contiguous, x (≥ I,) and out float32."""
    contiguous = all(isinstance(a, types.Array) and a.layout == "C" for a in (data, scale, x, out))
    if not (contiguous and data.ndim == 3 and data.dtype == types.uint16
            and scale.dtype == x.dtype == out.dtype == types.float32):
        return None

    def codegen(context, builder, sig, args):
        D, S, X, Out = (context.make_array(t)(context, builder, v) for t, v in zip(sig.args, args))
        panels, inputs = cgutils.unpack_tuple(builder, D.shape)[:2]
        g = _IR(builder)
        vbf = ir.VectorType(ir.IntType(16), LANES)
        g.zero = (g.vf, ir.Constant(g.vf, [0.0] * LANES))
        shift = ir.Constant(g.vi32, [16] * LANES)

        def add(accs, p, i):
            """accs += W[p, i, :] · x[i]; a bfloat16 is the upper half of a float32's bits"""
            xv = g.broadcast(builder.load(builder.gep(X.data, [i])), g.vf)
            row = builder.mul(builder.add(builder.mul(p, inputs), i), g.const(PANEL))
            for k, acc in enumerate(accs):
                w = builder.load(g.vector_at(D.data, builder.add(row, g.const(k * LANES)), vbf), align=1)
                w = builder.bitcast(builder.shl(builder.zext(w, g.vi32), shift), g.vf)
                builder.store(builder.call(g.fma, [w, xv, builder.load(acc)]), acc)

        def finish(p, k, even, odd):
            o = builder.add(builder.mul(p, g.const(PANEL)), g.const(k * LANES))
            g.fma_into(Out.data, p, k, builder.fadd(even, odd), builder.load(g.vector_at(S.data, o, g.vf), align=1))

        g.panels(panels, inputs, add, finish)
        return context.get_dummy_value()

    return types.void(data, scale, x, out), codegen


@intrinsic
def _panel_int8(typingctx, data, scale, xq, xscale, out):
    """out[:n·PANEL] += xscale · scale ⊙ (W xq) in exact int32 arithmetic: W as int8 panels of
    input pairs data (n, ⌈I/2⌉, PANEL, 2), xq int16 (≥ 2⌈I/2⌉,) (the caller keeps
    127 · max|xq| · I < 2³¹). Each pair of products is one multiply-add of 16-bit pairs (x86
    pmaddwd, or VNNI vpdpwssd with the add: 32 products per instruction, no int→float
    conversion per weight)."""
    contiguous = all(isinstance(a, types.Array) and a.layout == "C" for a in (data, scale, xq, out))
    if not (contiguous and data.ndim == 4 and data.dtype == types.int8 and xq.dtype == types.int16
            and scale.dtype == out.dtype == types.float32 and xscale == types.float32):
        return None

    def codegen(context, builder, sig, args):
        D, S, Q = (context.make_array(t)(context, builder, v) for t, v in zip(sig.args[:3], args[:3]))
        Out = context.make_array(sig.args[4])(context, builder, args[4])
        panels, pairs = cgutils.unpack_tuple(builder, D.shape)[:2]
        g = _IR(builder)
        W2 = 2 * LANES  # 16-bit values per vector
        vw8, vw16, vw32 = (ir.VectorType(ir.IntType(bits), W2) for bits in (8, 16, 32))
        even = ir.Constant(g.vi32, list(range(0, W2, 2)))
        odd = ir.Constant(g.vi32, list(range(1, W2, 2)))
        g.zero = (g.vi32, ir.Constant(g.vi32, [0] * LANES))
        pair_ptr = builder.bitcast(Q.data, g.i32.as_pointer())  # xq[2j], xq[2j+1] as one 32-bit word
        xs = g.broadcast(args[3], g.vf)

        def add(accs, p, j):
            """accs += W[p, 2j:2j+2, :] · xq[2j:2j+2]"""
            word = g.broadcast(builder.load(builder.gep(pair_ptr, [j])), g.vi32)
            xw = builder.sext(builder.bitcast(word, vw16), vw32)
            row = builder.mul(builder.add(builder.mul(p, pairs), j), g.const(2 * PANEL))
            for k, acc in enumerate(accs):
                w = builder.load(g.vector_at(D.data, builder.add(row, g.const(k * W2)), vw8), align=1)
                prod = builder.mul(builder.sext(w, vw32), xw)
                pair_sum = builder.add(builder.shuffle_vector(prod, prod, even), builder.shuffle_vector(prod, prod, odd))
                builder.store(builder.add(builder.load(acc), pair_sum), acc)

        def finish(p, k, acc_even, acc_odd):
            o = builder.add(builder.mul(p, g.const(PANEL)), g.const(k * LANES))
            scale = builder.fmul(builder.load(g.vector_at(S.data, o, g.vf), align=1), xs)
            g.fma_into(Out.data, p, k, builder.sitofp(builder.add(acc_even, acc_odd), g.vf), scale)

        g.panels(panels, pairs, add, finish)
        return context.get_dummy_value()

    return types.void(data, scale, xq, xscale, out), codegen


_INT32_MAX = 2 ** 31 - 1
_ROUND = np.float64(2.0 ** 52 + 2.0 ** 51)  # adding and subtracting it rounds to a whole number


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the low 32 bits of the unsigned integer `bits`."""
    if not (isinstance(bits, types.Integer) and not bits.signed):
        return None

    def codegen(context, builder, sig, args):
        low = builder.trunc(args[0], ir.IntType(32)) if bits.bitwidth > 32 else args[0]
        return builder.bitcast(low, ir.FloatType())
    return types.float32(bits), codegen


@njit(**_EXACT)
def _quantize(x, n_pairs, xq):
    """x (≥ I,) → xq (2·n_pairs,) int16 with x ≈ scale · xq, |xq| ≤ Q = min(32767, (2³¹ − 1) //
    (127 · 2·n_pairs)) so that no int32 sum of int8 × xq products overflows; returns scale.

    xq[i] = round(fl32(x[i] · fl32(Q / peak))), ties to even, from operations whose result no
    compiler choice can change: not `np.rint`, whose call numba marks fast-math and whose
    AVX-512 vector lowering before a conversion to integer came out as truncation in a kernel
    JIT-compiled here but as rounding in the same kernel loaded from numba's cache (int8
    outputs then depended on whether the kernels were just compiled). Compiled without
    fast-math and not inlined into the fast-math kernels, so nothing is reassociated or fused.
    """
    I = min(x.shape[0], 2 * n_pairs)
    q = np.float32(min(32767, _INT32_MAX // (127 * 2 * n_pairs)))
    bits = x.view(np.uint32)  # max |x| as the max of its bits without the sign: an integer
    top = np.uint32(0)        # reduction vectorizes, a float max does not (10x here)
    for i in range(I):
        top = max(top, bits[i] & np.uint32(0x7FFFFFFF))
    peak = _float_from_bits(top)
    if peak == 0:
        peak = np.float32(1.0)
    inv = np.float64(q / peak)
    for i in range(I):
        # the float64 product of two float32 is exact: its conversion is the one rounding of x·inv
        p = np.float64(np.float32(np.float64(x[i]) * inv))
        r = (p + _ROUND) - _ROUND  # nearest integer, ties to even (|p| < 2^51)
        xq[i] = np.int16(min(max(r, -q), q))  # r is whole: truncating or rounding conversions agree
    for i in range(I, 2 * n_pairs):
        xq[i] = 0
    return peak / q


def panel_product(P, scale, x, out, xq):
    """out += W x over panels P (int8 or bfloat16; see `weights.PanelWeights`)."""


@overload(panel_product, jit_options=_FAST)
def _panel_product(P, scale, x, out, xq):
    if P.dtype == types.int8:
        def product(P, scale, x, out, xq):
            xs = _quantize(x, P.shape[1], xq)
            _panel_int8(P, scale, xq, xs, out)
    else:
        def product(P, scale, x, out, xq):
            _panel_bf16(P, scale, x, out)
    return product


@njit(**_FAST)
def _product(W, P, scale, X, out, width, packed, xq):
    """out (width, O′) += X (width, I) @ Wᵀ: float32 W (O, I), or when `packed` its panels P
    with per-output scales (weights.PanelWeights; out padded to O′ = whole panels; xq an
    int16 scratch of ≥ I + 1)."""
    if packed:
        for b in range(width):
            panel_product(P, scale, X[b], out[b], xq)
    else:
        _matmul(W, X, out, width)


@njit(**_EXACT)
def _inverse_cdf(z, u, cum, floor):
    """`sampling.inverse_cdf`: the first class whose float64 running sum of exp(z − max) (less
    the probability floor) exceeds u · total."""
    m = z.max()
    total = 0.0
    for k in range(z.shape[0]):
        cum[k] = np.float64(np.exp(z[k] - m))
        total += cum[k]
    if floor > 0:
        cut = floor * total
        kept = 0.0
        for k in range(z.shape[0]):
            kept += max(cum[k] - cut, 0.0)
        if kept == 0.0:  # every class under the floor: the likeliest
            return np.argmax(z)
        for k in range(z.shape[0]):
            cum[k] = max(cum[k] - cut, 0.0)
    running = 0.0
    for k in range(z.shape[0]):
        running += cum[k]
        cum[k] = running
    target = np.float64(u) * running
    for k in range(z.shape[0]):
        if cum[k] > target:
            return k
    return z.shape[0] - 1


@njit(**_EXACT)
def _mu_law_bin(x, levels):
    """`sampling.mu_law_bins` of one value (float64, as there)."""
    mu = float(levels - 1)
    v = np.float64(x)
    y = np.sign(v) * np.log1p(mu * abs(v)) / math.log1p(mu)
    return np.int64((y + 1.0) / 2.0 * mu + 0.5)


@njit(**_EXACT)
def _sample(logits, u, spec, scaled, cum):
    """One lane's step: (next input class, value) by the rule of `sampling.sample` (spec: a
    SamplerSpec)."""
    if spec.kind == CATEGORICAL:
        if spec.temperature == 0.0:
            k = np.argmax(logits)
        else:
            t = np.float32(spec.temperature)
            for j in range(logits.shape[0]):
                scaled[j] = logits[j] / t
            if spec.top_k > 0:  # drop the classes below the k-th largest (ties kept)
                kth = np.sort(scaled)[scaled.shape[0] - spec.top_k]
                for j in range(scaled.shape[0]):
                    if scaled[j] < kth:
                        scaled[j] = -np.inf
            k = _inverse_cdf(scaled, u[0], cum, spec.floor)
        return k, np.float32(k)
    M = spec.mixtures
    if spec.temperature == 0.0:
        k = np.argmax(logits[:M])
        x = logits[M + k]
    else:
        k = _inverse_cdf(logits[:M], u[0], cum, 0.0)
        v = min(max(u[1], np.float32(U_CLIP)), np.float32(1.0 - U_CLIP))
        log_s = max(logits[2 * M + k], np.float32(spec.log_scale_min))
        x = logits[M + k] + np.float32(spec.temperature) * np.exp(log_s) * (np.log(v) - np.log1p(-v))
    x = min(max(x, np.float32(-1.0)), np.float32(1.0))
    return _mu_law_bin(x, spec.mu_law_levels), x


class Lanes(NamedTuple):
    """Where each lane of the fast path stands (arrays: numba takes the tuple as it is)."""
    item: np.ndarray     # (lanes,) int64 batch item of each lane
    length: np.ndarray   # (lanes,) int64 steps to generate (0 = padding lane)
    row: np.ndarray      # (lanes,) int64 index of the lane's item among its thread's items
    prev: np.ndarray     # (lanes,) int64 last input class
    ring: np.ndarray     # (lanes, Σ sizes, R) float32 per-layer history, layer l at rows
    ring_off: np.ndarray  # (L,) int64   ring_off[l] + (t & ring_mask[l])
    ring_mask: np.ndarray  # (L,) int64


class Prediction(NamedTuple):
    """The linear prediction around the WaveNet of a source-filter decoder's excitation network
    (generate/renderers/network.py), its state per lane: the step's input is embed[e[n−1]] + embed_p[µ(p[n])] + embed_s[µ(s[n−1])], with
    p[n] the linear prediction of s[n] from its last M samples; the sample drawn is the class
    of e[n] and the output s[n] = p[n] + e[n]. `on` False: a plain WaveNet (the arrays unused)."""
    on: bool
    embed_p: np.ndarray   # (C, R) float32
    embed_s: np.ndarray   # (C, R) float32
    decode: np.ndarray    # (C,) float32 µ-law value of each class (as `audio.mu_law_decode`)
    history: np.ndarray   # (lanes, M) float64 last M samples of s, oldest first
    s_prev: np.ndarray    # (lanes,) int64 µ-law class of s[n − 1]
    p: np.ndarray         # (lanes,) float64 p[n] of the step being sampled
    hop: int              # samples per frame (the LPC is interpolated within it)


def no_prediction(lanes: int = 1) -> Prediction:
    """The `Prediction` of a plain WaveNet."""
    z = np.zeros((1, 1), np.float32)
    return Prediction(False, z, z, np.zeros(1, np.float32), np.zeros((lanes, 1)), np.zeros(lanes, np.int64),
                      np.zeros(lanes), 1)


# ---------------------------------------------------------------- linear prediction
# The one coefficient interpolation and the one all-pole filter of the package's numba code
# (every renderer and the excitation network's fast step), tested against diffsptk's
# time-varying filters (tests/test_renderers.py); the PyTorch step uses `lpc.interpolate`,
# the same rule.

@njit(inline="always", **_EXACT)
def lerp(a0, a1, frac):
    """a0 moved towards a1 by frac ∈ [0, 1), by torch.lerp's rule (exact at both ends): the
    coefficient of sample f·hop + j is frame f's moved towards frame f + 1's by j / hop."""
    return a0 + frac * (a1 - a0) if frac < 0.5 else a1 - (a1 - a0) * (1.0 - frac)


@njit(**_EXACT)
def _predict(extra, history, frac):
    """p[n] = −Σₘ aₘ s[n − m], summed m = 1 … M in order (as `lpc.predict_next`), with aₘ
    interpolated (`lerp`) from the frame's (extra[:M]) towards the next frame's (extra[M:2M])
    by frac; clipped to [−1, 1]. float64 throughout, compiled exactly: both paths give the same p."""
    M = history.shape[0]
    acc = 0.0
    for m in range(M):
        acc += lerp(extra[m], extra[M + m], frac) * history[M - 1 - m]
    return min(max(-acc, -1.0), 1.0)


@njit(**_EXACT)
def all_pole(e, lpc, hop, start, history):  # pragma: no cover (compiled)
    """s = e / A(z) over samples start … start + n − 1 of the excitation e (n,) float64: lpc
    (F + 1, M) holds the coefficients of frames start // hop … (and the next one), each
    sample's interpolated by `lerp`; history (M,) the last M outputs, oldest first (updated in
    place, so consecutive blocks filter as one signal)."""
    n, M = e.size, history.size
    s = np.empty(n)
    f_first = start // hop
    for i in range(n):
        t = start + i
        f = t // hop - f_first
        frac = (t % hop) / hop
        acc = 0.0
        for m in range(1, M + 1):
            acc += lerp(lpc[f, m - 1], lpc[f + 1, m - 1], frac) * history[M - m]
        s[i] = e[i] - acc
        for m in range(M - 1):
            history[m] = history[m + 1]
        history[M - 1] = s[i]
    return s


@njit(**_EXACT)
def pulse_times(rate_hz, start, pos, phase, sample_rate):  # pragma: no cover (compiled)
    """The exact (fractional) times at which a phase advancing at rate_hz (n,) Hz per sample
    (samples start … start + n − 1) passes a whole cycle: WORLD's pulse locations. The phase
    is advanced from sample pos[0] (≥ start) to the last; phase[0] holds the fraction of a
    cycle before sample pos[0]. Both are updated in place, so consecutive calls over
    consecutive spans find the same times as one call over their union, bit for bit (one
    sample at a time, the same arithmetic). A cycle completing between samples t − 1 and t
    gives τ ∈ (t − 1, t]. Returns (times (P,) float64, the sample t of each (P,) int64)."""
    n = rate_hz.size
    times = np.empty(n)
    at = np.empty(n, np.int64)
    k = 0
    ph = phase[0]
    for t in range(pos[0], start + n):
        inc = rate_hz[t - start] / sample_rate
        if inc <= 0.0:
            continue
        nxt = ph + inc
        if nxt >= 1.0:
            nxt -= 1.0
            times[k] = t - nxt / inc  # the time the phase was whole
            at[k] = t
            k += 1
        ph = nxt
    phase[0] = ph
    pos[0] = start + n
    return times[:k].copy(), at[:k].copy()


@njit(**_EXACT)
def _observe(exc, lane, k, classes):
    """After drawing class k of e[n]: s[n] = clip(p[n] + e[n]) into the lane's history and
    s_prev; returns s[n] (float64)."""
    s = min(max(exc.p[lane] + np.float64(exc.decode[k]), -1.0), 1.0)
    M = exc.history.shape[1]
    for m in range(M - 1):
        exc.history[lane, m] = exc.history[lane, m + 1]
    exc.history[lane, M - 1] = s
    exc.s_prev[lane] = _mu_law_bin(s, classes)
    return s


class Outputs(NamedTuple):
    """A window of outputs: step t at column t − base."""
    classes: np.ndarray  # (B, W) int64
    values: np.ndarray   # (B, W) float32
    logits: np.ndarray   # (B, W, O) float32 when kept (else a (1, 1, 1) placeholder)


@njit(nogil=True, **_FAST)
def run_lanes(lane0, width, t0, n, w, p, packed, lanes, rows, hold, uniforms, spec, forced, use_forced,
              out, base, keep_logits, exc, extra):
    """Steps t0 … t0 + n − 1 of lanes lane0 … lane0 + width − 1 (width 1 or GROUP).

    w: StackWeights of numpy arrays; p: their PanelWeights, used for the mat-vecs when
    `packed` (reduced precision; the float32 `w` otherwise); lanes: `Lanes` (advanced in
    place); rows (I, r, L, G) gate conditioning of the thread's items, row j // hold for chunk
    step j; uniforms (B, n, U); spec: the SamplerSpec; forced (B, T) inputs when use_forced;
    out: `Outputs` of a window of steps starting at `base` (logits when keep_logits); exc: the
    `Prediction` state (advanced in place) when exc.on, with extra (I, r, 2M + 1) float64 the
    rows' LPC of the frame and the next and the sharpening factor (source_filter._Rows).
    """
    L, G, KR = w.conv.shape
    ring, ring_off, ring_mask, prev = lanes.ring, lanes.ring_off, lanes.ring_mask, lanes.prev
    lane_item, lane_len, lane_row = lanes.item, lanes.length, lanes.row
    R = w.embed.shape[1]
    K = KR // R
    H = G // 2
    S = w.skip.shape[0]
    O = w.head2.shape[0]
    f32 = np.float32
    x = np.empty((width, R), f32)
    xin = np.empty((width, KR), f32)
    # mat-vec outputs are whole panels when packed (the padding stays zero, never read)
    pad = lambda size: -(-size // PANEL) * PANEL if packed else size
    pre = np.zeros((width, pad(G)), f32)
    h = np.empty((width, H), f32)
    hall = np.empty((width, L * H), f32)
    rs = np.zeros((width, pad(R)), f32)
    skip = np.zeros((width, pad(S)), f32)
    z = np.zeros((width, pad(S)), f32)
    head = np.zeros((width, pad(O)), f32)
    logits = head[:, :O]
    xq = np.zeros(max(KR, L * H, S) + 1, np.int16)
    scaled = np.empty(O, f32)
    cum = np.empty(O, np.float64)
    for j in range(n):
        t = t0 + j
        active = 0
        for b in range(width):
            if t < lane_len[lane0 + b]:
                active += 1
        if active == 0:
            break
        row = j // hold
        for b in range(width):
            lane = lane0 + b
            c = forced[lane_item[lane], t] if use_forced else prev[lane]
            x[b, :] = w.embed[c]
            if exc.on:
                M = exc.history.shape[1]
                frac = (t % exc.hop) / exc.hop
                exc.p[lane] = _predict(extra[lane_row[lane], row], exc.history[lane], frac)
                pc = _mu_law_bin(exc.p[lane], O)
                for r in range(R):
                    x[b, r] = (x[b, r] + exc.embed_p[pc, r]) + exc.embed_s[exc.s_prev[lane], r]
        for l in range(L):
            d = w.dilations[l]
            off = ring_off[l]
            m = ring_mask[l]
            for b in range(width):
                lane = lane0 + b
                ring[lane, off + (t & m), :] = x[b]
                for k in range(K):
                    xin[b, k * R:(k + 1) * R] = ring[lane, off + ((t - (K - 1 - k) * d) & m)]
                pre[b, :G] = rows[lane_row[lane], row, l]
            _product(w.conv[l], p.conv[l], p.conv_scale[l], xin, pre, width, packed, xq)
            for b in range(width):
                for i in range(H):
                    h[b, i] = _tanh(pre[b, i]) * (_HALF + _HALF * _tanh(_HALF * pre[b, H + i]))
                hall[b, l * H:(l + 1) * H] = h[b]
            if l < L - 1:
                for b in range(width):
                    rs[b, :R] = w.res_bias[l]
                _product(w.res[l], p.res[l], p.res_scale[l], h, rs, width, packed, xq)
                for b in range(width):
                    for r in range(R):
                        x[b, r] = _SQRT_HALF * x[b, r] + rs[b, r]
        for b in range(width):
            skip[b, :S] = w.skip_bias
        _product(w.skip, p.skip, p.skip_scale, hall, skip, width, packed, xq)
        for b in range(width):
            for i in range(S):
                skip[b, i] = max(skip[b, i], f32(0.0))
            z[b, :S] = w.head1_bias
        _product(w.head1, p.head1, p.head1_scale, skip, z, width, packed, xq)
        for b in range(width):
            for i in range(S):
                z[b, i] = max(z[b, i], f32(0.0))
            logits[b, :] = w.head2_bias
        _product(w.head2, p.head2, p.head2_scale, z, head, width, packed, xq)
        if exc.on:  # pitch-dependent sharpening
            M = exc.history.shape[1]
            for b in range(width):
                beta = f32(extra[lane_row[lane0 + b], row, 2 * M])
                for o in range(O):
                    logits[b, o] = logits[b, o] * beta
        for b in range(width):
            lane = lane0 + b
            if t >= lane_len[lane]:
                continue
            item = lane_item[lane]
            if keep_logits:
                out.logits[item, t - base, :] = logits[b]
            if use_forced:
                continue
            k, v = _sample(logits[b], uniforms[item, j], spec, scaled, cum)
            if exc.on:
                v = f32(_observe(exc, lane, k, O))
            prev[lane] = k
            out.classes[item, t - base] = k
            out.values[item, t - base] = v
