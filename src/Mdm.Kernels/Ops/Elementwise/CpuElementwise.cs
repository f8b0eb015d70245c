using System.Numerics.Tensors;

namespace Mdm.Kernels.Cpu;

public sealed partial class CpuBackend
{
    protected internal override void Fill(Tensor y, float value) => F32(y).Fill(value);
    protected internal override void Copy(Tensor x, Tensor y) => F32(x).CopyTo(F32(y));
    protected internal override void Scale(Tensor x, float alpha, Tensor y) => TensorPrimitives.Multiply(F32(x), alpha, F32(y));

    protected internal override void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y, in BroadcastPlan plan)
    {
        if (plan.IsElementwise) { BinaryRow(op, F32(a), F32(b), F32(y)); return; }
        // Walk the output in rows of the innermost axis; each row is a span or a scalar on each side.
        var p = plan;
        int row = p.D5, rows = (int)(y.Numel / row);
        Tensor ta = a, tb = b, ty = y;
        ParallelRange(rows, row, (r0, r1) =>
        {
            Span<float> sa = F32(ta), sb = F32(tb), sy = F32(ty);
            for (int r = r0; r < r1; r++)
            {
                p.Offsets(r * row, out int oa, out int ob);
                var dst = sy.Slice(r * row, row);
                if (p.A5 == 1 && p.B5 == 1) BinaryRow(op, sa.Slice(oa, row), sb.Slice(ob, row), dst);
                else if (p.A5 == 1) BinaryRowScalarB(op, sa.Slice(oa, row), sb[ob], dst);
                else if (p.B5 == 1) BinaryRowScalarA(op, sa[oa], sb.Slice(ob, row), dst);
                else dst.Fill(Apply(op, sa[oa], sb[ob]));
            }
        });
    }

    static float Apply(BinaryOp op, float a, float b) => op switch { BinaryOp.Add => a + b, BinaryOp.Sub => a - b, _ => a * b };

    static void BinaryRow(BinaryOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(a, b, y); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(a, b, y); break;
            default: TensorPrimitives.Multiply(a, b, y); break;
        }
    }

    static void BinaryRowScalarB(BinaryOp op, ReadOnlySpan<float> a, float b, Span<float> y)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(a, b, y); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(a, b, y); break;
            default: TensorPrimitives.Multiply(a, b, y); break;
        }
    }

    static void BinaryRowScalarA(BinaryOp op, float a, ReadOnlySpan<float> b, Span<float> y)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(b, a, y); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(a, b, y); break;
            default: TensorPrimitives.Multiply(b, a, y); break;
        }
    }

    protected internal override void BroadcastTo(Tensor x, Tensor y, in BroadcastPlan plan)
    {
        var p = plan;
        int row = p.D5, rows = (int)(y.Numel / row);
        ParallelRange(rows, row, (r0, r1) =>
        {
            Span<float> sx = F32(x), sy = F32(y);
            for (int r = r0; r < r1; r++)
            {
                p.Offsets(r * row, out int ox, out _);
                var dst = sy.Slice(r * row, row);
                if (p.A5 == 1) sx.Slice(ox, row).CopyTo(dst); else dst.Fill(sx[ox]);
            }
        });
    }

    protected internal override void SiluForward(Tensor x, Tensor y)
    {
        ParallelRange((int)x.Numel, 8, (i0, i1) =>
        {
            var sx = F32(x)[i0..i1];
            var sy = F32(y)[i0..i1];
            TensorPrimitives.Sigmoid(sx, sy);
            TensorPrimitives.Multiply(sx, sy, sy);
        });
    }

    // dx = dy * s * (1 + x * (1 - s)), s = sigmoid(x)
    protected internal override void SiluBackward(Tensor x, Tensor dy, Tensor dx)
    {
        ParallelRange((int)x.Numel, 16, (i0, i1) =>
        {
            var sx = F32(x)[i0..i1];
            var sg = F32(dy)[i0..i1];
            var sd = F32(dx)[i0..i1];
            float[] buf = System.Buffers.ArrayPool<float>.Shared.Rent(i1 - i0);
            try
            {
                var sig = buf.AsSpan(0, i1 - i0);
                TensorPrimitives.Sigmoid(sx, sig);
                for (int i = 0; i < sig.Length; i++)
                {
                    float si = sig[i];
                    sd[i] = sg[i] * si * (1f + sx[i] * (1f - si));
                }
            }
            finally { System.Buffers.ArrayPool<float>.Shared.Return(buf); }
        });
    }

    protected internal override void SumAxis(Tensor x, Tensor y, int outer, int reduce, int inner)
    {
        if (inner == 1)
        {
            ParallelRange(outer, reduce, (o0, o1) =>
            {
                Span<float> sx = F32(x), sy = F32(y);
                for (int o = o0; o < o1; o++) sy[o] = TensorPrimitives.Sum(sx.Slice(o * reduce, reduce));
            });
            return;
        }
        ParallelRange(outer, (long)reduce * inner, (o0, o1) =>
        {
            Span<float> sx = F32(x), sy = F32(y);
            for (int o = o0; o < o1; o++)
            {
                var dst = sy.Slice(o * inner, inner);
                dst.Clear();
                for (int r = 0; r < reduce; r++) TensorPrimitives.Add(dst, sx.Slice((o * reduce + r) * inner, inner), dst);
            }
        });
    }

    protected internal override void AddWidened(Tensor a, Tensor b, Tensor y)
    {
        bool bf16B = b.DType == DType.BF16;   // then y is BF16 too
        ParallelRange((int)y.Numel, 4, (i0, i1) =>
        {
            ReadOnlySpan<ushort> sa = U16(a)[i0..i1];
            if (bf16B)
            {
                ReadOnlySpan<ushort> sb = U16(b)[i0..i1];
                var sy = U16(y)[i0..i1];
                for (int i = 0; i < sy.Length; i++) sy[i] = BFloat16.FromFloat(BFloat16.ToFloat(sa[i]) + BFloat16.ToFloat(sb[i]));
            }
            else
            {
                ReadOnlySpan<float> sb = F32(b)[i0..i1];
                var sy = F32(y)[i0..i1];
                for (int i = 0; i < sy.Length; i++) sy[i] = BFloat16.ToFloat(sa[i]) + sb[i];
            }
        });
    }

    protected internal override void ConvertToBF16(Tensor x, Tensor y) => BFloat16.FromFloat(F32(x), U16(y));
    protected internal override void ConvertToF32(Tensor x, Tensor y) => BFloat16.ToFloat(U16(x), F32(y));

    protected internal override void RandomUniform(Tensor y, ulong seed, ulong subsequence, float lo, float hi)
    {
        float range = hi - lo;
        ParallelRange((int)((y.Numel + 3) / 4), 64, (b0, b1) =>
        {
            var sy = F32(y);
            for (int blk = b0; blk < b1; blk++)
            {
                Philox.Words(seed, subsequence, (ulong)blk, out uint w0, out uint w1, out uint w2, out uint w3);
                int i = blk * 4;
                sy[i] = lo + range * (1f - Philox.ToUniform(w0));
                if (i + 1 < sy.Length) sy[i + 1] = lo + range * (1f - Philox.ToUniform(w1));
                if (i + 2 < sy.Length) sy[i + 2] = lo + range * (1f - Philox.ToUniform(w2));
                if (i + 3 < sy.Length) sy[i + 3] = lo + range * (1f - Philox.ToUniform(w3));
            }
        });
    }

    protected internal override void RandomNormal(Tensor y, ulong seed, ulong subsequence, float mean, float std, ulong firstBlock)
    {
        ParallelRange((int)((y.Numel + 3) / 4), 128, (b0, b1) =>
        {
            var sy = F32(y);
            for (int blk = b0; blk < b1; blk++)
            {
                Philox.Words(seed, subsequence, firstBlock + (ulong)blk, out uint w0, out uint w1, out uint w2, out uint w3);
                Philox.ToNormal(w0, w1, out float z0, out float z1);
                Philox.ToNormal(w2, w3, out float z2, out float z3);
                int i = blk * 4;
                sy[i] = mean + std * z0;
                if (i + 1 < sy.Length) sy[i + 1] = mean + std * z1;
                if (i + 2 < sy.Length) sy[i + 2] = mean + std * z2;
                if (i + 3 < sy.Length) sy[i + 3] = mean + std * z3;
            }
        });
    }
}
