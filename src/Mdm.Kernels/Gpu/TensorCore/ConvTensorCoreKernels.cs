using System.Runtime.CompilerServices;
using ILGPU;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>Arguments of <see cref="ConvTensorCoreKernels.Conv{TP, TW, TM}"/>: the convolution, the GEMM it is read as
/// (M × N over K) and the epilogue. Element indices into each NCHW tensor must fit in 32 bits (the host checks).</summary>
public struct ConvGemmArgs
{
    public Conv2dGeometry G;
    /// <summary>Device address of operand A's tensor, read with cp.async when <see cref="AsyncA"/> is 1.</summary>
    public long A;
    public int M, N, K, TilesN, KTiles;
    /// <summary>Split-K: grid row y sums slices [y·KTiles/Splits, (y+1)·KTiles/Splits) and adds into a zeroed output
    /// (atomically) when Splits &gt; 1; no epilogue then.</summary>
    public int Splits;
    /// <summary>1: A's 8-element chunks are 16-byte aligned runs in memory (cp.async); 0: gathered element by element.</summary>
    public int AsyncA;
    /// <summary>Forward only: bias[row] added, then SiLU when <see cref="Silu"/> is 1, then residual[same index] added.</summary>
    public int HasBias, Silu, HasResidual;
}

/// <summary>Which product of a convolution an implicit GEMM computes.</summary>
public enum ConvPass { Forward, Dgrad, Wgrad }

/// <summary>How the implicit GEMM's epilogue writes one output element of type TY.</summary>
public interface IConvStore<TY> where TY : unmanaged
{
    /// <summary>Split K: adds the partial sum v into the zeroed output and returns true; false when K is not split.</summary>
    bool AddPartial(ArrayView<TY> y, int at, float v, in ConvGemmArgs p);
    TY From(float v);
}

/// <summary>f32 output; split-K partial sums added atomically.</summary>
public struct ConvStoreF32 : IConvStore<float>
{
    public readonly bool AddPartial(ArrayView<float> y, int at, float v, in ConvGemmArgs p)
    {
        if (p.Splits <= 1) return false;
        Atomic.Add(ref y[at], v);
        return true;
    }

    public readonly float From(float v) => v;
}

/// <summary>bf16 output (autocast's conv output): the f32 result after the epilogue rounded once to nearest even. Only
/// the forward writes it, and the forward never splits K (the host launches it with Splits = 1).</summary>
public struct ConvStoreBF16 : IConvStore<ushort>
{
    public readonly bool AddPartial(ArrayView<ushort> y, int at, float v, in ConvGemmArgs p) => false;
    public readonly ushort From(float v) => BFloat16.FromBits((uint)Interop.FloatAsInt(v));
}

/// <summary>
/// Convolution as implicit GEMM on tensor cores, NCHW bf16 in, f32 out (or, for the forward, bf16 out rounded in the
/// epilogue's store: <see cref="ConvStoreBF16"/>). The GEMM's operand tiles are gathered straight
/// from the activations (no im2col or col2im buffer): each thread reads 8 consecutive k of one tile row, zero where the
/// tap falls in the padding, a stride gap or past the tensor, and stores them as one 16-byte shared chunk. Where A is a
/// plain run of memory (forward weights with K a multiple of 8, wgrad's dy with Ho·Wo a multiple of 8) its chunks come
/// by cp.async instead. Elementwise gathers because NCHW places a patch's 8 k values at unrelated addresses (NHWC
/// would make them 8 contiguous channels, one cp.async each).
/// Three readings of the convolution (<see cref="IConvGemm"/>): <see cref="ConvForward"/>, <see cref="ConvDgrad"/>
/// (the transposed convolution, taps that miss the stride grid read zero) and <see cref="ConvWgrad"/>.
/// A group computes a 128×128 tile of the output with the GEMM's warp layouts (<see cref="IGemmWarps"/>); K advances in
/// slices of 64 through two shared stages (2 × 32 KB): each warp gathers its share of the next slice into one stage,
/// then multiplies the other, with one barrier per slice. A warp waits for its own gathers before its mma (no register
/// staging); other warps and groups on the multiprocessor cover that latency. Both operand tiles are K-contiguous with the GEMM's XOR
/// swizzle, so fragments come with plain ldmatrix.x4 (as the GEMM's NT form).
/// Launch: <see cref="IGemmWarps.Threads"/> threads, <see cref="SharedBytes"/> of dynamic shared memory, a grid of
/// (<see cref="Groups"/>, <see cref="ConvGemmArgs.Splits"/>): the weight gradient has few output tiles and a long K, so
/// the host splits its K over more groups.
/// </summary>
public static class ConvTensorCoreKernels
{
    public const int Tile = 128, TileK = 64, OperandBytes = Tile * TileK * 2, StageBytes = 2 * OperandBytes, SharedBytes = 2 * StageBytes;

    /// <summary>The GEMM a pass reads the convolution as, for A's tensor at <paramref name="aAddress"/> (its chunks go by
    /// cp.async when they are aligned 16-byte runs). The epilogue flags start off.</summary>
    public static ConvGemmArgs Args(ConvPass pass, in Conv2dGeometry g, long aAddress)
    {
        int hw = g.Ho * g.Wo, window = g.KH * g.KW;
        var p = new ConvGemmArgs { G = g, A = aAddress };
        (p.M, p.N, p.K) = pass switch
        {
            ConvPass.Forward => (g.Cout, g.N * hw, g.Cin * window),
            ConvPass.Dgrad => (g.Cin, g.N * g.H * g.W, g.Cout * window),
            _ => (g.Cout, g.Cin * window, g.N * hw),
        };
        p.TilesN = (p.N + Tile - 1) / Tile;
        p.KTiles = (p.K + TileK - 1) / TileK;
        p.Splits = 1;
        bool runs = pass == ConvPass.Forward ? p.K % 8 == 0 : pass == ConvPass.Wgrad && hw % 8 == 0;
        p.AsyncA = runs && aAddress % 16 == 0 ? 1 : 0;
        return p;
    }

    /// <summary>Groups to launch along x: one per 128×128 output tile (and <see cref="ConvGemmArgs.Splits"/> along y).</summary>
    public static int Groups(in ConvGemmArgs p) => (p.M + Tile - 1) / Tile * p.TilesN;

    /// <summary>Whether every element index the kernels form (inputs, outputs, the GEMM's M·N) fits in 32 bits.</summary>
    public static bool IndicesFit(in Conv2dGeometry g)
    {
        long x = (long)g.N * g.Cin * g.H * g.W, y = (long)g.N * g.Cout * g.Ho * g.Wo, w = (long)g.Cout * g.Cin * g.KH * g.KW;
        return Math.Max(Math.Max(x, y), w) + 8 < int.MaxValue && (long)g.N * g.H * g.W + Tile < int.MaxValue;
    }

    /// <summary>The CUDA kernel: <see cref="Conv{TP, TW, TM}"/> on the inline-PTX primitives.</summary>
    public static void Conv<TP, TW>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<float> y, ArrayView<float> bias,
        ArrayView<float> residual, ConvGemmArgs p) where TP : struct, IConvGemm where TW : struct, IGemmWarps =>
        Conv<TP, TW, PtxWarpMma, float, ConvStoreF32>(a, b, y, bias, residual, p);

    /// <summary>The CUDA kernel with a bf16 output (the forward under autocast): <see cref="ConvBF16Out{TP, TW, TM}"/>.</summary>
    public static void ConvBF16Out<TP, TW>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> y, ArrayView<float> bias,
        ArrayView<float> residual, ConvGemmArgs p) where TP : struct, IConvGemm where TW : struct, IGemmWarps =>
        Conv<TP, TW, PtxWarpMma, ushort, ConvStoreBF16>(a, b, y, bias, residual, p);

    /// <summary>y = A·B read through <typeparamref name="TP"/> (a and b are its two bf16 tensors), f32 y, on any
    /// implementation of the warp primitives.</summary>
    public static void Conv<TP, TW, TM>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<float> y, ArrayView<float> bias,
        ArrayView<float> residual, ConvGemmArgs p)
        where TP : struct, IConvGemm where TW : struct, IGemmWarps where TM : struct, IWarpMma<TM> =>
        Conv<TP, TW, TM, float, ConvStoreF32>(a, b, y, bias, residual, p);

    /// <summary>As <see cref="Conv{TP, TW, TM}"/> with a bf16 y: the epilogue's f32 value rounded once in the store.</summary>
    public static void ConvBF16Out<TP, TW, TM>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<ushort> y, ArrayView<float> bias,
        ArrayView<float> residual, ConvGemmArgs p)
        where TP : struct, IConvGemm where TW : struct, IGemmWarps where TM : struct, IWarpMma<TM> =>
        Conv<TP, TW, TM, ushort, ConvStoreBF16>(a, b, y, bias, residual, p);

    static void Conv<TP, TW, TM, TY, TS>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<TY> y, ArrayView<float> bias,
        ArrayView<float> residual, ConvGemmArgs p)
        where TP : struct, IConvGemm where TW : struct, IGemmWarps where TM : struct, IWarpMma<TM>
        where TY : unmanaged where TS : struct, IConvStore<TY>
    {
        var smem = SharedMemory.GetDynamic<byte>();
        var w = default(TW);
        var m = default(TM).Bind(smem);
        int tid = Group.IdxX, lane = tid & 31, warp = tid >> 5, g = lane >> 3, r = lane & 7;
        int wm = w.Wide ? warp >> 1 : warp >> 2, colBase = w.Wide ? (warp & 1) * 64 : (warp & 3) * 32;
        int tm = Grid.IdxX / p.TilesN, m0 = tm * Tile, n0 = (Grid.IdxX - tm * p.TilesN) * Tile;

        int first = Grid.IdxY * p.KTiles / p.Splits, end = (Grid.IdxY + 1) * p.KTiles / p.Splits;

        if (first < end) Fill<TP, TM>(m, smem, a, b, p, m0, n0, first * TileK, 0, tid, w.Threads);
        m.WaitAll();
        Group.Barrier();
        Frag8 acc0 = default, acc1 = default, acc2 = default, acc3 = default;   // the warp's row blocks of 16
        for (int it = first; it < end; it++)
        {
            int sa = ((it - first) & 1) * StageBytes, sb = sa + OperandBytes;
            if (it + 1 < end) Fill<TP, TM>(m, smem, a, b, p, m0, n0, (it + 1) * TileK, StageBytes - sa, tid, w.Threads);
            for (int ks = 0; ks < TileK / 16; ks++)
            {
                U4 y0 = FragmentB(m, sb, colBase, g, r, ks), y1 = FragmentB(m, sb, colBase + 16, g, r, ks);
                U4 y2 = w.Wide ? FragmentB(m, sb, colBase + 32, g, r, ks) : default;
                U4 y3 = w.Wide ? FragmentB(m, sb, colBase + 48, g, r, ks) : default;
                acc0 = RowStep(m, acc0, FragmentA(m, sa, wm * 64, lane, ks), y0, y1, y2, y3, w.Wide);
                acc1 = RowStep(m, acc1, FragmentA(m, sa, wm * 64 + 16, lane, ks), y0, y1, y2, y3, w.Wide);
                acc2 = RowStep(m, acc2, FragmentA(m, sa, wm * 64 + 32, lane, ks), y0, y1, y2, y3, w.Wide);
                acc3 = RowStep(m, acc3, FragmentA(m, sa, wm * 64 + 48, lane, ks), y0, y1, y2, y3, w.Wide);
            }
            m.WaitAll();
            Group.Barrier();   // the next stage is in; nobody reads this one any more
        }

        int row = m0 + wm * 64 + (lane >> 2), col = n0 + colBase + (lane & 3) * 2;
        StoreRows<TP, TM, TY, TS>(m, y, bias, residual, p, row, col, acc0, w.Wide);
        StoreRows<TP, TM, TY, TS>(m, y, bias, residual, p, row + 16, col, acc1, w.Wide);
        StoreRows<TP, TM, TY, TS>(m, y, bias, residual, p, row + 32, col, acc2, w.Wide);
        StoreRows<TP, TM, TY, TS>(m, y, bias, residual, p, row + 48, col, acc3, w.Wide);
        if (smem.Length < 0) y[0] = default(TS).From(0f);   // never true; keeps the dynamic shared buffer declared in the PTX
    }

    // Operand tiles: 128 rows (m or n) of 64 k = 8 chunks of 16 bytes, chunk' = chunk ^ (row & 7) as in the GEMM.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Offset(int row, int chunk) => row * 128 + ((chunk ^ (row & 7)) << 4);

    /// <summary>Slice k0 of both operands into the stage at <paramref name="stage"/>: 1024 chunks per operand, chunk c of
    /// the tile = thread tid + q·threads. Row-fastest chunk order puts a warp's lanes on consecutive rows (coalesced where
    /// rows are neighbouring pixels), k-fastest on consecutive k of a row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Fill<TP, TM>(TM m, ArrayView<byte> smem, ArrayView<ushort> a, ArrayView<ushort> b, in ConvGemmArgs p,
        int m0, int n0, int k0, int stage, int tid, int threads) where TP : struct, IConvGemm where TM : struct, IWarpMma<TM>
    {
        var prob = default(TP);
        var words = smem.Cast<uint>();
        for (int q = 0; q < 1024 / threads; q++)
        {
            int c = tid + q * threads;
            int ra = prob.ARowFastest ? c & 127 : c >> 3, ca = prob.ARowFastest ? c >> 7 : c & 7;
            int rb = prob.BRowFastest ? c & 127 : c >> 3, cb = prob.BRowFastest ? c >> 7 : c & 7;
            int offA = stage + Offset(ra, ca), offB = stage + OperandBytes + Offset(rb, cb);
            if (p.AsyncA != 0)
            {
                bool inside = m0 + ra < p.M && k0 + ca * 8 < p.K;
                m.CopyAsync16((uint)offA, inside ? prob.AAddress(p, m0 + ra, k0 + ca * 8) : p.A, inside ? 16u : 0u);
            }
            else Put(words, offA, prob.GatherA(a, p, m0 + ra, k0 + ca * 8));
            Put(words, offB, prob.GatherB(b, p, n0 + rb, k0 + cb * 8));
        }
        m.Commit();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put(ArrayView<uint> words, int byteOffset, U4 v)
    {
        int i = byteOffset >> 2;
        words[i] = v.X; words[i + 1] = v.Y; words[i + 2] = v.Z; words[i + 3] = v.W;
    }

    /// <summary>A's m16k16 fragment of rows row0.. (ldmatrix.x4: lanes 0..15 rows at chunk 2ks, 16..31 at 2ks+1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static U4 FragmentA<TM>(TM m, int sa, int row0, int lane, int ks) where TM : struct, IWarpMma<TM> =>
        m.LoadMatrixX4(sa + Offset(row0 + (lane & 15), ks * 2 + (lane >> 4)));

    /// <summary>B's k16n16 block of columns col0..: (X, Y) = b0, b1 of the first n8 tile, (Z, W) of the second.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static U4 FragmentB<TM>(TM m, int sb, int col0, int g, int r, int ks) where TM : struct, IWarpMma<TM> =>
        m.LoadMatrixX4(sb + Offset(col0 + r + (g >> 1) * 8, ks * 2 + (g & 1)));

    /// <summary>One k16 step of a row block: n8 tiles 0..3 from y0, y1, and 4..7 from y2, y3 in the wide layout.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Frag8 RowStep<TM>(TM m, Frag8 t, U4 x, U4 y0, U4 y1, U4 y2, U4 y3, bool wide) where TM : struct, IWarpMma<TM> => new(
        m.Mma(t.F0, x, y0.X, y0.Y), m.Mma(t.F1, x, y0.Z, y0.W), m.Mma(t.F2, x, y1.X, y1.Y), m.Mma(t.F3, x, y1.Z, y1.W),
        wide ? m.Mma(t.F4, x, y2.X, y2.Y) : t.F4, wide ? m.Mma(t.F5, x, y2.Z, y2.W) : t.F5,
        wide ? m.Mma(t.F6, x, y3.X, y3.Y) : t.F6, wide ? m.Mma(t.F7, x, y3.Z, y3.W) : t.F7);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreRows<TP, TM, TY, TS>(TM m, ArrayView<TY> y, ArrayView<float> bias, ArrayView<float> residual, in ConvGemmArgs p,
        int row, int col, Frag8 t, bool wide) where TP : struct, IConvGemm where TM : struct, IWarpMma<TM> where TY : unmanaged where TS : struct, IConvStore<TY>
    {
        StoreFrag<TP, TM, TY, TS>(m, y, bias, residual, p, row, col, t.F0);
        StoreFrag<TP, TM, TY, TS>(m, y, bias, residual, p, row, col + 8, t.F1);
        StoreFrag<TP, TM, TY, TS>(m, y, bias, residual, p, row, col + 16, t.F2);
        StoreFrag<TP, TM, TY, TS>(m, y, bias, residual, p, row, col + 24, t.F3);
        if (!wide) return;
        StoreFrag<TP, TM, TY, TS>(m, y, bias, residual, p, row, col + 32, t.F4);
        StoreFrag<TP, TM, TY, TS>(m, y, bias, residual, p, row, col + 40, t.F5);
        StoreFrag<TP, TM, TY, TS>(m, y, bias, residual, p, row, col + 48, t.F6);
        StoreFrag<TP, TM, TY, TS>(m, y, bias, residual, p, row, col + 56, t.F7);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreFrag<TP, TM, TY, TS>(TM m, ArrayView<TY> y, ArrayView<float> bias, ArrayView<float> residual, in ConvGemmArgs p,
        int row, int col, Frag f) where TP : struct, IConvGemm where TM : struct, IWarpMma<TM> where TY : unmanaged where TS : struct, IConvStore<TY>
    {
        Store<TP, TM, TY, TS>(m, y, bias, residual, p, row, col, f.X);
        Store<TP, TM, TY, TS>(m, y, bias, residual, p, row, col + 1, f.Y);
        Store<TP, TM, TY, TS>(m, y, bias, residual, p, row + 8, col, f.Z);
        Store<TP, TM, TY, TS>(m, y, bias, residual, p, row + 8, col + 1, f.W);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store<TP, TM, TY, TS>(TM m, ArrayView<TY> y, ArrayView<float> bias, ArrayView<float> residual, in ConvGemmArgs p,
        int i, int j, float v) where TP : struct, IConvGemm where TM : struct, IWarpMma<TM> where TY : unmanaged where TS : struct, IConvStore<TY>
    {
        if (i >= p.M || j >= p.N) return;
        int at = default(TP).OutputIndex(p, i, j);
        if (default(TS).AddPartial(y, at, v, p)) return;   // split K: no epilogue
        if (p.HasBias != 0) v += bias[i];
        if (p.Silu != 0) v /= 1f + m.Exp2(-1.4426950408889634f * v);
        if (p.HasResidual != 0) v += residual[at];
        y[at] = default(TS).From(v);
    }
}
