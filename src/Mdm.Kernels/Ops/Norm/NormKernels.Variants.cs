using System.Runtime.CompilerServices;
using ILGPU;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>
/// The GroupNorm forward's variants (<see cref="GroupNormVariant"/>), same arguments and outputs as
/// <see cref="NormKernels.GroupNormForward"/> (two sweeps for the statistics, then the normalise sweep):
/// one-pass statistics — shifted sums Σ(x − s) and Σ(x − s)² with s the row's first element (no cancellation when the
/// data sit far from 0), both reduced at once, then the normalise sweep: two sweeps and one reduction instead of three
/// and two; and warp rows — the same one-pass statistics with one warp per (n, g) row and several rows per group,
/// reduced by shuffles alone (no barrier, no shared memory), for rows too short to keep a whole group busy.
/// </summary>
public static partial class NormKernels
{
    [Kernel("GroupNormForwardOnePass", typeof(float), typeof(F32Widen), typeof(float), typeof(F32NormStore))]
    [Kernel("GroupNormForwardOnePassBF16", typeof(float), typeof(F32Widen), typeof(ushort), typeof(BF16NormStore))]
    [Kernel("GroupNormForwardOnePassBF16X", typeof(ushort), typeof(BF16Widen), typeof(float), typeof(F32NormStore))]
    [Kernel("GroupNormForwardOnePassBF16XBF16", typeof(ushort), typeof(BF16Widen), typeof(ushort), typeof(BF16NormStore))]
    public static void GroupNormForwardOnePass<TX, TXW, T, TStore>(ArrayView<TX> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> a,
        ArrayView<float> b, ArrayView<T> y, ArrayView<float> mean, ArrayView<float> rstd, GroupNormParams p)
        where TX : unmanaged where TXW : struct, IWiden<TX> where T : unmanaged where TStore : struct, INormStore<T>
    {
        var xw = default(TXW);
        var perWarpA = SharedMemory.Allocate<float>(32);
        var perWarpB = SharedMemory.Allocate<float>(32);
        int tid = Group.IdxX, threads = Group.DimX;
        int cpg = p.C / p.Groups, m = cpg * p.S, rows = p.N * p.Groups;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            int start = row * m;
            float shift = xw.Widen(x[start]);
            var sums = ShiftedSums<TX, TXW>(x, start, m, shift, tid, threads);
            var total = BlockSum2(perWarpA, perWarpB, sums.A, sums.B);
            var (mu, rs) = Statistics(total, shift, m, p.Eps);
            if (tid == 0) { mean[row] = mu; rstd[row] = rs; }
            NormalizeRow<TX, TXW, T, TStore>(x, gamma, beta, a, b, y, p, row, mu, rs, tid, threads);
        }
    }

    [Kernel("GroupNormForwardWarpRows", typeof(float), typeof(F32Widen), typeof(float), typeof(F32NormStore))]
    [Kernel("GroupNormForwardWarpRowsBF16", typeof(float), typeof(F32Widen), typeof(ushort), typeof(BF16NormStore))]
    [Kernel("GroupNormForwardWarpRowsBF16X", typeof(ushort), typeof(BF16Widen), typeof(float), typeof(F32NormStore))]
    [Kernel("GroupNormForwardWarpRowsBF16XBF16", typeof(ushort), typeof(BF16Widen), typeof(ushort), typeof(BF16NormStore))]
    public static void GroupNormForwardWarpRows<TX, TXW, T, TStore>(ArrayView<TX> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> a,
        ArrayView<float> b, ArrayView<T> y, ArrayView<float> mean, ArrayView<float> rstd, GroupNormParams p)
        where TX : unmanaged where TXW : struct, IWiden<TX> where T : unmanaged where TStore : struct, INormStore<T>
    {
        var xw = default(TXW);
        int lane = Warp.LaneIdx, lanes = Warp.WarpSize, warps = Group.DimX / lanes;
        int cpg = p.C / p.Groups, m = cpg * p.S, rows = p.N * p.Groups;
        // Rows are dealt to warps; a warp's trip count is uniform over its lanes, so the shuffles see every lane.
        for (int row = Grid.IdxX * warps + Warp.WarpIdx; row < rows; row += Grid.DimX * warps)
        {
            int start = row * m;
            float shift = xw.Widen(x[start]);
            var sums = ShiftedSums<TX, TXW>(x, start, m, shift, lane, lanes);
            var total = WarpSum2(sums.A, sums.B);
            var (mu, rs) = Statistics(total, shift, m, p.Eps);
            if (lane == 0) { mean[row] = mu; rstd[row] = rs; }
            NormalizeRow<TX, TXW, T, TStore>(x, gamma, beta, a, b, y, p, row, mu, rs, lane, lanes);
        }
    }

    /// <summary>This thread's Σ(x − shift) and Σ(x − shift)² over its strided share of the row (two loads in flight).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static SumPair ShiftedSums<TX, TXW>(ArrayView<TX> x, int start, int m, float shift, int tid, int threads)
        where TX : unmanaged where TXW : struct, IWiden<TX>
    {
        var xw = default(TXW);
        float s0 = 0f, s1 = 0f, q0 = 0f, q1 = 0f;
        int i = tid;
        for (; i < m - threads; i += 2 * threads)
        {
            float d0 = xw.Widen(x[start + i]) - shift, d1 = xw.Widen(x[start + i + threads]) - shift;
            s0 += d0; q0 += d0 * d0; s1 += d1; q1 += d1 * d1;
        }
        for (; i < m; i += threads)
        {
            float d = xw.Widen(x[start + i]) - shift;
            s0 += d; q0 += d * d;
        }
        SumPair r;
        r.A = s0 + s1;
        r.B = q0 + q1;
        return r;
    }

    /// <summary>Mean and 1/√(var + eps) from the shifted sums (variance clamped at 0 against rounding).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static (float Mean, float Rstd) Statistics(SumPair total, float shift, int m, float eps)
    {
        float meanShifted = total.A / m;
        float variance = MathF.Max(total.B / m - meanShifted * meanShifted, 0f);
        return (shift + meanShifted, 1f / MathF.Sqrt(variance + eps));
    }

    /// <summary>y = [SiLU](x·scale + shift) over one (n, g) row, channel by channel, strided over the given threads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void NormalizeRow<TX, TXW, T, TStore>(ArrayView<TX> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> a, ArrayView<float> b,
        ArrayView<T> y, GroupNormParams p, int row, float mu, float rs, int tid, int threads)
        where TX : unmanaged where TXW : struct, IWiden<TX> where T : unmanaged where TStore : struct, INormStore<T>
    {
        var xw = default(TXW);
        int cpg = p.C / p.Groups, nn = row / p.Groups, c0 = (row - nn * p.Groups) * cpg, start = row * cpg * p.S;
        for (int cc = 0; cc < cpg; cc++)
        {
            int ch = c0 + cc, cs = start + cc * p.S;
            float scale = ChannelScale(gamma, a, p, nn, ch, rs), offset = ChannelShift(beta, a, b, p, nn, ch);
            for (int j = tid; j < p.S; j += threads) y[cs + j] = default(TStore).From(Activate((xw.Widen(x[cs + j]) - mu) * scale + offset, p.Silu));
        }
    }

    /// <summary>Two sums over the group: warp shuffles, one shared slot per warp each, one barrier pair.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static SumPair BlockSum2(ArrayView<float> perWarpA, ArrayView<float> perWarpB, float a, float b)
    {
        for (int o = Warp.WarpSize / 2; o > 0; o /= 2) { a += Warp.ShuffleDown(a, o); b += Warp.ShuffleDown(b, o); }
        if (Warp.LaneIdx == 0) { perWarpA[Warp.WarpIdx] = a; perWarpB[Warp.WarpIdx] = b; }
        Group.Barrier();
        SumPair r;
        r.A = 0f; r.B = 0f;
        for (int w = 0; w < Group.DimX / Warp.WarpSize; w++) { r.A += perWarpA[w]; r.B += perWarpB[w]; }
        Group.Barrier();
        return r;
    }

    /// <summary>Two sums over the warp, in every lane (butterfly shuffles).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static SumPair WarpSum2(float a, float b)
    {
        for (int o = Warp.WarpSize / 2; o > 0; o /= 2) { a += Warp.ShuffleXor(a, o); b += Warp.ShuffleXor(b, o); }
        SumPair r;
        r.A = a; r.B = b;
        return r;
    }
}
