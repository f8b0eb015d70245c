namespace Mdm.Kernels;

// Shape family: GELU, FiLM scale-shift, nearest ×2 upsample, average pooling, concat/split as block copies, permute.
public abstract partial class Backend
{
    /// <summary>y = GELU(x) = x·Φ(x), the exact erf form (PyTorch approximate='none'); x and y both F32 or both BF16
    /// (widened, computed in f32, rounded once).</summary>
    protected internal abstract void GeluForward(Tensor x, Tensor y);
    /// <summary>dx = dy·(Φ(x) + x·φ(x)); x F32 or BF16, dy and dx F32.</summary>
    protected internal abstract void GeluBackward(Tensor x, Tensor dy, Tensor dx);

    /// <summary>x viewed as [rows = N·C, inner]; a, b as [rows]: y = x·(1 + a[row]) + b[row].</summary>
    protected internal abstract void ScaleShiftForward(Tensor x, Tensor a, Tensor b, Tensor y, int rows, int inner);
    /// <summary>dx = dy·(1 + a[row]); da[row] = Σ dy·x over the row; db[row] = Σ dy over the row.</summary>
    protected internal abstract void ScaleShiftBackward(Tensor x, Tensor a, Tensor dy, Tensor dx, Tensor da, Tensor db, int rows, int inner);

    /// <summary>x [planes, h, w] → y [planes, 2h, 2w], nearest neighbour.</summary>
    protected internal abstract void UpsampleNearest2x(Tensor x, Tensor y, int planes, int h, int w);
    /// <summary>dy [planes, 2h, 2w] → dx [planes, h, w]: each dx element is the sum of its 2×2 block.</summary>
    protected internal abstract void UpsampleNearest2xBackward(Tensor dy, Tensor dx, int planes, int h, int w);

    /// <summary>x [planes, oh·s, ow·s] → y [planes, oh, ow], mean of each s×s block.</summary>
    protected internal abstract void AvgPool2d(Tensor x, Tensor y, int planes, int oh, int ow, int s);
    /// <summary>dy [planes, oh, ow] → dx [planes, oh·s, ow·s]: dx = dy / s² spread over each block.</summary>
    protected internal abstract void AvgPool2dBackward(Tensor dy, Tensor dx, int planes, int oh, int ow, int s);

    /// <summary>
    /// For o in [0, outer): dst[o·dstStride + dstOffset + j] = src[o·srcStride + srcOffset + j], j in [0, chunk).
    /// Concat and Split are each a sequence of these (one per input / output tensor). src and dst share a dtype (F32 or
    /// BF16, copied as they are).
    /// </summary>
    protected internal abstract void CopyBlocks(Tensor src, int srcStride, int srcOffset, Tensor dst, int dstStride, int dstOffset, int outer, int chunk);

    /// <summary>y (contiguous) = x read through the plan's strides; x and y share a dtype (F32 or BF16).</summary>
    protected internal abstract void Permute(Tensor x, Tensor y, in PermutePlan plan);
}

/// <summary>
/// How a contiguous permuted output reads its input: the output's dimensions, coalesced (size-1 axes dropped,
/// neighbours that stay adjacent in the input merged) to at most <see cref="MaxRank"/> right-aligned axes, and the
/// input element stride of each. A plain struct of ints so GPU kernels take it as one argument.
/// </summary>
public struct PermutePlan
{
    public const int MaxRank = 6;
    public int D0, D1, D2, D3, D4, D5;
    public int S0, S1, S2, S3, S4, S5;
    /// <summary>Number of meaningful (coalesced) axes.</summary>
    public int Rank;

    /// <summary>The plan for y = x.permute(dims); dims must already be a valid permutation of x's axes.</summary>
    public static PermutePlan Create(ReadOnlySpan<int> inShape, ReadOnlySpan<int> dims)
    {
        var inStride = new long[inShape.Length];
        long st = 1;
        for (int i = inShape.Length - 1; i >= 0; i--) { inStride[i] = st; st *= inShape[i]; }
        var size = new List<long>(); var stride = new List<long>();
        for (int k = 0; k < dims.Length; k++)
        {
            long d = inShape[dims[k]], s = inStride[dims[k]];
            if (d == 1) continue;
            int last = size.Count - 1;
            if (last >= 0 && stride[last] == s * d) { size[last] *= d; stride[last] = s; }
            else { size.Add(d); stride.Add(s); }
        }
        if (size.Count > MaxRank) throw new ArgumentException($"Permute: {size.Count} axes after merging; at most {MaxRank} are supported");
        var p = new PermutePlan { Rank = size.Count };
        int off = MaxRank - size.Count;
        for (int k = 0; k < MaxRank; k++)
        {
            int d = 1, s = 0;
            if (k >= off) { d = (int)size[k - off]; s = (int)stride[k - off]; }
            switch (k)
            {
                case 0: p.D0 = d; p.S0 = s; break;
                case 1: p.D1 = d; p.S1 = s; break;
                case 2: p.D2 = d; p.S2 = s; break;
                case 3: p.D3 = d; p.S3 = s; break;
                case 4: p.D4 = d; p.S4 = s; break;
                default: p.D5 = d; p.S5 = s; break;
            }
        }
        return p;
    }

    /// <summary>Input offset of output element <paramref name="i"/>. Used by kernels and the CPU backend alike.</summary>
    public readonly int Offset(int i)
    {
        int q = i / D5, r = i - q * D5, o = r * S5; i = q;
        q = i / D4; r = i - q * D4; o += r * S4; i = q;
        q = i / D3; r = i - q * D3; o += r * S3; i = q;
        q = i / D2; r = i - q * D2; o += r * S2; i = q;
        q = i / D1; r = i - q * D1; o += r * S1; i = q;
        return o + i * S0;
    }
}

/// <summary>
/// Single-precision erf and the normal CDF for GELU, usable on the CPU and inside ILGPU kernels (constants and
/// arithmetic only, one MathF.Exp). Max abs error of <see cref="Erf"/> about 1.2e-7 (measured against float64 erf).
/// <para>
/// |x| &lt; 1: erf(x) = x·P(x²), P of degree 5 (Chebyshev interpolation of erf(√s)/√s on s ∈ [0, 1]).
/// 1 ≤ |x| &lt; 4: erfc(|x|) = exp(Q(u) − x²) with u = (|x| − 2.5)/1.5 and Q of degree 8 interpolating
/// ln(erfc(x)·e^{x²}) on [1, 4] (a slowly varying function, so the float Horner sum stays accurate).
/// |x| ≥ 4: erfc &lt; 1.6e-8, taken as 0 (erf rounds to ±1 there anyway).
/// </para>
/// </summary>
public static class Erf32
{
    public const float P0 = 1.12837911f, P1 = -0.376123428f, P2 = 0.112803169f, P3 = -0.0267150551f, P4 = 0.00492176181f, P5 = -0.000564805989f;
    public const float Q0 = -1.55681527f, Q1 = -0.529021025f, Q2 = 0.126239166f, Q3 = -0.0366475768f, Q4 = 0.0109618492f,
        Q5 = -0.00319030532f, Q6 = 0.0008803971f, Q7 = -0.000227499506f, Q8 = 4.19583994e-05f;
    public const float TailStart = 1f, TailEnd = 4f, TailMid = 2.5f, TailInvHalf = 1f / 1.5f;
    public const float InvSqrt2 = 0.707106781f, InvSqrt2Pi = 0.398942280f;

    /// <summary>erf(x) for |x| &lt; 1 (the small-argument polynomial).</summary>
    public static float ErfSmall(float x)
    {
        float s = x * x;
        return x * (P0 + s * (P1 + s * (P2 + s * (P3 + s * (P4 + s * P5)))));
    }

    /// <summary>erfc(a) for a ≥ 1 (0 beyond 4).</summary>
    public static float ErfcTail(float a)
    {
        if (a >= TailEnd) return 0f;
        float u = (a - TailMid) * TailInvHalf;
        float q = Q0 + u * (Q1 + u * (Q2 + u * (Q3 + u * (Q4 + u * (Q5 + u * (Q6 + u * (Q7 + u * Q8)))))));
        return MathF.Exp(q - a * a);
    }

    public static float Erf(float x)
    {
        float a = x < 0f ? -x : x;
        if (a < TailStart) return ErfSmall(x);
        float r = 1f - ErfcTail(a);
        return x < 0f ? -r : r;
    }

    /// <summary>Φ(x) = ½(1 + erf(x/√2)); for x/√2 ≤ −1 it is ½·erfc(|x|/√2), computed without cancellation.</summary>
    public static float NormalCdf(float x)
    {
        float z = x * InvSqrt2;
        float a = z < 0f ? -z : z;
        if (a < TailStart) return 0.5f + 0.5f * ErfSmall(z);
        float t = 0.5f * ErfcTail(a);
        return z < 0f ? t : 1f - t;
    }

    /// <summary>GELU(x) = x·Φ(x).</summary>
    public static float Gelu(float x) => x * NormalCdf(x);

    /// <summary>d GELU/dx = Φ(x) + x·φ(x), φ the standard normal density.</summary>
    public static float GeluGrad(float x)
    {
        float e = MathF.Exp(-0.5f * x * x);
        float pdfTerm = e == 0f ? 0f : x * e * InvSqrt2Pi;   // 0 (not inf·0) for huge |x|
        return NormalCdf(x) + pdfTerm;
    }
}
