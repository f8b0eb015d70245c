using System.Buffers;
using System.Numerics.Tensors;

namespace Mdm.Kernels.Cpu;

/// <summary>
/// GroupNorm (optionally fused with FiLM and SiLU) and LayerNorm on the CPU: one (n, g) group or one LayerNorm row is a
/// contiguous span, handled with TensorPrimitives; rows run in parallel. Statistics are a two-pass mean / centred sum
/// of squares in float (stable). Sums over samples (dgamma, dbeta) go through per-row partials summed in a fixed order,
/// so results do not depend on the thread count.
/// </summary>
public sealed partial class CpuBackend
{
    protected internal override void GroupNormForward(Tensor x, Tensor gamma, Tensor beta, Tensor? a, Tensor? b, bool silu,
        int groups, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        int n = x.Dim(0), c = x.Dim(1), s = (int)(x.Numel / ((long)n * c)), cpg = c / groups, m = cpg * s;
        bool film = a is not null, bf16 = y.DType == DType.BF16;
        ParallelRange(n * groups, 6L * m, (r0, r1) =>
        {
            float[]? rented = silu ? ArrayPool<float>.Shared.Rent(s) : null;
            float[]? rowBuffer = bf16 ? ArrayPool<float>.Shared.Rent(m) : null;   // the f32 row, rounded into y at the end
            try
            {
                Span<float> sx = F32(x), sy = bf16 ? default : F32(y), sMean = F32(mean), sRstd = F32(rstd);
                ReadOnlySpan<float> sg = F32(gamma), sb = F32(beta);
                ReadOnlySpan<float> sa = film ? F32(a!) : default, sh = film ? F32(b!) : default;
                for (int row = r0; row < r1; row++)
                {
                    int nn = row / groups, g = row - nn * groups;
                    var xr = sx.Slice(row * m, m);
                    var yr = bf16 ? rowBuffer!.AsSpan(0, m) : sy.Slice(row * m, m);
                    float mu = TensorPrimitives.Sum(xr) / m;
                    TensorPrimitives.Subtract(xr, mu, yr);                       // y holds x − mean for now
                    float rs = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(yr) / m + eps);
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
                        TensorPrimitives.Multiply(yc, scale, yc);
                        TensorPrimitives.Add(yc, shift, yc);
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
        var partialGamma = new float[n * c];   // Σ_s g·xhat per (n, c)
        var partialBeta = new float[n * c];    // Σ_s g per (n, c)
        ParallelRange(n * groups, 12L * m, (r0, r1) =>
        {
            float[] rented = ArrayPool<float>.Shared.Rent(3 * s);
            try
            {
                var xh = rented.AsSpan(0, s);
                var z = rented.AsSpan(s, s);
                var u = rented.AsSpan(2 * s, s);
                Span<float> sx = F32(x), sdy = F32(dy), sdx = F32(dx);
                ReadOnlySpan<float> sMean = F32(mean), sRstd = F32(rstd), sg = F32(gamma), sb = F32(beta);
                ReadOnlySpan<float> sa = film ? F32(a!) : default, sh = film ? F32(b!) : default;
                Span<float> sda = film ? F32(da!) : default, sdb = film ? F32(db!) : default;
                for (int row = r0; row < r1; row++)
                {
                    int nn = row / groups, g = row - nn * groups;
                    float mu = sMean[row], rs = sRstd[row];
                    double sumDxhat = 0, sumDxhatXhat = 0;
                    for (int ci = 0; ci < cpg; ci++)
                    {
                        int ch = g * cpg + ci, nc = nn * c + ch, off = row * m + ci * s;
                        var xc = sx.Slice(off, s);
                        var dyc = sdy.Slice(off, s);
                        var dxc = sdx.Slice(off, s);
                        TensorPrimitives.Subtract(xc, mu, xh);
                        TensorPrimitives.Multiply(xh, rs, xh);
                        float fa = film ? 1f + sa[nc] : 1f;
                        ReadOnlySpan<float> dz = dyc;
                        if (silu)
                        {
                            // z = xhat·gamma·(1+a) + beta·(1+a) + b; SiLU'(z) = σ(z)·(1 + z·(1 − σ(z))); dx holds σ(z) for now.
                            TensorPrimitives.Multiply(xh, sg[ch] * fa, z);
                            TensorPrimitives.Add(z, film ? sb[ch] * fa + sh[nc] : sb[ch], z);
                            TensorPrimitives.Sigmoid(z, dxc);
                            TensorPrimitives.Subtract(1f, dxc, u);
                            TensorPrimitives.Multiply(u, z, u);
                            TensorPrimitives.MultiplyAdd(u, dxc, dxc, u);
                            TensorPrimitives.Multiply(u, dyc, u);
                            dz = u;
                        }
                        float sumDz = TensorPrimitives.Sum(dz), sumDzXhat = TensorPrimitives.Dot(dz, xh);
                        partialGamma[nc] = fa * sumDzXhat;
                        partialBeta[nc] = fa * sumDz;
                        if (film)
                        {
                            sdb[nc] = sumDz;
                            sda[nc] = sg[ch] * sumDzXhat + sb[ch] * sumDz;
                        }
                        float k = fa * sg[ch];
                        TensorPrimitives.Multiply(dz, k, dxc);                   // dx holds dxhat for now
                        sumDxhat += (double)k * sumDz;
                        sumDxhatXhat += (double)k * sumDzXhat;
                    }
                    float m1 = (float)(sumDxhat / m), m2 = (float)(sumDxhatXhat / m);
                    for (int ci = 0; ci < cpg; ci++)
                    {
                        int off = row * m + ci * s;
                        var dxc = sdx.Slice(off, s);
                        TensorPrimitives.Subtract(sx.Slice(off, s), mu, xh);
                        TensorPrimitives.Multiply(xh, rs, xh);
                        TensorPrimitives.MultiplyAdd(xh, -m2, dxc, dxc);        // dxhat − xhat·m2
                        TensorPrimitives.Subtract(dxc, m1, dxc);
                        TensorPrimitives.Multiply(dxc, rs, dxc);
                    }
                }
            }
            finally { ArrayPool<float>.Shared.Return(rented); }
        });
        SumSamples(partialGamma, n, F32(dgamma));
        SumSamples(partialBeta, n, F32(dbeta));
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
