using System.Buffers;
using System.Numerics.Tensors;

namespace Mdm.Kernels.Cpu;

/// <summary>
/// Flash-style attention on the CPU: scores exist one block at a time (at most 64 query rows × 128 keys, in L1/L2),
/// never N×N. The forward runs an online softmax over key blocks per (b·h, query block); the backward walks key blocks
/// and, inside, query blocks per head (FlashAttention-2), so each worker owns its heads' dQ, dK, dV. Every product is
/// a call of CpuGemm's register-tiled kernels (8×32 with Vector512 where the CPU has AVX-512, else 4×32 with
/// Vector256) on blocks transposed into per-worker scratch where the layout needs it; softmax by TensorPrimitives.
/// BF16 q, k, v are widened into f32 temporaries first. A BF16 o (autocast's attention output) is accumulated in the
/// worker's f32 block and rounded into o once per query block; the backward reads it as it is for Δ.
/// </summary>
public sealed partial class CpuBackend
{
    /// <summary>0 for an attended key, −∞ for a masked one ([B, Nk]); null without a mask.</summary>
    static float[]? AttentionMaskBias(Tensor? mask)
    {
        if (mask is null) return null;
        var m = F32(mask);
        var bias = new float[m.Length];
        for (int i = 0; i < m.Length; i++) bias[i] = m[i] == 0f ? float.NegativeInfinity : 0f;
        return bias;
    }

    /// <summary>An f32 copy of a BF16 attention operand, for the passes that read its rows as they are; null for F32.</summary>
    Tensor? WidenedRows(Tensor x)
    {
        if (x.DType != DType.BF16) return null;
        var y = Empty(x.Shape);
        ConvertToF32(x, y);
        return y;
    }

    /// <summary>Query rows and keys per block of the flash-style passes (S is at most 64 × 128 floats, 32 KB).</summary>
    const int FlashQueryBlock = 64, FlashKeyBlock = 128, FlashBackwardKeyBlock = 64;

    /// <summary>dst [cols, rows] = src [rows, cols] (row stride ld), for blocks small enough to stay in L1.</summary>
    static unsafe void TransposeBlock(float* src, int ld, int rows, int cols, float* dst)
    {
        for (int r = 0; r < rows; r++)
        {
            float* from = src + (long)r * ld;
            for (int c = 0; c < cols; c++) dst[(long)c * rows + r] = from[c];
        }
    }

    protected internal override unsafe void AttentionForward(Tensor q, Tensor k, Tensor v, Tensor? mask, Tensor o, Tensor lse, float scale)
    {
        int heads = q.Dim(1), bh = q.Dim(0) * heads, nq = q.Dim(2), nk = k.Dim(2), d = q.Dim(3);
        const int bq = FlashQueryBlock, bk = FlashKeyBlock;
        int qBlocks = (nq + bq - 1) / bq;
        LaunchLog.CountFlops(4.0 * bh * nq * nk * d);
        var bias = AttentionMaskBias(mask);
        using var qWide = WidenedRows(q);
        using var kWide = WidenedRows(k);
        using var vWide = WidenedRows(v);
        bool bf16Out = o.DType == DType.BF16;
        nint pq = (nint)Ptr(qWide ?? q), pk = (nint)Ptr(kWide ?? k), pv = (nint)Ptr(vWide ?? v), pl = (nint)Ptr(lse);
        nint po = bf16Out ? (nint)PtrU16(o) : (nint)Ptr(o);
        ParallelRange(bh * qBlocks, 4L * bq * nk * d, (t0, t1) =>
        {
            // Per worker: a key block transposed [d, bk], the scores [bq, bk], each row's running max and sum, and for
            // a BF16 o the f32 output block [bq, d].
            var buf = ArrayPool<float>.Shared.Rent(d * bk + bq * bk + 2 * bq + (bf16Out ? bq * d : 0));
            try
            {
                fixed (float* scratch = buf)
                    for (int item = t0; item < t1; item++)
                    {
                        int g = item / qBlocks, i0 = item % qBlocks * bq;
                        long oOff = ((long)g * nq + i0) * d;
                        float* oBlock = bf16Out ? scratch + d * bk + bq * bk + 2 * bq : (float*)po + oOff;
                        FlashForwardBlock(g, i0, heads, nq, nk, d, scale, bias, (float*)pq, (float*)pk, (float*)pv, oBlock, (float*)pl, scratch);
                        if (!bf16Out) continue;
                        int count = Math.Min(bq, nq - i0) * d;
                        BFloat16.FromFloat(new ReadOnlySpan<float>(oBlock, count), new Span<ushort>((ushort*)po + oOff, count));
                    }
            }
            finally { ArrayPool<float>.Shared.Return(buf); }
        });
    }

    /// <summary>
    /// One block of query rows of head g: O accumulates P·V over key blocks with an online softmax (running row max
    /// and sum, O rescaled when the max grows), so no score matrix wider than a key block exists. oi is the block's
    /// [m, d] output rows (in o, or the worker's f32 block for a BF16 o).
    /// </summary>
    static unsafe void FlashForwardBlock(int g, int i0, int heads, int nq, int nk, int d, float scale, float[]? bias,
        float* q, float* k, float* v, float* oi, float* lse, float* scratch)
    {
        const int bq = FlashQueryBlock, bk = FlashKeyBlock;
        int m = Math.Min(bq, nq - i0);
        float* kt = scratch, s = kt + (long)d * bk, rowMax = s + (long)bq * bk, rowSum = rowMax + bq;
        float* qi = q + ((long)g * nq + i0) * d;
        new Span<float>(oi, m * d).Clear();
        new Span<float>(rowMax, m).Fill(float.NegativeInfinity);
        new Span<float>(rowSum, m).Clear();
        for (int j0 = 0; j0 < nk; j0 += bk)
        {
            int n = Math.Min(bk, nk - j0);
            TransposeBlock(k + ((long)g * nk + j0) * d, d, n, d, kt);
            // S = scale·Q_i·K_jᵀ [m × n]
            CpuGemm.Tile(qi, d, new StridedRows(kt, n), s, n, m, n, d, scale, 0f);
            for (int r = 0; r < m; r++)
            {
                var row = new Span<float>(s + (long)r * n, n);
                if (bias is not null) TensorPrimitives.Add(row, bias.AsSpan(g / heads * nk + j0, n), row);
                float newMax = Math.Max(rowMax[r], TensorPrimitives.Max(row));
                if (float.IsNegativeInfinity(newMax)) { row.Clear(); continue; }   // every key so far masked
                TensorPrimitives.Subtract(row, newMax, row);
                TensorPrimitives.Exp(row, row);
                float rescale = MathF.Exp(rowMax[r] - newMax);   // 0 while the row had no attended key
                if (rescale != 1f)
                {
                    var orow = new Span<float>(oi + (long)r * d, d);
                    TensorPrimitives.Multiply(orow, rescale, orow);
                }
                rowSum[r] = rowSum[r] * rescale + TensorPrimitives.Sum(row);
                rowMax[r] = newMax;
            }
            // O_i += P·V_j [m × d]
            CpuGemm.Tile(s, n, new StridedRows(v + ((long)g * nk + j0) * d, d), oi, d, m, d, n, 1f, 1f);
        }
        float* li = lse + (long)g * nq + i0;
        for (int r = 0; r < m; r++)
        {
            var orow = new Span<float>(oi + (long)r * d, d);
            if (rowSum[r] == 0f) { orow.Clear(); li[r] = float.PositiveInfinity; continue; }   // all keys masked
            TensorPrimitives.Multiply(orow, 1f / rowSum[r], orow);
            li[r] = rowMax[r] + MathF.Log(rowSum[r]);
        }
    }

    protected internal override unsafe void AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, Tensor dO, Tensor? mask,
        Tensor dq, Tensor dk, Tensor dv, float scale)
    {
        int heads = q.Dim(1), bh = q.Dim(0) * heads, nq = q.Dim(2), nk = k.Dim(2), d = q.Dim(3);
        const int bq = FlashQueryBlock, bk = FlashBackwardKeyBlock;
        LaunchLog.CountFlops(10.0 * bh * nq * nk * d);   // S again, dP, dV, dQ, dK
        var bias = AttentionMaskBias(mask);
        using var qWide = WidenedRows(q);
        using var kWide = WidenedRows(k);
        using var vWide = WidenedRows(v);
        bool bf16O = o.DType == DType.BF16;
        nint pq = (nint)Ptr(qWide ?? q), pk = (nint)Ptr(kWide ?? k), pv = (nint)Ptr(vWide ?? v), pl = (nint)Ptr(lse), pdo = (nint)Ptr(dO);
        nint po = bf16O ? (nint)PtrU16(o) : (nint)Ptr(o);
        nint pdq = (nint)Ptr(dq), pdk = (nint)Ptr(dk), pdv = (nint)Ptr(dv);
        // One worker owns a head (dQ gathers every key block's contribution), so heads are the work items.
        ParallelRange(bh, 5L * nq * nk * d, (g0, g1) =>
        {
            // Per worker: Qᵢᵀ and dOᵢᵀ [d, bq], Pᵀ and dSᵀ [bk, bq], dS [bq, bk], Δ for the head's query rows.
            var buf = ArrayPool<float>.Shared.Rent(2 * d * bq + 3 * bk * bq + nq);
            try
            {
                fixed (float* scratch = buf)
                    for (int g = g0; g < g1; g++)
                        FlashBackwardHead(g, heads, nq, nk, d, scale, bias, (float*)pq, (float*)pk, (float*)pv, po, bf16O, (float*)pl,
                            (float*)pdo, (float*)pdq, (float*)pdk, (float*)pdv, scratch);
            }
            finally { ArrayPool<float>.Shared.Return(buf); }
        });
    }

    /// <summary>
    /// Head g's gradients, block by block (FlashAttention-2's backward): for each key block j and query block i,
    /// Pᵀ = exp(scale·K_j·Q_iᵀ − L), dSᵀ = Pᵀ∘(V_j·dO_iᵀ − Δ), dV_j += Pᵀ·dO_i, dK_j += scale·dSᵀ·Q_i,
    /// dQ_i += scale·dS·K_j, with Δ = rowsum(dO∘O) (O F32, or BF16 widened as it is read: <paramref name="bf16O"/>).
    /// Scores are held one block pair at a time.
    /// </summary>
    static unsafe void FlashBackwardHead(int g, int heads, int nq, int nk, int d, float scale, float[]? bias,
        float* q, float* k, float* v, nint o, bool bf16O, float* lse, float* dO, float* dq, float* dk, float* dv, float* scratch)
    {
        const int bq = FlashQueryBlock, bk = FlashBackwardKeyBlock;
        float* qt = scratch, dot = qt + (long)d * bq, pt = dot + (long)d * bq, dst = pt + (long)bk * bq, ds = dst + (long)bk * bq, delta = ds + (long)bq * bk;
        long head = (long)g * nq * d, keyHead = (long)g * nk * d;
        for (int r = 0; r < nq; r++)
        {
            var dRow = new ReadOnlySpan<float>(dO + head + (long)r * d, d);
            if (!bf16O) { delta[r] = TensorPrimitives.Dot(dRow, new ReadOnlySpan<float>((float*)o + head + (long)r * d, d)); continue; }
            ushort* oRow = (ushort*)o + head + (long)r * d;
            float sum = 0f;
            for (int c = 0; c < d; c++) sum += dRow[c] * BFloat16.ToFloat(oRow[c]);
            delta[r] = sum;
        }
        new Span<float>(dq + head, nq * d).Clear();
        new Span<float>(dk + keyHead, nk * d).Clear();
        new Span<float>(dv + keyHead, nk * d).Clear();
        float* l = lse + (long)g * nq;
        for (int j0 = 0; j0 < nk; j0 += bk)
        {
            int n = Math.Min(bk, nk - j0);
            float* kj = k + keyHead + (long)j0 * d, vj = v + keyHead + (long)j0 * d;
            float* dkj = dk + keyHead + (long)j0 * d, dvj = dv + keyHead + (long)j0 * d;
            for (int i0 = 0; i0 < nq; i0 += bq)
            {
                int m = Math.Min(bq, nq - i0);
                float* qi = q + head + (long)i0 * d, doi = dO + head + (long)i0 * d, dqi = dq + head + (long)i0 * d;
                TransposeBlock(qi, d, m, d, qt);
                TransposeBlock(doi, d, m, d, dot);
                CpuGemm.Tile(kj, d, new StridedRows(qt, m), pt, m, n, m, d, scale, 0f);    // Sᵀ [n × m]
                CpuGemm.Tile(vj, d, new StridedRows(dot, m), dst, m, n, m, d, 1f, 0f);     // dPᵀ [n × m]
                var lrow = new ReadOnlySpan<float>(l + i0, m);
                var drow = new ReadOnlySpan<float>(delta + i0, m);
                for (int c = 0; c < n; c++)
                {
                    var prow = new Span<float>(pt + (long)c * m, m);
                    var dsrow = new Span<float>(dst + (long)c * m, m);
                    if (bias is not null && bias[g / heads * nk + j0 + c] != 0f) { prow.Clear(); dsrow.Clear(); continue; }   // masked key
                    TensorPrimitives.Subtract(prow, lrow, prow);   // L = +∞ (no keys) gives P = 0
                    TensorPrimitives.Exp(prow, prow);
                    TensorPrimitives.Subtract(dsrow, drow, dsrow);
                    TensorPrimitives.Multiply(dsrow, prow, dsrow);
                }
                CpuGemm.Tile(pt, m, new StridedRows(doi, d), dvj, d, n, d, m, 1f, 1f);       // dV_j += Pᵀ·dO_i
                CpuGemm.Tile(dst, m, new StridedRows(qi, d), dkj, d, n, d, m, scale, 1f);    // dK_j += scale·dSᵀ·Q_i
                TransposeBlock(dst, m, n, m, ds);
                CpuGemm.Tile(ds, n, new StridedRows(kj, d), dqi, d, m, d, n, scale, 1f);     // dQ_i += scale·dS·K_j
            }
        }
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
