using System.Runtime.Intrinsics;

namespace Mdm.Kernels.Cpu;

/// <summary>
/// The vector loops of the CPU GroupNorm: the statistics in one pass, and the backward's per-channel sweep (SiLU
/// derivative, the two group sums and dxhat together) and final affine correction, each one pass over the data.
/// </summary>
static unsafe class CpuGroupNormLoops
{
    /// <summary>Floats summed in float lanes before the partial sums move to double.</summary>
    const int Block = 256;

    /// <summary>
    /// Mean and (biased) variance of x in one pass: sums of x − x[0] and of its square (shifted, so data far from
    /// zero does not cancel), in float lanes over blocks of 256 and in double across blocks.
    /// </summary>
    public static void Moments(float* x, int count, out double mean, out double variance)
    {
        float shift = x[0];
        var vShift = Vector256.Create(shift);
        double s1 = 0, s2 = 0;
        int i = 0;
        while (i + 8 <= count)
        {
            Vector256<float> a1 = default, a2 = default;
            for (int end = Math.Min(count, i + Block); i + 8 <= end; i += 8)
            {
                var d = Vector256.Load(x + i) - vShift;
                a1 += d;
                a2 = Vector256.FusedMultiplyAdd(d, d, a2);
            }
            s1 += Vector256.Sum(a1);
            s2 += Vector256.Sum(a2);
        }
        for (; i < count; i++)
        {
            double d = x[i] - shift;
            s1 += d;
            s2 += d * d;
        }
        double m1 = s1 / count;
        mean = shift + m1;
        variance = Math.Max(s2 / count - m1 * m1, 0);
    }

    /// <summary>y = (x − mu)·scale + shift in one pass (the subtraction first, so data far from zero does not cancel).</summary>
    public static void Affine(float* x, float* y, int count, float mu, float scale, float shift)
    {
        var vMu = Vector256.Create(mu);
        var vScale = Vector256.Create(scale);
        var vShift = Vector256.Create(shift);
        int i = 0;
        for (; i + 8 <= count; i += 8) Vector256.FusedMultiplyAdd(Vector256.Load(x + i) - vMu, vScale, vShift).Store(y + i);
        for (; i < count; i++) y[i] = MathF.FusedMultiplyAdd(x[i] - mu, scale, shift);
    }

    /// <summary>
    /// One channel of the backward: xhat = (x − mu)·rstd; dz = dy·σ(z)·(1 + z·(1 − σ(z))) where <paramref name="z"/>
    /// holds the pre-SiLU values and <paramref name="sigmoid"/> σ(z) (both null without SiLU: dz = dy); writes
    /// dx = k·dz and returns Σ dz and Σ dz·xhat.
    /// </summary>
    public static void ChannelBackward(float* x, float* dy, float* z, float* sigmoid, float* dx, int count, float mu, float rstd,
        float k, out double sumDz, out double sumDzXhat)
    {
        var vMu = Vector256.Create(mu);
        var vRstd = Vector256.Create(rstd);
        var vK = Vector256.Create(k);
        var one = Vector256.Create(1f);
        double s1 = 0, s2 = 0;
        int i = 0;
        while (i + 8 <= count)
        {
            Vector256<float> a1 = default, a2 = default;
            for (int end = Math.Min(count, i + Block); i + 8 <= end; i += 8)
            {
                var dz = Vector256.Load(dy + i);
                if (z is not null)
                {
                    var zv = Vector256.Load(z + i);
                    var sg = Vector256.Load(sigmoid + i);
                    dz *= sg * Vector256.FusedMultiplyAdd(zv, one - sg, one);
                }
                var xh = (Vector256.Load(x + i) - vMu) * vRstd;
                a1 += dz;
                a2 = Vector256.FusedMultiplyAdd(dz, xh, a2);
                (vK * dz).Store(dx + i);
            }
            s1 += Vector256.Sum(a1);
            s2 += Vector256.Sum(a2);
        }
        for (; i < count; i++)
        {
            float dz = dy[i];
            if (z is not null) dz *= sigmoid[i] * (1f + z[i] * (1f - sigmoid[i]));
            float xh = (x[i] - mu) * rstd;
            s1 += dz;
            s2 += (double)dz * xh;
            dx[i] = k * dz;
        }
        sumDz = s1;
        sumDzXhat = s2;
    }

    /// <summary>dx = rstd·(dx − xhat·m2 − m1) with xhat = (x − mu)·rstd, as dx·rstd + (x − mu)·c1 + c0 in one pass.</summary>
    public static void Correct(float* x, float* dx, int count, float mu, float rstd, float m1, float m2)
    {
        float c1 = -rstd * rstd * m2, c0 = -rstd * m1;
        var vMu = Vector256.Create(mu);
        var vR = Vector256.Create(rstd);
        var vC1 = Vector256.Create(c1);
        var vC0 = Vector256.Create(c0);
        int i = 0;
        for (; i + 8 <= count; i += 8)
            Vector256.FusedMultiplyAdd(Vector256.Load(x + i) - vMu, vC1, Vector256.FusedMultiplyAdd(Vector256.Load(dx + i), vR, vC0)).Store(dx + i);
        for (; i < count; i++) dx[i] = MathF.FusedMultiplyAdd(x[i] - mu, c1, MathF.FusedMultiplyAdd(dx[i], rstd, c0));
    }
}
