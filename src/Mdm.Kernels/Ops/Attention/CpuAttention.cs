using System.Buffers;
using System.Numerics.Tensors;

namespace Mdm.Kernels.Cpu;

/// <summary>
/// Attention on the CPU: never B·H·N×N at once. Work items are (b·h, block of query rows) in the forward and in the
/// dq pass, and (b·h, block of key rows) in the dk/dv pass; each item holds a block × all-keys (or all-queries) score
/// buffer from the array pool, products by <see cref="CpuGemm"/>, softmax by TensorPrimitives on contiguous rows.
/// q, k, v, dO are first transposed per head ([D, N], temporaries the size of the inputs) so that every product runs
/// along N rather than along the short head dimension. BF16 q, k, v are widened by that transposition, and into f32
/// temporaries where a pass reads their rows directly. A BF16 o (autocast's bf16 output) is written block by block:
/// each item's P·V lands in its pooled buffer and is rounded into o from there.
/// </summary>
public sealed partial class CpuBackend
{
    /// <summary>Rows per work item: up to 64, fewer for long rows so one buffer stays near 256 KB.</summary>
    static int AttentionBlock(int rowLength) => Math.Clamp(65536 / Math.Max(rowLength, 1), 4, 64);

    /// <summary>0 for an attended key, −∞ for a masked one ([B, Nk]); null without a mask.</summary>
    static float[]? AttentionMaskBias(Tensor? mask)
    {
        if (mask is null) return null;
        var m = F32(mask);
        var bias = new float[m.Length];
        for (int i = 0; i < m.Length; i++) bias[i] = m[i] == 0f ? float.NegativeInfinity : 0f;
        return bias;
    }

    /// <summary>
    /// xᵀ per head: x [BH, N, D] → [BH, D, N], so every product below runs on rows of length N (long axpys in the NN
    /// form, long dots in the NT form) instead of rows of length D. A BF16 x is widened on the way (the result is F32).
    /// </summary>
    unsafe Tensor TransposeHeads(Tensor x)
    {
        int bh = x.Dim(0) * x.Dim(1), n = x.Dim(2), d = x.Dim(3);
        var t = Empty(x.Dim(0), x.Dim(1), d, n);
        bool bf16 = x.DType == DType.BF16;
        nint px = bf16 ? (nint)PtrU16(x) : (nint)Ptr(x), pt = (nint)Ptr(t);
        ParallelRange(bh, (long)n * d, (g0, g1) =>
        {
            for (int g = g0; g < g1; g++)
            {
                float* dst = (float*)pt + (long)g * n * d;
                if (bf16)
                {
                    ushort* src = (ushort*)px + (long)g * n * d;
                    for (int j = 0; j < n; j++)
                        for (int c = 0; c < d; c++) dst[(long)c * n + j] = BFloat16.ToFloat(src[(long)j * d + c]);
                }
                else
                {
                    float* src = (float*)px + (long)g * n * d;
                    for (int j = 0; j < n; j++)
                        for (int c = 0; c < d; c++) dst[(long)c * n + j] = src[(long)j * d + c];
                }
            }
        });
        return t;
    }

    /// <summary>Address of element 0 of a BF16 tensor (storage is pinned, as for <see cref="Ptr"/>).</summary>
    static unsafe ushort* PtrU16(Tensor t) =>
        (ushort*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(((CpuStorage)t.Storage).Data)) + t.Offset;

    /// <summary>An f32 copy of a BF16 attention operand, for the passes that read its rows as they are; null for F32.</summary>
    Tensor? WidenedRows(Tensor x)
    {
        if (x.DType != DType.BF16) return null;
        var y = Empty(x.Shape);
        ConvertToF32(x, y);
        return y;
    }

    protected internal override unsafe void AttentionForward(Tensor q, Tensor k, Tensor v, Tensor? mask, Tensor o, Tensor lse, float scale)
    {
        int heads = q.Dim(1), bh = q.Dim(0) * heads, nq = q.Dim(2), nk = k.Dim(2), d = q.Dim(3);
        int block = AttentionBlock(nk), blocks = (nq + block - 1) / block;
        LaunchLog.CountFlops(4.0 * bh * nq * nk * d);
        var bias = AttentionMaskBias(mask);
        using var kt = TransposeHeads(k);
        using var vt = TransposeHeads(v);
        using var qWide = WidenedRows(q);
        bool bf16Out = o.DType == DType.BF16;
        nint pq = (nint)Ptr(qWide ?? q), pkt = (nint)Ptr(kt), pvt = (nint)Ptr(vt), pl = (nint)Ptr(lse);
        nint po = bf16Out ? (nint)PtrU16(o) : (nint)Ptr(o);
        ParallelRange(bh * blocks, 2L * block * nk * d, (t0, t1) =>
        {
            var buf = ArrayPool<float>.Shared.Rent(block * nk + (bf16Out ? block * d : 0));
            try
            {
                fixed (float* s = buf)
                    for (int item = t0; item < t1; item++)
                    {
                        int g = item / blocks, i0 = (item - g * blocks) * block, m = Math.Min(block, nq - i0);
                        long qOff = ((long)g * nq + i0) * d, kOff = (long)g * nk * d;
                        // S = scale·Q_blk·Kᵀ  [m × nk]
                        CpuGemm.Sgemm(false, false, m, nk, d, (float*)pq + qOff, d, (float*)pkt + kOff, nk, s, nk, alpha: scale);
                        var lrow = new Span<float>((float*)pl + (long)g * nq + i0, m);
                        for (int r = 0; r < m; r++)
                        {
                            var row = new Span<float>(s + (long)r * nk, nk);
                            if (bias is not null) TensorPrimitives.Add(row, bias.AsSpan((g / heads) * nk, nk), row);
                            float max = TensorPrimitives.Max(row);
                            if (float.IsNegativeInfinity(max)) { row.Clear(); lrow[r] = float.PositiveInfinity; continue; }   // all keys masked
                            TensorPrimitives.Subtract(row, max, row);
                            TensorPrimitives.Exp(row, row);
                            float sum = TensorPrimitives.Sum(row);
                            TensorPrimitives.Multiply(row, 1f / sum, row);
                            lrow[r] = max + MathF.Log(sum);
                        }
                        // O_blk = P·V = P·(Vᵀ)ᵀ  [m × d], dots of length nk; a BF16 o rounded from the block buffer
                        if (!bf16Out) { CpuGemm.Sgemm(false, true, m, d, nk, s, nk, (float*)pvt + kOff, nk, (float*)po + qOff, d); continue; }
                        float* ob = s + (long)block * nk;
                        CpuGemm.Sgemm(false, true, m, d, nk, s, nk, (float*)pvt + kOff, nk, ob, d);
                        ushort* dst = (ushort*)po + qOff;
                        for (long e = 0; e < (long)m * d; e++) dst[e] = BFloat16.FromFloat(ob[e]);
                    }
            }
            finally { ArrayPool<float>.Shared.Return(buf); }
        });
    }

    protected internal override unsafe void AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, Tensor dO, Tensor? mask,
        Tensor dq, Tensor dk, Tensor dv, float scale)
    {
        int heads = q.Dim(1), bh = q.Dim(0) * heads, nq = q.Dim(2), nk = k.Dim(2), d = q.Dim(3);
        LaunchLog.CountFlops(10.0 * bh * nq * nk * d);   // S again, dP, dV, dQ, dK
        var bias = AttentionMaskBias(mask);
        using var qt = TransposeHeads(q);
        using var kt = TransposeHeads(k);
        using var vt = TransposeHeads(v);
        using var dot = TransposeHeads(dO);
        using var qWide = WidenedRows(q);
        using var kWide = WidenedRows(k);
        using var vWide = WidenedRows(v);
        nint pqt = (nint)Ptr(qt), pkt = (nint)Ptr(kt), pvt = (nint)Ptr(vt), pdot = (nint)Ptr(dot);
        nint pq = (nint)Ptr(qWide ?? q), pk = (nint)Ptr(kWide ?? k), pv = (nint)Ptr(vWide ?? v), po = o.DType == DType.BF16 ? (nint)PtrU16(o) : (nint)Ptr(o), pl = (nint)Ptr(lse), pdo = (nint)Ptr(dO);
        nint pdq = (nint)Ptr(dq), pdk = (nint)Ptr(dk), pdv = (nint)Ptr(dv);

        // Δ_i = Σ_d dO_id·O_id, one per query row (a BF16 O widened as it is read).
        var delta = new float[bh * nq];
        bool bf16O = o.DType == DType.BF16;
        ParallelRange(bh * nq, d, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                var dRow = new ReadOnlySpan<float>((float*)pdo + (long)r * d, d);
                if (!bf16O) { delta[r] = TensorPrimitives.Dot(dRow, new ReadOnlySpan<float>((float*)po + (long)r * d, d)); continue; }
                ushort* oRow = (ushort*)po + (long)r * d;
                float sum = 0f;
                for (int c = 0; c < d; c++) sum += dRow[c] * BFloat16.ToFloat(oRow[c]);
                delta[r] = sum;
            }
        });

        // Pass 1, per (b·h, query block): P = exp(S − L), dS = P∘(dO·Vᵀ − Δ), dQ = scale·dS·K.
        int qb = AttentionBlock(nk), qBlocks = (nq + qb - 1) / qb;
        ParallelRange(bh * qBlocks, 3L * qb * nk * d, (t0, t1) =>
        {
            var buf = ArrayPool<float>.Shared.Rent(2 * qb * nk);
            try
            {
                fixed (float* p = buf)
                    for (int item = t0; item < t1; item++)
                    {
                        int g = item / qBlocks, i0 = (item - g * qBlocks) * qb, m = Math.Min(qb, nq - i0);
                        long qOff = ((long)g * nq + i0) * d, kOff = (long)g * nk * d;
                        float* ds = p + (long)qb * nk;
                        CpuGemm.Sgemm(false, false, m, nk, d, (float*)pq + qOff, d, (float*)pkt + kOff, nk, p, nk, alpha: scale);
                        CpuGemm.Sgemm(false, false, m, nk, d, (float*)pdo + qOff, d, (float*)pvt + kOff, nk, ds, nk);
                        for (int r = 0; r < m; r++)
                        {
                            var prow = new Span<float>(p + (long)r * nk, nk);
                            var dsrow = new Span<float>(ds + (long)r * nk, nk);
                            if (bias is not null) TensorPrimitives.Add(prow, bias.AsSpan((g / heads) * nk, nk), prow);
                            TensorPrimitives.Subtract(prow, ((float*)pl)[(long)g * nq + i0 + r], prow);   // L = +∞ (no keys) gives P = 0
                            TensorPrimitives.Exp(prow, prow);
                            TensorPrimitives.Subtract(dsrow, delta[g * nq + i0 + r], dsrow);
                            TensorPrimitives.Multiply(dsrow, prow, dsrow);
                        }
                        CpuGemm.Sgemm(false, true, m, d, nk, ds, nk, (float*)pkt + kOff, nk, (float*)pdq + qOff, d, alpha: scale);
                    }
            }
            finally { ArrayPool<float>.Shared.Return(buf); }
        });

        // Pass 2, per (b·h, key block), on the transposed scores: Pᵀ = exp(Sᵀ − L), dSᵀ = Pᵀ∘(V·dOᵀ − Δ),
        // dV = Pᵀ·dO, dK = scale·dSᵀ·Q.
        int kb = AttentionBlock(nq), kBlocks = (nk + kb - 1) / kb;
        ParallelRange(bh * kBlocks, 4L * kb * nq * d, (t0, t1) =>
        {
            var buf = ArrayPool<float>.Shared.Rent(2 * kb * nq);
            try
            {
                fixed (float* pt = buf)
                    for (int item = t0; item < t1; item++)
                    {
                        int g = item / kBlocks, j0 = (item - g * kBlocks) * kb, n = Math.Min(kb, nk - j0);
                        long qOff = (long)g * nq * d, kOff = ((long)g * nk + j0) * d;
                        float* dst = pt + (long)kb * nq;
                        var lvec = new ReadOnlySpan<float>((float*)pl + (long)g * nq, nq);
                        var dvec = delta.AsSpan(g * nq, nq);
                        CpuGemm.Sgemm(false, false, n, nq, d, (float*)pk + kOff, d, (float*)pqt + qOff, nq, pt, nq, alpha: scale);
                        CpuGemm.Sgemm(false, false, n, nq, d, (float*)pv + kOff, d, (float*)pdot + qOff, nq, dst, nq);
                        for (int c = 0; c < n; c++)
                        {
                            var prow = new Span<float>(pt + (long)c * nq, nq);
                            var dsrow = new Span<float>(dst + (long)c * nq, nq);
                            if (bias is not null && bias[(g / heads) * nk + j0 + c] != 0f) { prow.Clear(); dsrow.Clear(); continue; }   // masked key
                            TensorPrimitives.Subtract(prow, lvec, prow);
                            TensorPrimitives.Exp(prow, prow);
                            TensorPrimitives.Subtract(dsrow, dvec, dsrow);
                            TensorPrimitives.Multiply(dsrow, prow, dsrow);
                        }
                        CpuGemm.Sgemm(false, true, n, d, nq, pt, nq, (float*)pdot + qOff, nq, (float*)pdv + kOff, d);
                        CpuGemm.Sgemm(false, true, n, d, nq, dst, nq, (float*)pqt + qOff, nq, (float*)pdk + kOff, d, alpha: scale);
                    }
            }
            finally { ArrayPool<float>.Shared.Return(buf); }
        });
    }

    protected internal override void Rotary(Tensor x, Tensor y, float theta, int offset, bool inverse)
    {
        int n = x.Dim(2), d = x.Dim(3), half = d / 2, rows = (int)(x.Numel / d);
        // cos/sin of θ_i = (offset + pos)·theta^(−2i/D), in double, once per call ([N × D/2]).
        var cos = new float[n * half];
        var sin = new float[n * half];
        for (int i = 0; i < half; i++)
        {
            double invFreq = Math.Pow(theta, -2.0 * i / d);
            for (int p = 0; p < n; p++)
            {
                double a = (offset + (double)p) * invFreq;
                cos[p * half + i] = (float)Math.Cos(a);
                sin[p * half + i] = (float)(inverse ? -Math.Sin(a) : Math.Sin(a));
            }
        }
        Tensor tx = x, ty = y;
        ParallelRange(rows, 3L * d, (r0, r1) =>
        {
            var tmp = ArrayPool<float>.Shared.Rent(2 * d);
            try
            {
                Span<float> sx = F32(tx), sy = F32(ty);
                var x1 = tmp.AsSpan(0, half); var x2 = tmp.AsSpan(half, half); var t = tmp.AsSpan(d, half);
                for (int r = r0; r < r1; r++)
                {
                    int p = r % n;
                    ReadOnlySpan<float> c = cos.AsSpan(p * half, half), s = sin.AsSpan(p * half, half);
                    sx.Slice(r * d, half).CopyTo(x1);            // copies first, so y may be x
                    sx.Slice(r * d + half, half).CopyTo(x2);
                    var y1 = sy.Slice(r * d, half); var y2 = sy.Slice(r * d + half, half);
                    TensorPrimitives.Multiply(x2, s, t);           // y1 = x1·cos − x2·sin
                    TensorPrimitives.Multiply(x1, c, y1);
                    TensorPrimitives.Subtract(y1, t, y1);
                    TensorPrimitives.Multiply(x1, s, t);           // y2 = x2·cos + x1·sin
                    TensorPrimitives.MultiplyAdd(x2, c, t, y2);
                }
            }
            finally { ArrayPool<float>.Shared.Return(tmp); }
        });
    }
}
