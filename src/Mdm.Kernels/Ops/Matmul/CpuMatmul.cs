using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Mdm.Kernels.Cpu;

public sealed partial class CpuBackend
{
    /// <summary>
    /// Matrix products through <see cref="CpuGemm"/>. BF16 operands are widened exactly (bits &lt;&lt; 16, SIMD) into pooled
    /// f32 buffers first, so the product is the f32 GEMM of the bf16 values. A bias is written into C first and the
    /// product accumulated onto it (beta = 1); a summed batch accumulates one batch after another. A BF16 C gets the
    /// f32 result (bias included) from a pooled buffer, rounded once to nearest even.
    /// </summary>
    protected internal override unsafe void Gemm(Tensor a, Tensor b, Tensor c, Tensor? bias, in MatmulDesc d)
    {
        LaunchLog.CountFlops(2.0 * d.Batch * d.M * d.N * d.K);
        if (c.DType == DType.F32) { GemmInto(a, b, Ptr(c), bias, d); return; }

        float[] wc = ArrayPool<float>.Shared.Rent((int)Math.Max(c.Numel, 1));
        try
        {
            fixed (float* pc = wc) GemmInto(a, b, pc, bias, d);
            int n = (int)c.Numel;
            ParallelRange(n, 1, (i0, i1) => BFloat16.FromFloat(wc.AsSpan(i0, i1 - i0), U16(c)[i0..i1]));
        }
        finally { ArrayPool<float>.Shared.Return(wc); }
    }

    static unsafe void GemmInto(Tensor a, Tensor b, float* c, Tensor? bias, in MatmulDesc d)
    {
        if (a.DType == DType.F32) { GemmF32(Ptr(a), Ptr(b), c, bias, d); return; }

        float[] wa = ArrayPool<float>.Shared.Rent((int)Math.Max(a.Numel, 1));
        float[] wb = ArrayPool<float>.Shared.Rent((int)Math.Max(b.Numel, 1));
        try
        {
            WidenBF16(a, wa);
            WidenBF16(b, wb);
            fixed (float* pa = wa, pb = wb) GemmF32(pa, pb, c, bias, d);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(wa);
            ArrayPool<float>.Shared.Return(wb);
        }
    }

    static unsafe void GemmF32(float* a, float* b, float* c, Tensor? bias, MatmulDesc d)
    {
        int outRows = d.OutBatch * d.M, n = d.N;
        float beta = 0f;
        if (bias is not null)
        {
            nint pc = (nint)c, pbias = (nint)Ptr(bias);
            ParallelRange(outRows, n, (r0, r1) =>
            {
                var row = new ReadOnlySpan<float>((float*)pbias, n);
                for (int r = r0; r < r1; r++) row.CopyTo(new Span<float>((float*)pc + (long)r * n, n));
            });
            beta = 1f;
        }
        if (!d.SumBatch)
        {
            CpuGemm.SgemmBatched(d.Batch, d.TransA, d.TransB, d.M, d.N, d.K, a, d.Lda, d.StrideA, b, d.Ldb, d.StrideB,
                c, d.Ldc, d.StrideC, 1f, beta);
            return;
        }
        if (d.Batch == 0 && bias is null) new Span<float>(c, outRows * n).Clear();
        for (int i = 0; i < d.Batch; i++)
            CpuGemm.Sgemm(d.TransA, d.TransB, d.M, d.N, d.K, a + i * d.StrideA, d.Lda, b + i * d.StrideB, d.Ldb, c, d.Ldc,
                1f, i == 0 ? beta : 1f);
    }

    /// <summary>bf16 bits → f32 (exact: the bits become the top half), vectorised, in parallel chunks.</summary>
    static void WidenBF16(Tensor t, float[] dst)
    {
        int n = (int)t.Numel;
        ParallelRange(n, 1, (i0, i1) => Widen(U16(t)[i0..i1], MemoryMarshal.Cast<float, uint>(dst.AsSpan(i0, i1 - i0))));
    }

    static void Widen(ReadOnlySpan<ushort> src, Span<uint> dst)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int w = Vector<ushort>.Count;
            for (; i + w <= src.Length; i += w)
            {
                Vector.Widen(new Vector<ushort>(src[i..]), out var lo, out var hi);
                Vector.ShiftLeft(lo, 16).CopyTo(dst[i..]);
                Vector.ShiftLeft(hi, 16).CopyTo(dst[(i + w / 2)..]);
            }
        }
        for (; i < src.Length; i++) dst[i] = (uint)src[i] << 16;
    }
}
