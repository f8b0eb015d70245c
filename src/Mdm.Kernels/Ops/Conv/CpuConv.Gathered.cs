using System.Buffers;

namespace Mdm.Kernels.Cpu;

/// <summary>
/// How one sample's source [Channels, H, W] is laid out for an implicit-GEMM convolution. The padded (and, for a data
/// gradient, zero-dilated) source is split into stride phases: plane (c, a, b) [Hph, Wph] holds source position
/// (i·sh + a, j·sw + b). Output (oh, ow) then reads tap (kh, kw) at plane (c, kh mod sh, kw mod sw), index
/// (oh + kh / sh)·Wph + ow + kw / sw, so every GEMM row (c, kh, kw) is one contiguous window of a plane, shifted by a
/// fixed offset. Outputs are computed over Wph columns per row; the Wph − Wo extra ones are discarded.
/// </summary>
readonly struct GatherPlan
{
    public readonly int Channels, H, W, KH, KW, StrideH, StrideW, PadH, PadW, DilationH, DilationW, Ho, Wo;
    public readonly int PhasesH, PhasesW, Hph, Wph;

    public GatherPlan(int channels, int h, int w, int kh, int kw, int strideH, int strideW, int padH, int padW,
        int dilationH, int dilationW, int ho, int wo)
    {
        Channels = channels; H = h; W = w; KH = kh; KW = kw; StrideH = strideH; StrideW = strideW; PadH = padH; PadW = padW;
        DilationH = dilationH; DilationW = dilationW; Ho = ho; Wo = wo;
        PhasesH = Math.Min(strideH, kh); PhasesW = Math.Min(strideW, kw);
        Hph = ho + (kh - 1) / strideH; Wph = wo + (kw - 1) / strideW;
    }

    public int PlaneSize => Hph * Wph;
    /// <summary>Output positions computed per channel (Ho rows of Wph).</summary>
    public int Positions => Ho * Wph;
    /// <summary>The GEMM's inner dimension, Channels·KH·KW, in the weight's (c, kh, kw) order.</summary>
    public int K => Channels * KH * KW;
    /// <summary>Floats of one sample's planes, plus the (KW − 1) / sw that the last discarded columns read past them.</summary>
    public long GatherFloats => (long)Channels * PhasesH * PhasesW * PlaneSize + KW;

    /// <summary>offsets[(c·KH + kh)·KW + kw] = start of GEMM row (c, kh, kw) in the planes.</summary>
    public unsafe void FillOffsets(int* offsets)
    {
        for (int c = 0; c < Channels; c++)
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++)
                    offsets[(c * KH + kh) * KW + kw] = checked(((c * PhasesH + kh % StrideH) * PhasesW + kw % StrideW) * PlaneSize
                        + kh / StrideH * Wph + kw / StrideW);
    }

    /// <summary>Writes the planes of one sample (every float, zeros in the padding and between dilated samples).</summary>
    public unsafe void Gather(float* src, float* dst)
    {
        for (int c = 0; c < Channels; c++)
            for (int a = 0; a < PhasesH; a++)
                for (int b = 0; b < PhasesW; b++)
                {
                    float* plane = dst + (long)((c * PhasesH + a) * PhasesW + b) * PlaneSize;
                    for (int i = 0; i < Hph; i++)
                    {
                        var row = new Span<float>(plane + (long)i * Wph, Wph);
                        int ih = SourceIndex(i * StrideH + a - PadH, DilationH, H);
                        if (ih < 0) { row.Clear(); continue; }
                        float* srow = src + ((long)c * H + ih) * W;
                        if (DilationW == 1)
                        {
                            // row[j] = srow[j·sw + b − PadW] between zeroed margins: one copy for stride 1.
                            CpuBackend.ValidRange(Wph, W, StrideW, b - PadW, out int j0, out int j1);
                            row[..j0].Clear();
                            row[j1..].Clear();
                            float* from = srow + b - PadW;
                            if (StrideW == 1) new ReadOnlySpan<float>(from + j0, j1 - j0).CopyTo(row[j0..j1]);
                            else for (int j = j0; j < j1; j++) row[j] = from[(long)j * StrideW];
                        }
                        else
                        {
                            // Zero-dilated (only input-gradient plans, whose stride is 1): source column t lands on row[t·d + PadW − b].
                            row.Clear();
                            int shift = PadW - b;
                            for (int t = Math.Max(0, (-shift + DilationW - 1) / DilationW); t < W; t++)
                            {
                                int j = t * DilationW + shift;
                                if (j >= Wph) break;
                                row[j] = srow[t];
                            }
                        }
                    }
                }
        new Span<float>(dst + GatherFloats - KW, KW).Clear();
    }

    /// <summary>The source index at dilated position r (r = index·dilation), or −1 in the padding or between samples.</summary>
    static int SourceIndex(int r, int dilation, int size)
    {
        if (r < 0 || r % dilation != 0) return -1;
        int s = r / dilation;
        return s < size ? s : -1;
    }
}

public sealed unsafe partial class CpuBackend
{
    /// <summary>
    /// dst[n] [cout, Ho, Wo] = weights [cout, K] · (the gathered planes of src[n]) (+ bias[co]) for n in [0, samples).
    /// Samples are split across the cores, each gathered, multiplied and written back by one worker in its own
    /// buffers; a single sample runs its GEMM tiles across the cores instead.
    /// </summary>
    static void GatheredConv(in GatherPlan plan, int samples, int cout, float* src, long srcStride, float* weights, float* bias,
        float* dst, long dstStride)
    {
        int workers = Math.Clamp(Math.Min(Environment.ProcessorCount, samples), 1, int.MaxValue);
        long perWorker = plan.GatherFloats + (long)cout * plan.Positions;
        float[] buffer = ArrayPool<float>.Shared.Rent(checked((int)(workers * perWorker)));
        int[] offsetArray = ArrayPool<int>.Shared.Rent(plan.K);
        try
        {
            fixed (float* pbuf = buffer)
            fixed (int* poff = offsetArray)
            {
                plan.FillOffsets(poff);
                var geo = plan;
                nint nbuf = (nint)pbuf, noff = (nint)poff, nsrc = (nint)src, nw = (nint)weights, nb = (nint)bias, ndst = (nint)dst;
                if (workers == 1)
                {
                    for (int n = 0; n < samples; n++)
                        GatheredSample(geo, cout, src + n * srcStride, weights, bias, dst + n * dstStride, pbuf, poff, parallel: true);
                    return;
                }
                Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
                {
                    float* own = (float*)nbuf + w * perWorker;
                    for (int n = (int)((long)samples * w / workers), end = (int)((long)samples * (w + 1) / workers); n < end; n++)
                        GatheredSample(geo, cout, (float*)nsrc + n * srcStride, (float*)nw, (float*)nb, (float*)ndst + n * dstStride,
                            own, (int*)noff, parallel: false);
                });
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
            ArrayPool<int>.Shared.Return(offsetArray);
        }
    }

    /// <summary>One sample: gather, GEMM into [cout, Ho·Wph] after the planes in <paramref name="scratch"/>, keep the Wo real columns.</summary>
    static void GatheredSample(in GatherPlan plan, int cout, float* src, float* weights, float* bias, float* dst,
        float* scratch, int* offsets, bool parallel)
    {
        plan.Gather(src, scratch);
        float* wide = scratch + plan.GatherFloats;
        CpuGemm.SgemmGathered(cout, plan.Positions, plan.K, weights, plan.K, scratch, offsets, wide, plan.Positions, parallel);
        int ho = plan.Ho, wo = plan.Wo, wph = plan.Wph;
        for (int co = 0; co < cout; co++)
            for (int oh = 0; oh < ho; oh++)
            {
                var from = new ReadOnlySpan<float>(wide + (long)co * plan.Positions + (long)oh * wph, wo);
                var to = new Span<float>(dst + ((long)co * ho + oh) * wo, wo);
                if (bias is null) from.CopyTo(to);
                else System.Numerics.Tensors.TensorPrimitives.Add(from, bias[co], to);
            }
    }

    /// <summary>The forward convolution's plan: x itself, padded and split into stride phases.</summary>
    static GatherPlan ForwardPlan(in Conv2dGeometry g) =>
        new(g.Cin, g.H, g.W, g.KH, g.KW, g.StrideH, g.StrideW, g.PadH, g.PadW, 1, 1, g.Ho, g.Wo);

    /// <summary>
    /// Whether the input gradient runs as a stride-1 convolution of dy (zero-dilated by the stride) with the flipped,
    /// transposed kernel: it needs padding KH − 1 − PadH ≥ 0 (and the same along W).
    /// </summary>
    static bool GatheredInputGradient(in Conv2dGeometry g) => g.PadH <= g.KH - 1 && g.PadW <= g.KW - 1;

    static GatherPlan InputGradientPlan(in Conv2dGeometry g) =>
        new(g.Cout, g.Ho, g.Wo, g.KH, g.KW, 1, 1, g.KH - 1 - g.PadH, g.KW - 1 - g.PadW, g.StrideH, g.StrideW, g.H, g.W);

    /// <summary>flipped [Cin, Cout, KH, KW] = weight [Cout, Cin, KH − 1 − kh, KW − 1 − kw].</summary>
    static void FlipKernel(in Conv2dGeometry g, float* weight, float* flipped)
    {
        int taps = g.KH * g.KW;
        for (int co = 0; co < g.Cout; co++)
            for (int ci = 0; ci < g.Cin; ci++)
            {
                float* from = weight + ((long)co * g.Cin + ci) * taps;
                float* to = flipped + ((long)ci * g.Cout + co) * taps;
                for (int t = 0; t < taps; t++) to[t] = from[taps - 1 - t];
            }
    }
}
