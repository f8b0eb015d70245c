using System.Runtime.CompilerServices;
using ILGPU;

namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>
/// One reading of a convolution as C [M, N] = A [M, K] · B [K, N] for <see cref="ConvTensorCoreKernels"/>: where
/// operand elements and output elements live in the NCHW tensors. Gathers return 8 consecutive k of one row as four
/// bf16 pairs (the lower k in the low half), zero for taps outside the tensor, the padding or the stride grid, and
/// for rows or k past the GEMM. Fixed per compiled kernel.
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

/// <summary>Index arithmetic the three readings share: divisions by the window size with constant fast paths for 3×3
/// and 1×1, the pair packing, and a clamped load (index 0 stands in for a tap that reads nothing).</summary>
static class ConvGather
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int DivWindow(int x, int d) => d == 9 ? x / 9 : d == 3 ? x / 3 : d == 1 ? x : x / d;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Load(ArrayView<ushort> t, bool ok, int index) => ok ? t[ok ? index : 0] : 0u;

    /// <summary>Adds element e of 8 (0 or a bf16) into its pair word.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static U4 With(U4 w, int e, uint v)
    {
        uint s = (e & 1) == 0 ? v : v << 16;
        return e < 2 ? new U4(w.X | s, w.Y, w.Z, w.W) : e < 4 ? new U4(w.X, w.Y | s, w.Z, w.W)
             : e < 6 ? new U4(w.X, w.Y, w.Z | s, w.W) : new U4(w.X, w.Y, w.Z, w.W | s);
    }

    /// <summary>Output tap o = t / stride where t lands on the stride grid inside [0, size), else −1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int OnGrid(int t, int stride, int size)
    {
        int o = stride == 1 ? t : stride == 2 ? t >> 1 : t / stride;
        return t >= 0 && o * stride == t && o < size ? o : -1;
    }
}

/// <summary>Forward: M = Cout, N = batch·Ho·Wo, K = Cin·KH·KW; a = weight [Cout, K], b = x; C → y [N, Cout, Ho, Wo].</summary>
public struct ConvForward : IConvGemm
{
    public readonly bool ARowFastest => false;
    public readonly bool BRowFastest => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly U4 GatherA(ArrayView<ushort> a, in ConvGemmArgs p, int row, int k)
    {
        U4 w = default;
        for (int e = 0; e < 8; e++) w = ConvGather.With(w, e, ConvGather.Load(a, row < p.M && k + e < p.K, row * p.K + k + e));
        return w;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly U4 GatherB(ArrayView<ushort> b, in ConvGemmArgs p, int row, int k)
    {
        var g = p.G;
        int hw = g.Ho * g.Wo, n = row / hw, pix = row - n * hw, oh = pix / g.Wo, ow = pix - oh * g.Wo;
        int ih0 = oh * g.StrideH - g.PadH, iw0 = ow * g.StrideW - g.PadW, window = g.KH * g.KW;
        int ci = ConvGather.DivWindow(k, window), tap = k - ci * window, kh = ConvGather.DivWindow(tap, g.KW), kw = tap - kh * g.KW;
        int plane = (n * g.Cin + ci) * g.H;
        U4 w = default;
        for (int e = 0; e < 8; e++)
        {
            int ih = ih0 + kh, iw = iw0 + kw;
            bool ok = row < p.N && k + e < p.K && (uint)ih < (uint)g.H && (uint)iw < (uint)g.W;
            w = ConvGather.With(w, e, ConvGather.Load(b, ok, (plane + ih) * g.W + iw));
            if (++kw == g.KW) { kw = 0; if (++kh == g.KH) { kh = 0; plane += g.H; } }
        }
        return w;
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
        int window = p.G.KH * p.G.KW, co = ConvGather.DivWindow(k, window), tap = k - co * window;
        U4 w = default;
        for (int e = 0; e < 8; e++)
        {
            w = ConvGather.With(w, e, ConvGather.Load(a, row < p.M && k + e < p.K, (co * p.G.Cin + row) * window + tap));
            if (++tap == window) { tap = 0; co++; }
        }
        return w;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly U4 GatherB(ArrayView<ushort> b, in ConvGemmArgs p, int row, int k)
    {
        var g = p.G;
        int hw = g.H * g.W, n = row / hw, pix = row - n * hw, ih = pix / g.W, iw = pix - ih * g.W, window = g.KH * g.KW;
        int co = ConvGather.DivWindow(k, window), tap = k - co * window, kh = ConvGather.DivWindow(tap, g.KW), kw = tap - kh * g.KW;
        int plane = (n * g.Cout + co) * g.Ho;
        U4 w = default;
        for (int e = 0; e < 8; e++)
        {
            int oh = ConvGather.OnGrid(ih + g.PadH - kh, g.StrideH, g.Ho), ow = ConvGather.OnGrid(iw + g.PadW - kw, g.StrideW, g.Wo);
            bool ok = row < p.N && k + e < p.K && oh >= 0 && ow >= 0;
            w = ConvGather.With(w, e, ConvGather.Load(b, ok, (plane + oh) * g.Wo + ow));
            if (++kw == g.KW) { kw = 0; if (++kh == g.KH) { kh = 0; plane += g.Ho; } }
        }
        return w;
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
        int hw = p.G.Ho * p.G.Wo, n = k / hw, pix = k - n * hw;
        U4 w = default;
        for (int e = 0; e < 8; e++)
        {
            w = ConvGather.With(w, e, ConvGather.Load(a, row < p.M && k + e < p.K, (n * p.G.Cout + row) * hw + pix));
            if (++pix == hw) { pix = 0; n++; }
        }
        return w;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly U4 GatherB(ArrayView<ushort> b, in ConvGemmArgs p, int row, int k)
    {
        var g = p.G;
        int window = g.KH * g.KW, ci = ConvGather.DivWindow(row, window), tap = row - ci * window;
        int kh = ConvGather.DivWindow(tap, g.KW), kw = tap - kh * g.KW;
        int hw = g.Ho * g.Wo, n = k / hw, pix = k - n * hw, oh = pix / g.Wo, ow = pix - oh * g.Wo;
        U4 w = default;
        for (int e = 0; e < 8; e++)
        {
            int ih = oh * g.StrideH - g.PadH + kh, iw = ow * g.StrideW - g.PadW + kw;
            bool ok = row < p.N && k + e < p.K && (uint)ih < (uint)g.H && (uint)iw < (uint)g.W;
            w = ConvGather.With(w, e, ConvGather.Load(b, ok, ((n * g.Cin + ci) * g.H + ih) * g.W + iw));
            if (++ow == g.Wo) { ow = 0; if (++oh == g.Ho) { oh = 0; n++; } }
        }
        return w;
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
