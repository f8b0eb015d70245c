using System.Runtime.CompilerServices;
using ILGPU;

namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>
/// One reading of a convolution as C [M, N] = A [M, K] · B [K, N] for <see cref="ConvTensorCoreKernels"/>: where
/// operand elements and output elements live in the NCHW tensors. Gathers return 8 consecutive k of one row as four
/// bf16 pairs (the lower k in the low half), zero for taps outside the tensor, the padding or the stride grid, and
/// for rows or k past the GEMM. Kernel windows are 3×3 or 1×1 (<see cref="ConvGather.DivWindow"/>). Fixed per
/// compiled kernel.
/// </summary>
public interface IConvGemm
{
    /// <summary>Chunk order of the operand's tile copy: consecutive lanes on consecutive rows (true) or on consecutive
    /// k chunks of one row (false): whichever keeps a warp's reads close together in memory.</summary>
    bool ARowFastest { get; }
    bool BRowFastest { get; }
    U4 GatherA(ArrayView<ushort> a, in ConvGemmArgs p, int row, int k);
    U4 GatherB(ArrayView<ushort> b, in ConvGemmArgs p, int row, int k);
    /// <summary>Byte address of A(row, k .. k+7) when <see cref="ConvGemmArgs.AsyncA"/> says it is one aligned run.</summary>
    long AAddress(in ConvGemmArgs p, int row, int k);
    /// <summary>Element index of C(i, j) in the output tensor.</summary>
    int OutputIndex(in ConvGemmArgs p, int i, int j);
}

/// <summary>One element of a gather and the step to the next k. Passed by value, so a chunk's 8 taps are separate
/// registers and their loads independent.</summary>
public interface ITap<TSelf> where TSelf : struct, ITap<TSelf>
{
    /// <summary>Whether the tap reads anything (false: padding, off the stride grid, past the tensor or the GEMM).</summary>
    bool Ok(in ConvGemmArgs p);
    /// <summary>The element index; only read when <see cref="Ok"/>.</summary>
    int Index(in ConvGemmArgs p);
    TSelf Next(in ConvGemmArgs p);
}

/// <summary>Index arithmetic the three readings share.</summary>
public static class ConvGather
{
    /// <summary>x / d for the window sizes the kernels take (9, 3, 1): constant divisors, a multiply each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int DivWindow(int x, int d) => d == 9 ? x / 9 : d == 3 ? x / 3 : x;

    /// <summary>8 taps from <paramref name="t0"/> as four bf16 pairs. Straight-line code, so all 8 loads are in flight
    /// together (a loop would wait for each in turn). A tap that reads nothing loads index 0 and gives 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static U4 Gather8<TT>(ArrayView<ushort> t, in ConvGemmArgs p, TT t0) where TT : struct, ITap<TT>
    {
        TT t1 = t0.Next(p), t2 = t1.Next(p), t3 = t2.Next(p), t4 = t3.Next(p), t5 = t4.Next(p), t6 = t5.Next(p), t7 = t6.Next(p);
        bool o0 = t0.Ok(p), o1 = t1.Ok(p), o2 = t2.Ok(p), o3 = t3.Ok(p), o4 = t4.Ok(p), o5 = t5.Ok(p), o6 = t6.Ok(p), o7 = t7.Ok(p);
        uint v0 = t[o0 ? t0.Index(p) : 0], v1 = t[o1 ? t1.Index(p) : 0], v2 = t[o2 ? t2.Index(p) : 0], v3 = t[o3 ? t3.Index(p) : 0];
        uint v4 = t[o4 ? t4.Index(p) : 0], v5 = t[o5 ? t5.Index(p) : 0], v6 = t[o6 ? t6.Index(p) : 0], v7 = t[o7 ? t7.Index(p) : 0];
        return new U4(Pair(o0 ? v0 : 0, o1 ? v1 : 0), Pair(o2 ? v2 : 0, o3 ? v3 : 0), Pair(o4 ? v4 : 0, o5 ? v5 : 0), Pair(o6 ? v6 : 0, o7 ? v7 : 0));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static uint Pair(uint lo, uint hi) => lo | hi << 16;

    /// <summary>Output tap o = t / stride where t lands on the stride grid inside [0, size), else −1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int OnGrid(int t, int stride, int size)
    {
        int o = stride == 1 ? t : stride == 2 ? t >> 1 : t / stride;
        return t >= 0 && o * stride == t && o < size ? o : -1;
    }
}

/// <summary>Consecutive elements of one row: the forward's weights [Cout, K] and wgrad's dy within one sample.</summary>
public readonly struct RowTap(int index, int k, bool rowOk) : ITap<RowTap>
{
    readonly int index = index, k = k;
    readonly bool rowOk = rowOk;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public bool Ok(in ConvGemmArgs p) => rowOk && k < p.K;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public int Index(in ConvGemmArgs p) => index;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public RowTap Next(in ConvGemmArgs p) => new(index + 1, k + 1, rowOk);
}

/// <summary>Forward: M = Cout, N = batch·Ho·Wo, K = Cin·KH·KW; a = weight [Cout, K], b = x; C → y [N, Cout, Ho, Wo].</summary>
public struct ConvForward : IConvGemm
{
    public readonly bool ARowFastest => false;
    public readonly bool BRowFastest => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly U4 GatherA(ArrayView<ushort> a, in ConvGemmArgs p, int row, int k) =>
        ConvGather.Gather8(a, p, new RowTap(row * p.K + k, k, row < p.M));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly U4 GatherB(ArrayView<ushort> b, in ConvGemmArgs p, int row, int k)
    {
        var g = p.G;
        int hw = g.Ho * g.Wo, n = row / hw, pix = row - n * hw, oh = pix / g.Wo, ow = pix - oh * g.Wo, window = g.KH * g.KW;
        int ci = ConvGather.DivWindow(k, window), tap = k - ci * window, kh = ConvGather.DivWindow(tap, g.KW), kw = tap - kh * g.KW;
        return ConvGather.Gather8(b, p, new XTap(k, (n * g.Cin + ci) * g.H, oh * g.StrideH - g.PadH + kh, ow * g.StrideW - g.PadW + kw, kh, kw, row < p.N));
    }

    /// <summary>x[n, ci, ih, iw] for tap (kh, kw) of one output pixel, plane = (n·Cin + ci)·H; k steps kw, kh, then ci.</summary>
    public readonly struct XTap(int k, int plane, int ih, int iw, int kh, int kw, bool rowOk) : ITap<XTap>
    {
        readonly int k = k, plane = plane, ih = ih, iw = iw, kh = kh, kw = kw;
        readonly bool rowOk = rowOk;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Ok(in ConvGemmArgs p) => rowOk && k < p.K && (uint)ih < (uint)p.G.H && (uint)iw < (uint)p.G.W;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int Index(in ConvGemmArgs p) => (plane + ih) * p.G.W + iw;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public XTap Next(in ConvGemmArgs p)
        {
            var g = p.G;
            if (kw + 1 < g.KW) return new(k + 1, plane, ih, iw + 1, kh, kw + 1, rowOk);
            if (kh + 1 < g.KH) return new(k + 1, plane, ih + 1, iw + 1 - g.KW, kh + 1, 0, rowOk);
            return new(k + 1, plane + g.H, ih + 1 - g.KH, iw + 1 - g.KW, 0, 0, rowOk);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly long AAddress(in ConvGemmArgs p, int row, int k) => p.A + 2L * ((long)row * p.K + k);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly int OutputIndex(in ConvGemmArgs p, int i, int j)
    {
        int hw = p.G.Ho * p.G.Wo, n = j / hw;
        return (n * p.G.Cout + i) * hw + j - n * hw;
    }
}

/// <summary>Input gradient (the transposed convolution): M = Cin, N = batch·H·W, K = Cout·KH·KW; a = weight, b = dy;
/// C → dx [N, Cin, H, W]. Tap (kh, kw) of input pixel (ih, iw) reads dy at ((ih + PadH − kh) / StrideH, …) when that
/// lands on the stride grid: three taps in four read zero at stride 2.</summary>
public struct ConvDgrad : IConvGemm
{
    public readonly bool ARowFastest => false;
    public readonly bool BRowFastest => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly U4 GatherA(ArrayView<ushort> a, in ConvGemmArgs p, int row, int k)
    {
        int window = p.G.KH * p.G.KW, co = ConvGather.DivWindow(k, window);
        return ConvGather.Gather8(a, p, new WeightTap(k, co, k - co * window, row, row < p.M));
    }

    /// <summary>weight[co, ci, tap] for the input channel ci = the row; k steps the tap, then co.</summary>
    public readonly struct WeightTap(int k, int co, int tap, int ci, bool rowOk) : ITap<WeightTap>
    {
        readonly int k = k, co = co, tap = tap, ci = ci;
        readonly bool rowOk = rowOk;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Ok(in ConvGemmArgs p) => rowOk && k < p.K;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int Index(in ConvGemmArgs p) => (co * p.G.Cin + ci) * (p.G.KH * p.G.KW) + tap;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public WeightTap Next(in ConvGemmArgs p) =>
            tap + 1 < p.G.KH * p.G.KW ? new(k + 1, co, tap + 1, ci, rowOk) : new(k + 1, co + 1, 0, ci, rowOk);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly U4 GatherB(ArrayView<ushort> b, in ConvGemmArgs p, int row, int k)
    {
        var g = p.G;
        int hw = g.H * g.W, n = row / hw, pix = row - n * hw, ih = pix / g.W, iw = pix - ih * g.W, window = g.KH * g.KW;
        int co = ConvGather.DivWindow(k, window), tap = k - co * window, kh = ConvGather.DivWindow(tap, g.KW), kw = tap - kh * g.KW;
        return ConvGather.Gather8(b, p, new DyTap(k, (n * g.Cout + co) * g.Ho, ih + g.PadH - kh, iw + g.PadW - kw, kh, kw, row < p.N));
    }

    /// <summary>dy[n, co, th / StrideH, tw / StrideW] with th = ih + PadH − kh, plane = (n·Cout + co)·Ho.</summary>
    public readonly struct DyTap(int k, int plane, int th, int tw, int kh, int kw, bool rowOk) : ITap<DyTap>
    {
        readonly int k = k, plane = plane, th = th, tw = tw, kh = kh, kw = kw;
        readonly bool rowOk = rowOk;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Ok(in ConvGemmArgs p) =>
            rowOk && k < p.K && ConvGather.OnGrid(th, p.G.StrideH, p.G.Ho) >= 0 && ConvGather.OnGrid(tw, p.G.StrideW, p.G.Wo) >= 0;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int Index(in ConvGemmArgs p) =>
            (plane + ConvGather.OnGrid(th, p.G.StrideH, p.G.Ho)) * p.G.Wo + ConvGather.OnGrid(tw, p.G.StrideW, p.G.Wo);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public DyTap Next(in ConvGemmArgs p)
        {
            var g = p.G;
            if (kw + 1 < g.KW) return new(k + 1, plane, th, tw - 1, kh, kw + 1, rowOk);
            if (kh + 1 < g.KH) return new(k + 1, plane, th - 1, tw - 1 + g.KW, kh + 1, 0, rowOk);
            return new(k + 1, plane + g.Ho, th - 1 + g.KH, tw - 1 + g.KW, 0, 0, rowOk);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly long AAddress(in ConvGemmArgs p, int row, int k) => p.A;   // never aligned runs: always gathered

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly int OutputIndex(in ConvGemmArgs p, int i, int j)
    {
        int hw = p.G.H * p.G.W, n = j / hw;
        return (n * p.G.Cin + i) * hw + j - n * hw;
    }
}

/// <summary>Weight gradient: M = Cout, N = Cin·KH·KW, K = batch·Ho·Wo; a = dy, b = x; C → dweight [Cout, Cin, KH, KW].</summary>
public struct ConvWgrad : IConvGemm
{
    public readonly bool ARowFastest => false;
    public readonly bool BRowFastest => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly U4 GatherA(ArrayView<ushort> a, in ConvGemmArgs p, int row, int k)
    {
        int hw = p.G.Ho * p.G.Wo, n = k / hw;
        return ConvGather.Gather8(a, p, new DyTap(k, n, k - n * hw, row, row < p.M));
    }

    /// <summary>dy[n, co, pix] for the output channel co = the row; k steps the pixel, then the sample.</summary>
    public readonly struct DyTap(int k, int n, int pix, int co, bool rowOk) : ITap<DyTap>
    {
        readonly int k = k, n = n, pix = pix, co = co;
        readonly bool rowOk = rowOk;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Ok(in ConvGemmArgs p) => rowOk && k < p.K;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int Index(in ConvGemmArgs p) => (n * p.G.Cout + co) * (p.G.Ho * p.G.Wo) + pix;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public DyTap Next(in ConvGemmArgs p) =>
            pix + 1 < p.G.Ho * p.G.Wo ? new(k + 1, n, pix + 1, co, rowOk) : new(k + 1, n + 1, 0, co, rowOk);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly U4 GatherB(ArrayView<ushort> b, in ConvGemmArgs p, int row, int k)
    {
        var g = p.G;
        int window = g.KH * g.KW, ci = ConvGather.DivWindow(row, window), tap = row - ci * window;
        int kh = ConvGather.DivWindow(tap, g.KW), kw = tap - kh * g.KW;
        int hw = g.Ho * g.Wo, n = k / hw, pix = k - n * hw, oh = pix / g.Wo, ow = pix - oh * g.Wo;
        return ConvGather.Gather8(b, p, new XTap(k, n, oh, ow, ci, kh, kw, row < p.N));
    }

    /// <summary>x[n, ci, oh·StrideH − PadH + kh, ow·StrideW − PadW + kw] for the weight (ci, kh, kw) = the row; k steps
    /// ow, oh, then the sample.</summary>
    public readonly struct XTap(int k, int n, int oh, int ow, int ci, int kh, int kw, bool rowOk) : ITap<XTap>
    {
        readonly int k = k, n = n, oh = oh, ow = ow, ci = ci, kh = kh, kw = kw;
        readonly bool rowOk = rowOk;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Ok(in ConvGemmArgs p) =>
            rowOk && k < p.K && (uint)(oh * p.G.StrideH - p.G.PadH + kh) < (uint)p.G.H && (uint)(ow * p.G.StrideW - p.G.PadW + kw) < (uint)p.G.W;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int Index(in ConvGemmArgs p) =>
            ((n * p.G.Cin + ci) * p.G.H + oh * p.G.StrideH - p.G.PadH + kh) * p.G.W + ow * p.G.StrideW - p.G.PadW + kw;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public XTap Next(in ConvGemmArgs p)
        {
            if (ow + 1 < p.G.Wo) return new(k + 1, n, oh, ow + 1, ci, kh, kw, rowOk);
            if (oh + 1 < p.G.Ho) return new(k + 1, n, oh + 1, 0, ci, kh, kw, rowOk);
            return new(k + 1, n + 1, 0, 0, ci, kh, kw, rowOk);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly long AAddress(in ConvGemmArgs p, int row, int k)
    {
        int hw = p.G.Ho * p.G.Wo, n = k / hw;
        return p.A + 2L * ((long)(n * p.G.Cout + row) * hw + k - n * hw);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly int OutputIndex(in ConvGemmArgs p, int i, int j) => i * p.N + j;
}
