using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace Mdm.Kernels.Cpu;

// Shape family on the CPU: TensorPrimitives on contiguous rows, Vector<float> for GELU (same constants as Erf32),
// ParallelRange over rows/planes.
public sealed partial class CpuBackend
{
    // ---- GELU ---------------------------------------------------------------------------------------------------
    protected internal override void GeluForward(Tensor x, Tensor y)
    {
        if (x.DType == DType.F32) { ParallelRange((int)x.Numel, 24, (i0, i1) => GeluSpan(F32(x)[i0..i1], default, F32(y)[i0..i1], backward: false)); return; }
        // BF16: each chunk widened into a pooled buffer, GELU in f32 there, rounded into y
        ParallelRange((int)x.Numel, 24, (i0, i1) =>
        {
            var buffer = ArrayPool<float>.Shared.Rent(i1 - i0);
            var wide = Widened(x, i0, i1 - i0, buffer);
            GeluSpan(wide, default, wide, backward: false);
            BFloat16.FromFloat(wide, U16(y)[i0..i1]);
            ArrayPool<float>.Shared.Return(buffer);
        });
    }

    protected internal override void GeluBackward(Tensor x, Tensor dy, Tensor dx)
    {
        if (x.DType == DType.F32) { ParallelRange((int)x.Numel, 32, (i0, i1) => GeluSpan(F32(x)[i0..i1], F32(dy)[i0..i1], F32(dx)[i0..i1], backward: true)); return; }
        ParallelRange((int)x.Numel, 32, (i0, i1) =>
        {
            var buffer = ArrayPool<float>.Shared.Rent(i1 - i0);
            GeluSpan(Widened(x, i0, i1 - i0, buffer), F32(dy)[i0..i1], F32(dx)[i0..i1], backward: true);
            ArrayPool<float>.Shared.Return(buffer);
        });
    }

    /// <summary>Forward: y = x·Φ(x). Backward: y = dy·(Φ(x) + x·φ(x)). Vector&lt;float&gt; body, scalar Erf32 tail.</summary>
    static void GeluSpan(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> y, bool backward)
    {
        int n = x.Length, w = Vector<float>.Count, i = 0;
        for (; i + w <= n; i += w)
        {
            var v = new Vector<float>(x[i..]);
            var cdf = NormalCdf(v);
            if (!backward) { (v * cdf).CopyTo(y[i..]); continue; }
            var e = Vector.Exp(new Vector<float>(-0.5f) * v * v);
            var pdfTerm = Vector.ConditionalSelect(Vector.Equals(e, Vector<float>.Zero), Vector<float>.Zero, v * e * new Vector<float>(Erf32.InvSqrt2Pi));
            (new Vector<float>(dy[i..]) * (cdf + pdfTerm)).CopyTo(y[i..]);
        }
        for (; i < n; i++) y[i] = backward ? dy[i] * Erf32.GeluGrad(x[i]) : Erf32.Gelu(x[i]);
    }

    /// <summary>
    /// Erf32.NormalCdf lane by lane: both branches computed, then selected. The polynomials use Estrin's scheme with
    /// multiply-adds (fused where the hardware has FMA), so the dependency chain is short; results differ from the
    /// scalar Horner form only by rounding.
    /// </summary>
    static Vector<float> NormalCdf(Vector<float> x)
    {
        var half = new Vector<float>(0.5f);
        var z = x * new Vector<float>(Erf32.InvSqrt2);
        var a = Vector.Abs(z);
        // |z| < 1: ½ + ½·z·P(z²)
        var s = z * z;
        var s2 = s * s;
        var p01 = Mad(new Vector<float>(Erf32.P1), s, new Vector<float>(Erf32.P0));
        var p23 = Mad(new Vector<float>(Erf32.P3), s, new Vector<float>(Erf32.P2));
        var p45 = Mad(new Vector<float>(Erf32.P5), s, new Vector<float>(Erf32.P4));
        var p = Mad(Mad(p45, s2, p23), s2, p01);
        var small = Mad(half, z * p, half);
        if (Vector.LessThanAll(a, new Vector<float>(Erf32.TailStart))) return small;   // common for activations: skip the tail
        // |z| >= 1: t = ½·erfc(|z|) = ½·exp(Q(u) − z²), 0 from |z| >= 4
        var ac = Vector.Min(a, new Vector<float>(Erf32.TailEnd));
        var u = (ac - new Vector<float>(Erf32.TailMid)) * new Vector<float>(Erf32.TailInvHalf);
        var u2 = u * u;
        var u4 = u2 * u2;
        var q01 = Mad(new Vector<float>(Erf32.Q1), u, new Vector<float>(Erf32.Q0));
        var q23 = Mad(new Vector<float>(Erf32.Q3), u, new Vector<float>(Erf32.Q2));
        var q45 = Mad(new Vector<float>(Erf32.Q5), u, new Vector<float>(Erf32.Q4));
        var q67 = Mad(new Vector<float>(Erf32.Q7), u, new Vector<float>(Erf32.Q6));
        var q03 = Mad(q23, u2, q01);
        var q47 = Mad(q67, u2, q45);
        var q = Mad(Mad(new Vector<float>(Erf32.Q8), u4, q47), u4, q03);
        var t = half * Vector.Exp(q - ac * ac);
        t = Vector.ConditionalSelect(Vector.GreaterThanOrEqual(a, new Vector<float>(Erf32.TailEnd)), Vector<float>.Zero, t);
        var tail = Vector.ConditionalSelect(Vector.LessThan(z, Vector<float>.Zero), t, Vector<float>.One - t);
        return Vector.ConditionalSelect(Vector.LessThan(a, new Vector<float>(Erf32.TailStart)), small, tail);
    }

    static Vector<float> Mad(Vector<float> a, Vector<float> b, Vector<float> c) => Vector.MultiplyAddEstimate(a, b, c);

    // ---- FiLM scale-shift ---------------------------------------------------------------------------------------
    protected internal override void ScaleShiftForward(Tensor x, Tensor a, Tensor b, Tensor y, int rows, int inner) =>
        ParallelRange(rows, inner, (r0, r1) =>
        {
            Span<float> sx = F32(x), sa = F32(a), sb = F32(b), sy = F32(y);
            for (int r = r0; r < r1; r++)
            {
                var dst = sy.Slice(r * inner, inner);
                TensorPrimitives.Multiply(sx.Slice(r * inner, inner), 1f + sa[r], dst);
                TensorPrimitives.Add(dst, sb[r], dst);
            }
        });

    protected internal override void ScaleShiftBackward(Tensor x, Tensor a, Tensor dy, Tensor dx, Tensor da, Tensor db, int rows, int inner) =>
        ParallelRange(rows, 3L * inner, (r0, r1) =>
        {
            Span<float> sx = F32(x), sa = F32(a), sg = F32(dy), sdx = F32(dx), sda = F32(da), sdb = F32(db);
            for (int r = r0; r < r1; r++)
            {
                var g = sg.Slice(r * inner, inner);
                var xr = sx.Slice(r * inner, inner);
                sda[r] = TensorPrimitives.Dot(g, xr);
                sdb[r] = TensorPrimitives.Sum(g);
                TensorPrimitives.Multiply(g, 1f + sa[r], sdx.Slice(r * inner, inner));
            }
        });

    // ---- nearest ×2 upsample ------------------------------------------------------------------------------------
    protected internal override void UpsampleNearest2x(Tensor x, Tensor y, int planes, int h, int w) =>
        ParallelRange(planes * h, 4L * w, (r0, r1) =>
        {
            Span<float> sx = F32(x), sy = F32(y);
            for (int r = r0; r < r1; r++)   // r = plane·h + i: input row r feeds output rows 2r and 2r+1
            {
                var src = sx.Slice(r * w, w);
                var dst = sy.Slice(2 * r * 2 * w, 2 * w);
                for (int j = 0; j < w; j++) { float v = src[j]; dst[2 * j] = v; dst[2 * j + 1] = v; }
                dst.CopyTo(sy.Slice((2 * r + 1) * 2 * w, 2 * w));
            }
        });

    protected internal override void UpsampleNearest2xBackward(Tensor dy, Tensor dx, int planes, int h, int w) =>
        ParallelRange(planes * h, 4L * w, (r0, r1) =>
        {
            Span<float> sg = F32(dy), sd = F32(dx);
            float[] buf = System.Buffers.ArrayPool<float>.Shared.Rent(2 * w);
            try
            {
                var pair = buf.AsSpan(0, 2 * w);
                for (int r = r0; r < r1; r++)
                {
                    // sum the two dy rows, then each adjacent pair of columns
                    TensorPrimitives.Add(sg.Slice(2 * r * 2 * w, 2 * w), sg.Slice((2 * r + 1) * 2 * w, 2 * w), pair);
                    var dst = sd.Slice(r * w, w);
                    for (int j = 0; j < w; j++) dst[j] = pair[2 * j] + pair[2 * j + 1];
                }
            }
            finally { System.Buffers.ArrayPool<float>.Shared.Return(buf); }
        });

    // ---- average pooling --------------------------------------------------------------------------------------
    protected internal override void AvgPool2d(Tensor x, Tensor y, int planes, int oh, int ow, int s) =>
        ParallelRange(planes * oh, (long)s * s * ow, (r0, r1) =>
        {
            Span<float> sx = F32(x), sy = F32(y);
            int w = ow * s;
            float inv = 1f / (s * s);
            float[] buf = System.Buffers.ArrayPool<float>.Shared.Rent(w);
            try
            {
                var acc = buf.AsSpan(0, w);
                for (int r = r0; r < r1; r++)   // r = plane·oh + i: input rows r·s .. r·s+s-1
                {
                    sx.Slice(r * s * w, w).CopyTo(acc);
                    for (int k = 1; k < s; k++) TensorPrimitives.Add(acc, sx.Slice((r * s + k) * w, w), acc);
                    var dst = sy.Slice(r * ow, ow);
                    for (int j = 0; j < ow; j++)
                    {
                        float sum = 0f;
                        for (int k = 0; k < s; k++) sum += acc[j * s + k];
                        dst[j] = sum * inv;
                    }
                }
            }
            finally { System.Buffers.ArrayPool<float>.Shared.Return(buf); }
        });

    protected internal override void AvgPool2dBackward(Tensor dy, Tensor dx, int planes, int oh, int ow, int s) =>
        ParallelRange(planes * oh, (long)s * s * ow, (r0, r1) =>
        {
            Span<float> sg = F32(dy), sd = F32(dx);
            int w = ow * s;
            float inv = 1f / (s * s);
            for (int r = r0; r < r1; r++)
            {
                var first = sd.Slice(r * s * w, w);
                var src = sg.Slice(r * ow, ow);
                for (int j = 0; j < ow; j++) first.Slice(j * s, s).Fill(src[j] * inv);
                for (int k = 1; k < s; k++) first.CopyTo(sd.Slice((r * s + k) * w, w));
            }
        });

    // ---- concat / split / permute -------------------------------------------------------------------------------
    protected internal override void CopyBlocks(Tensor src, int srcStride, int srcOffset, Tensor dst, int dstStride, int dstOffset, int outer, int chunk)
    {
        if (src.DType == DType.BF16) CopyBlocks(U16, src, srcStride, srcOffset, dst, dstStride, dstOffset, outer, chunk);
        else CopyBlocks(F32, src, srcStride, srcOffset, dst, dstStride, dstOffset, outer, chunk);
    }

    static void CopyBlocks<T>(SpanOf<T> span, Tensor src, int srcStride, int srcOffset, Tensor dst, int dstStride, int dstOffset, int outer, int chunk) =>
        ParallelRange(outer, chunk, (o0, o1) =>
        {
            Span<T> ss = span(src), sd = span(dst);
            for (int o = o0; o < o1; o++)
                ss.Slice(o * srcStride + srcOffset, chunk).CopyTo(sd.Slice(o * dstStride + dstOffset, chunk));
        });

    /// <summary>A tensor's elements as a span of its stored type (F32 or U16 for BF16).</summary>
    delegate Span<T> SpanOf<T>(Tensor t);

    protected internal override void Permute(Tensor x, Tensor y, in PermutePlan plan)
    {
        if (x.DType == DType.BF16) Permute(U16, x, y, plan);
        else Permute(F32, x, y, plan);
    }

    static void Permute<T>(SpanOf<T> span, Tensor x, Tensor y, in PermutePlan plan)
    {
        var p = plan;
        if (p.Rank <= 1) { span(x).CopyTo(span(y)); return; }   // identity up to size-1 axes
        int row = p.D5, rows = (int)(y.Numel / row);
        ParallelRange(rows, row, (r0, r1) =>
        {
            Span<T> sx = span(x), sy = span(y);
            for (int r = r0; r < r1; r++)
            {
                int off = p.Offset(r * row);
                var dst = sy.Slice(r * row, row);
                if (p.S5 == 1) sx.Slice(off, row).CopyTo(dst);   // innermost axis stays contiguous: copy the whole row
                else for (int j = 0, o = off; j < row; j++, o += p.S5) dst[j] = sx[o];
            }
        });
    }
}
