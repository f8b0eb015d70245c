using System.Buffers;
using System.Numerics.Tensors;

namespace Mdm.Kernels.Cpu;

/// <summary>
/// GroupNorm (optionally fused with FiLM and SiLU) and LayerNorm on the CPU: one (n, g) group or one LayerNorm row is a
/// contiguous span; rows run in parallel. GroupNorm statistics take one pass (shifted sums, double across blocks), the
/// normalise+FiLM one more (then σ for SiLU), and the backward one fused sweep per channel plus one correction pass
/// (CpuNorm.Fused.cs); LayerNorm uses TensorPrimitives. Sums over samples (dgamma, dbeta) go through per-row partials
/// summed in a fixed order, so results do not depend on the thread count.
/// </summary>
public sealed unsafe partial class CpuBackend
{
    protected internal override void GroupNormForward(Tensor x, Tensor gamma, Tensor beta, Tensor? a, Tensor? b, bool silu,
        int groups, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        int n = x.Dim(0), c = x.Dim(1), s = (int)(x.Numel / ((long)n * c)), cpg = c / groups, m = cpg * s;
        bool film = a is not null, bf16 = y.DType == DType.BF16, bf16X = x.DType == DType.BF16;
        ParallelRange(n * groups, 6L * m, (r0, r1) =>
        {
            float[]? rented = silu ? ArrayPool<float>.Shared.Rent(s) : null;
            float[]? rowBuffer = bf16 ? ArrayPool<float>.Shared.Rent(m) : null;   // the f32 row, rounded into y at the end
            float[]? xBuffer = bf16X ? ArrayPool<float>.Shared.Rent(m) : null;    // a BF16 x's row, widened
            try
            {
                Span<float> sx = bf16X ? default : F32(x), sy = bf16 ? default : F32(y), sMean = F32(mean), sRstd = F32(rstd);
                ReadOnlySpan<float> sg = F32(gamma), sb = F32(beta);
                ReadOnlySpan<float> sa = film ? F32(a!) : default, sh = film ? F32(b!) : default;
                for (int row = r0; row < r1; row++)
                {
                    int nn = row / groups, g = row - nn * groups;
                    var xr = bf16X ? Widened(x, row * m, m, xBuffer!) : sx.Slice(row * m, m);
                    var yr = bf16 ? rowBuffer!.AsSpan(0, m) : sy.Slice(row * m, m);
                    double mean0, variance;
                    fixed (float* px = xr) CpuGroupNormLoops.Moments(px, m, out mean0, out variance);
                    float mu = (float)mean0, rs = (float)(1.0 / Math.Sqrt(variance + eps));
                    sMean[row] = mu;
                    sRstd[row] = rs;
                    for (int ci = 0; ci < cpg; ci++)
                    {
                        int ch = g * cpg + ci;
                        float scale = rs * sg[ch], shift = sb[ch];
                        if (film)
                        {
                            float fa = 1f + sa[nn * c + ch];
                            scale *= fa;
                            shift = shift * fa + sh[nn * c + ch];
                        }
                        var yc = yr.Slice(ci * s, s);
                        fixed (float* pxc = xr.Slice(ci * s, s), pyc = yc) CpuGroupNormLoops.Affine(pxc, pyc, s, mu, scale, shift);
                        if (silu)
                        {
                            var sig = rented!.AsSpan(0, s);
                            TensorPrimitives.Sigmoid(yc, sig);
                            TensorPrimitives.Multiply(yc, sig, yc);
                        }
                    }
                    if (bf16) BFloat16.FromFloat(yr, U16(y).Slice(row * m, m));
                }
            }
            finally
            {
                if (rented is not null) ArrayPool<float>.Shared.Return(rented);
                if (rowBuffer is not null) ArrayPool<float>.Shared.Return(rowBuffer);
                if (xBuffer is not null) ArrayPool<float>.Shared.Return(xBuffer);
            }
        });
    }

    // With g = dz·(1 + a) the gradient reaching the affine output and xhat the normalised input:
    //   dgamma_c = Σ_{n,s} g·xhat, dbeta_c = Σ_{n,s} g, db[n,c] = Σ_s dz, da[n,c] = Σ_s dz·(xhat·gamma_c + beta_c),
    //   dx = rstd·(dxhat − mean_group(dxhat) − xhat·mean_group(dxhat·xhat)) with dxhat = g·gamma_c.
    // dz = dy·SiLU'(z) when fused with SiLU, else dy.
    protected internal override void GroupNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, Tensor gamma, Tensor beta,
        Tensor? a, Tensor? b, bool silu, int groups, Tensor dx, Tensor dgamma, Tensor dbeta, Tensor? da, Tensor? db)
    {
        int n = x.Dim(0), c = x.Dim(1), s = (int)(x.Numel / ((long)n * c)), cpg = c / groups, m = cpg * s;
        bool film = a is not null;
        float[] partials = ArrayPool<float>.Shared.Rent(2 * n * c);   // Σ_s g·xhat, then Σ_s g, per (n, c)
        bool bf16X = x.DType == DType.BF16;
        nint px = bf16X ? 0 : (nint)Ptr(x), pdy = (nint)Ptr(dy), pdx = (nint)Ptr(dx);
        ParallelRange(n * groups, 12L * m, (r0, r1) =>
        {
            float[]? rented = silu ? ArrayPool<float>.Shared.Rent(2 * s) : null;
            float[]? xBuffer = bf16X ? ArrayPool<float>.Shared.Rent(m) : null;   // a BF16 x's row, widened
            try
            {
                fixed (float* buffers = rented, xRow = xBuffer)
                {
                    // Per channel: z (pre-SiLU) and σ(z) for the fused sweep.
                    float* z = silu ? buffers : null, sigmoid = silu ? buffers + s : null;
                    var partialGamma = partials.AsSpan(0, n * c);
                    var partialBeta = partials.AsSpan(n * c, n * c);
                    ReadOnlySpan<float> sMean = F32(mean), sRstd = F32(rstd), sg = F32(gamma), sb = F32(beta);
                    ReadOnlySpan<float> sa = film ? F32(a!) : default, sh = film ? F32(b!) : default;
                    Span<float> sda = film ? F32(da!) : default, sdb = film ? F32(db!) : default;
                    for (int row = r0; row < r1; row++)
                    {
                        int nn = row / groups, g = row - nn * groups;
                        float mu = sMean[row], rs = sRstd[row];
                        double sumDxhat = 0, sumDxhatXhat = 0;
                        // x of this row: the tensor's own, or a BF16 row widened once for both sweeps
                        float* xRowBase = bf16X ? xRow : (float*)px + (long)row * m;
                        if (bf16X) Widened(x, row * m, m, xBuffer!);
                        for (int ci = 0; ci < cpg; ci++)
                        {
                            int ch = g * cpg + ci, nc = nn * c + ch;
                            long off = (long)row * m + (long)ci * s;
                            float* xc = xRowBase + (long)ci * s, dyc = (float*)pdy + off, dxc = (float*)pdx + off;
                            float fa = film ? 1f + sa[nc] : 1f;
                            if (silu)
                            {
                                // z = xhat·gamma·(1+a) + beta·(1+a) + b
                                CpuGroupNormLoops.Affine(xc, z, s, mu, rs * sg[ch] * fa, film ? sb[ch] * fa + sh[nc] : sb[ch]);
                                TensorPrimitives.Sigmoid(new ReadOnlySpan<float>(z, s), new Span<float>(sigmoid, s));
                            }
                            float k = fa * sg[ch];
                            CpuGroupNormLoops.ChannelBackward(xc, dyc, z, sigmoid, dxc, s, mu, rs, k, out double sumDz, out double sumDzXhat);
                            partialGamma[nc] = (float)(fa * sumDzXhat);
                            partialBeta[nc] = (float)(fa * sumDz);
                            if (film)
                            {
                                sdb[nc] = (float)sumDz;
                                sda[nc] = (float)(sg[ch] * sumDzXhat + sb[ch] * sumDz);
                            }
                            sumDxhat += k * sumDz;
                            sumDxhatXhat += k * sumDzXhat;
                        }
                        float m1 = (float)(sumDxhat / m), m2 = (float)(sumDxhatXhat / m);
                        for (int ci = 0; ci < cpg; ci++)
                        {
                            long off = (long)row * m + (long)ci * s;
                            CpuGroupNormLoops.Correct(xRowBase + (long)ci * s, (float*)pdx + off, s, mu, rs, m1, m2);
                        }
                    }
                }
            }
            finally
            {
                if (rented is not null) ArrayPool<float>.Shared.Return(rented);
                if (xBuffer is not null) ArrayPool<float>.Shared.Return(xBuffer);
            }
        });
        try
        {
            SumSamples(partials.AsSpan(0, n * c), n, F32(dgamma));
            SumSamples(partials.AsSpan(n * c, n * c), n, F32(dbeta));
        }
        finally { ArrayPool<float>.Shared.Return(partials); }
    }

    /// <summary>dst[j] = Σ_i partial[i, j] over the leading axis, in index order (deterministic).</summary>
    static void SumSamples(ReadOnlySpan<float> partial, int count, Span<float> dst)
    {
        int width = dst.Length;
        dst.Clear();
        for (int i = 0; i < count; i++) TensorPrimitives.Add(dst, partial.Slice(i * width, width), dst);
    }

    protected internal override void LayerNormForward(Tensor x, Tensor gamma, Tensor beta, int rows, int d, float eps,
        Tensor y, Tensor mean, Tensor rstd)
    {
        ParallelRange(rows, 5L * d, (r0, r1) =>
        {
            Span<float> sx = F32(x), sy = F32(y), sMean = F32(mean), sRstd = F32(rstd);
            ReadOnlySpan<float> sg = F32(gamma), sb = F32(beta);
            for (int row = r0; row < r1; row++)
            {
                var xr = sx.Slice(row * d, d);
                var yr = sy.Slice(row * d, d);
                float mu = TensorPrimitives.Sum(xr) / d;
                TensorPrimitives.Subtract(xr, mu, yr);
                float rs = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(yr) / d + eps);
                sMean[row] = mu;
                sRstd[row] = rs;
                TensorPrimitives.Multiply(yr, rs, yr);
                TensorPrimitives.MultiplyAdd(yr, sg, sb, yr);
            }
        });
    }

    /// <summary>Rows per block of the LayerNorm parameter-gradient partials: fixed, so the sum order never depends on threads.</summary>
    const int LayerNormRowsPerBlock = 32;

    protected internal override void LayerNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, Tensor gamma, int rows, int d,
        Tensor dx, Tensor dgamma, Tensor dbeta)
    {
        int blocks = (rows + LayerNormRowsPerBlock - 1) / LayerNormRowsPerBlock;
        var partialGamma = new float[(long)blocks * d];
        var partialBeta = new float[(long)blocks * d];
        ParallelRange(blocks, 10L * LayerNormRowsPerBlock * d, (k0, k1) =>
        {
            float[] rented = ArrayPool<float>.Shared.Rent(d);
            try
            {
                var xh = rented.AsSpan(0, d);
                Span<float> sx = F32(x), sdy = F32(dy), sdx = F32(dx);
                ReadOnlySpan<float> sMean = F32(mean), sRstd = F32(rstd), sg = F32(gamma);
                for (int k = k0; k < k1; k++)
                {
                    var pg = partialGamma.AsSpan(k * d, d);
                    var pb = partialBeta.AsSpan(k * d, d);
                    int end = Math.Min(rows, (k + 1) * LayerNormRowsPerBlock);
                    for (int row = k * LayerNormRowsPerBlock; row < end; row++)
                    {
                        float mu = sMean[row], rs = sRstd[row];
                        var dyr = sdy.Slice(row * d, d);
                        var dxr = sdx.Slice(row * d, d);
                        TensorPrimitives.Subtract(sx.Slice(row * d, d), mu, xh);
                        TensorPrimitives.Multiply(xh, rs, xh);
                        TensorPrimitives.MultiplyAdd(dyr, xh, pg, pg);
                        TensorPrimitives.Add(pb, dyr, pb);
                        TensorPrimitives.Multiply(dyr, sg, dxr);                  // dx holds dxhat = dy·gamma for now
                        float m1 = TensorPrimitives.Sum(dxr) / d, m2 = TensorPrimitives.Dot(dxr, xh) / d;
                        TensorPrimitives.MultiplyAdd(xh, -m2, dxr, dxr);
                        TensorPrimitives.Subtract(dxr, m1, dxr);
                        TensorPrimitives.Multiply(dxr, rs, dxr);
                    }
                }
            }
            finally { ArrayPool<float>.Shared.Return(rented); }
        });
        SumSamples(partialGamma, blocks, F32(dgamma));
        SumSamples(partialBeta, blocks, F32(dbeta));
    }
}
