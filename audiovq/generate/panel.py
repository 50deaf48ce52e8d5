"""The reduced-precision mat-vec of the fast path: out += scale ⊙ (W x) over int8 or bfloat16
panels (`weights.PanelWeights`), accumulated in float32.

Written as LLVM IR (a numba intrinsic) because numba has no vector types and LLVM does not
find this form itself: for each panel of PANEL outputs, PANEL / 16 float32 vectors of 16 lanes
stay in registers while the loop runs over the inputs, each step broadcasting x[i], widening
one contiguous row of PANEL weights to float32 and adding it in with fused multiply-adds —
no horizontal sums and no reloads of x per output, which is what bounds the float32 row-by-row
mat-vec (`fast._matvec`) at batch 1. Two accumulator sets (even and odd inputs) give the
multiply-adds room to overlap. LLVM lowers the 16-lane vectors to whatever the CPU has
(two AVX2 registers, four SSE ones), so the result does not depend on the instruction set
beyond float32 rounding.

bfloat16 is stored as the upper 16 bits of a float32 (uint16) and widened with a shift;
int8 is converted to float32 and the per-output scale applied once per output at the end.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .weights import PANEL

LANES = 16
VECTORS = PANEL // LANES


@intrinsic
def panel_matvec(typingctx, data, scale, x, out):
    """out[:n·PANEL] += scale[:n·PANEL] ⊙ (W x), W given as panels data (n, I, PANEL) of int8
    or uint16 (bfloat16 bits), all C-contiguous; x (I,) and out float32, contiguous."""
    contiguous = all(isinstance(a, types.Array) and a.layout == "C" for a in (data, scale, x, out))
    if not (contiguous and data.ndim == 3 and data.dtype in (types.int8, types.uint16)
            and scale.dtype == x.dtype == out.dtype == types.float32):
        return None

    def codegen(context, builder, sig, args):
        dty, sty, xty, oty = sig.args
        D = context.make_array(dty)(context, builder, args[0])
        S = context.make_array(sty)(context, builder, args[1])
        X = context.make_array(xty)(context, builder, args[2])
        Out = context.make_array(oty)(context, builder, args[3])
        panels, inputs = cgutils.unpack_tuple(builder, D.shape)[:2]
        i64, i32, f32 = ir.IntType(64), ir.IntType(32), ir.FloatType()
        vf = ir.VectorType(f32, LANES)
        vi32 = ir.VectorType(i32, LANES)
        velt = ir.VectorType(context.get_value_type(dty.dtype), LANES)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vf, [vf, vf, vf]),
                                             f"llvm.fma.v{LANES}f32")
        const = lambda v: ir.Constant(i64, v)
        zero = ir.Constant(vf, [0.0] * LANES)

        def vector_at(base, offset, vty):
            return builder.bitcast(builder.gep(base, [offset]), vty.as_pointer())

        def widen(w):
            if dty.dtype == types.uint16:  # bfloat16 bits → float32 bits
                return builder.bitcast(builder.shl(builder.zext(w, vi32), ir.Constant(vi32, [16] * LANES)), vf)
            return builder.sitofp(w, vf)

        def add_input(accs, start, i):
            """accs += W[panel, i, :] · x[i]"""
            xi = builder.load(builder.gep(X.data, [i]))
            xv = builder.insert_element(ir.Constant(vf, ir.Undefined), xi, ir.Constant(i32, 0))
            xv = builder.shuffle_vector(xv, ir.Constant(vf, ir.Undefined), ir.Constant(vi32, [0] * LANES))
            row = builder.add(start, builder.mul(i, const(PANEL)))
            for k, acc in enumerate(accs):
                w = builder.load(vector_at(D.data, builder.add(row, const(k * LANES)), velt), align=1)
                builder.store(builder.call(fma, [widen(w), xv, builder.load(acc)]), acc)

        with cgutils.for_range(builder, panels) as p:
            # allocas in the entry block; mem2reg turns them into registers
            even = [cgutils.alloca_once(builder, vf) for _ in range(VECTORS)]
            odd = [cgutils.alloca_once(builder, vf) for _ in range(VECTORS)]
            for acc in even + odd:
                builder.store(zero, acc)
            start = builder.mul(builder.mul(p.index, inputs), const(PANEL))
            with cgutils.for_range(builder, builder.udiv(inputs, const(2))) as pair:
                i = builder.mul(pair.index, const(2))
                add_input(even, start, i)
                add_input(odd, start, builder.add(i, const(1)))
            with builder.if_then(builder.icmp_unsigned("!=", builder.urem(inputs, const(2)), const(0))):
                add_input(even, start, builder.sub(inputs, const(1)))
            for k in range(VECTORS):
                o = builder.add(builder.mul(p.index, const(PANEL)), const(k * LANES))
                s = builder.load(vector_at(S.data, o, vf), align=1)
                dst = vector_at(Out.data, o, vf)
                acc = builder.fadd(builder.load(even[k]), builder.load(odd[k]))
                builder.store(builder.call(fma, [acc, s, builder.load(dst, align=1)]), dst, align=1)
        return context.get_dummy_value()

    return types.void(data, scale, x, out), codegen
