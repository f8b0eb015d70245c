using System.Runtime.CompilerServices;
using ILGPU;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>The head dimension of an attention kernel, fixed per compiled kernel.</summary>
public interface IHeadDim { int D { get; } }
public struct HeadDim32 : IHeadDim { public readonly int D => 32; }
public struct HeadDim64 : IHeadDim { public readonly int D => 64; }
public struct HeadDim96 : IHeadDim { public readonly int D => 96; }
public struct HeadDim128 : IHeadDim { public readonly int D => 128; }

/// <summary>Arguments of <see cref="AttentionTensorCoreKernels.Forward{THd, TM, TO, TN}"/>: q [BH, Nq, D], k and v [BH, Nk, D]
/// as raw device addresses of bf16 values (16-byte aligned); mask [BH / Heads, Nk] (non-zero = attend) when HasMask.</summary>
public struct TensorCoreAttentionArgs
{
    public long Q, K, V;
    /// <summary>The output gradient, bf16 [BH, Nq, D] (backward only).</summary>
    public long DO;
    public int Nq, Nk, Heads, HasMask;
    /// <summary>The score scale, and the scale times log2(e): the softmax runs in base 2.</summary>
    public float Scale, ScaleLog2;
}

/// <summary>
/// Attention forward on tensor cores, FlashAttention-2 style: bf16 Q, K, V, f32 scores, softmax and accumulation,
/// nothing N×N in memory. A group of 4 warps takes 64 queries (16 per warp) of one (batch·head); keys and values
/// stream through dynamic shared memory in blocks of 64 (double-buffered cp.async, rows XOR-swizzled by 16-byte chunk).
/// Per key block a warp computes S = Q·Kᵀ (ldmatrix of Q and K, 8 n8 tiles), masks keys past Nk or masked out, runs the
/// online softmax in registers (row max and sum across the 4 lanes of a quad), re-packs P as bf16 A fragments (two
/// accumulator tiles are one A fragment of a k16 step) and adds P·V (V through ldmatrix.trans). Output: O [BH, Nq, D],
/// f32 or bf16 (TO, TN: autocast's output, the normalised f32 accumulator rounded to nearest even in the store) and f32 lse = log Σ exp(scaled score) per row; a row that attends to no key gets O = 0 and lse = +∞ (so a
/// backward's exp(s − lse) is 0 there), as the SIMT kernel. Launch: grid (⌈Nq/64⌉, BH), <see cref="Threads"/> threads,
/// <see cref="SharedBytes"/> of dynamic shared memory.
/// </summary>
public static class AttentionTensorCoreKernels
{
    public const int BlockQ = 64, BlockK = 64, Threads = 128;

    /// <summary>Q, two K and two V tiles of 64 rows × D bf16.</summary>
    public static int SharedBytes(int d) => 5 * 64 * d * 2;

    /// <summary>Row-major tile of 64 rows × d bf16; chunk c (8 values) of a row lands at chunk c ^ (row &amp; mask),
    /// mask 7 when a row has a multiple of 8 chunks, else 3 (d = 32, 96): the XOR stays inside the row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Offset(int row, int chunk, int d) => row * 2 * d + ((chunk ^ (row & ((d / 8) % 8 == 0 ? 7 : 3))) << 4);

    public static void Forward<THd, TM, TO, TN>(ArrayView<TO> o, ArrayView<float> lse, ArrayView<float> mask, TensorCoreAttentionArgs p)
        where THd : struct, IHeadDim where TM : struct, IWarpMma<TM> where TO : unmanaged where TN : struct, INarrow<TO>
    {
        var smem = SharedMemory.GetDynamic<byte>();
        var m = default(TM).Bind(smem);
        int d = default(THd).D, tileBytes = 64 * d * 2;
        int tid = Group.IdxX, lane = tid & 31, warp = tid >> 5, g = lane >> 3, r = lane & 7;
        int q0 = Grid.IdxX * BlockQ, bh = Grid.IdxY, batch = bh / p.Heads;
        long qHead = p.Q + 2L * bh * p.Nq * d, kHead = p.K + 2L * bh * p.Nk * d, vHead = p.V + 2L * bh * p.Nk * d;
        int blocks = (p.Nk + BlockK - 1) / BlockK;

        LoadTile(m, qHead, q0, p.Nq, tid, 0, d);
        if (blocks > 0)
        {
            LoadTile(m, kHead, 0, p.Nk, tid, tileBytes, d);
            LoadTile(m, vHead, 0, p.Nk, tid, 3 * tileBytes, d);
        }
        m.Commit();

        Frag8 oLo = default, oHi = default;   // columns 0..63 and 64..127 of the warp's 16 rows
        float m0 = float.NegativeInfinity, m1 = float.NegativeInfinity, l0 = 0f, l1 = 0f;
        for (int i = 0; i < blocks; i++)
        {
            NextBlock(m, i, blocks, kHead, vHead, p.Nk, tid, tileBytes, 3 * tileBytes, d);
            int sk = (1 + (i & 1)) * tileBytes, sv = (3 + (i & 1)) * tileBytes;

            Frag8 s = default;
            for (int ks = 0; ks < d / 16; ks++)
            {
                s = QkStep(m, s, RowFragment(m, 0, warp, lane, ks, d), sk, g, r, ks, d);
            }
            s = ScaleMask(s, mask, p, batch, i * BlockK + 2 * (lane & 3));

            // Online softmax in base 2: rows g (X, Y) and g + 8 (Z, W) of the warp's 16. A row with no key so far keeps
            // max −∞; 0 stands in as its reference so that exp2 gives 0, not NaN.
            float mx0 = QuadMax(RowMax(s.F0.X, s.F0.Y, s.F1.X, s.F1.Y, s.F2.X, s.F2.Y, s.F3.X, s.F3.Y, s.F4.X, s.F4.Y, s.F5.X, s.F5.Y, s.F6.X, s.F6.Y, s.F7.X, s.F7.Y));
            float mx1 = QuadMax(RowMax(s.F0.Z, s.F0.W, s.F1.Z, s.F1.W, s.F2.Z, s.F2.W, s.F3.Z, s.F3.W, s.F4.Z, s.F4.W, s.F5.Z, s.F5.W, s.F6.Z, s.F6.W, s.F7.Z, s.F7.W));
            float n0 = MathF.Max(m0, mx0), n1 = MathF.Max(m1, mx1);
            float ref0 = n0 == float.NegativeInfinity ? 0f : n0, ref1 = n1 == float.NegativeInfinity ? 0f : n1;
            float alpha0 = m.Exp2(m0 - ref0), alpha1 = m.Exp2(m1 - ref1);
            m0 = n0; m1 = n1;
            s = new Frag8(Exp(m, s.F0, ref0, ref1), Exp(m, s.F1, ref0, ref1), Exp(m, s.F2, ref0, ref1), Exp(m, s.F3, ref0, ref1),
                          Exp(m, s.F4, ref0, ref1), Exp(m, s.F5, ref0, ref1), Exp(m, s.F6, ref0, ref1), Exp(m, s.F7, ref0, ref1));
            l0 = l0 * alpha0 + (s.F0.X + s.F0.Y + s.F1.X + s.F1.Y + s.F2.X + s.F2.Y + s.F3.X + s.F3.Y + s.F4.X + s.F4.Y + s.F5.X + s.F5.Y + s.F6.X + s.F6.Y + s.F7.X + s.F7.Y);
            l1 = l1 * alpha1 + (s.F0.Z + s.F0.W + s.F1.Z + s.F1.W + s.F2.Z + s.F2.W + s.F3.Z + s.F3.W + s.F4.Z + s.F4.W + s.F5.Z + s.F5.W + s.F6.Z + s.F6.W + s.F7.Z + s.F7.W);
            oLo = Rescale(oLo, alpha0, alpha1);
            if (d > 64) oHi = Rescale(oHi, alpha0, alpha1);

            // O += P·V: P's k16 step kk is S tiles 2kk and 2kk+1, packed to bf16 in place.
            for (int kk = 0; kk < BlockK / 16; kk++)
            {
                Frag lo = kk == 0 ? s.F0 : kk == 1 ? s.F2 : kk == 2 ? s.F4 : s.F6, hi = kk == 0 ? s.F1 : kk == 1 ? s.F3 : kk == 2 ? s.F5 : s.F7;
                var pa = new U4(m.PackBF16(lo.X, lo.Y), m.PackBF16(lo.Z, lo.W), m.PackBF16(hi.X, hi.Y), m.PackBF16(hi.Z, hi.W));
                oLo = PvStep(m, oLo, pa, sv, g, r, kk, 0, d);
                if (d > 64) oHi = PvStep(m, oHi, pa, sv, g, r, kk, 64, d);
            }
            Group.Barrier();   // everyone is done with this stage before the next iteration refills it
        }
        m.WaitAll();

        l0 += Warp.ShuffleXor(l0, 1); l0 += Warp.ShuffleXor(l0, 2);
        l1 += Warp.ShuffleXor(l1, 1); l1 += Warp.ShuffleXor(l1, 2);
        float inv0 = l0 > 0f ? 1f / l0 : 0f, inv1 = l1 > 0f ? 1f / l1 : 0f;
        int row = q0 + warp * 16 + (lane >> 2), col = 2 * (lane & 3);
        long rowBase = (long)bh * p.Nq;
        StoreHalf<TO, TN>(o, p.Nq, rowBase, row, col, d, oLo, inv0, inv1);
        if (d > 64) StoreHalf<TO, TN>(o, p.Nq, rowBase, row, col + 64, d, oHi, inv0, inv1);
        if ((lane & 3) == 0)
        {
            const float Ln2 = 0.6931471805599453f;
            if (row < p.Nq) lse[rowBase + row] = l0 > 0f ? (m0 + m.Log2(l0)) * Ln2 : float.PositiveInfinity;
            if (row + 8 < p.Nq) lse[rowBase + row + 8] = l1 > 0f ? (m1 + m.Log2(l1)) * Ln2 : float.PositiveInfinity;
        }
        if (smem.Length < 0) lse[0] = 0f;   // keeps the dynamic shared buffer declared in the PTX
    }

    /// <summary>One step of the double-buffered stream of two operands (stage buffers at a0, a0 + tileBytes and b0,
    /// b0 + tileBytes): issues block i + 1 into the other stage, then waits until block i is in and visible to all.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void NextBlock<TM>(TM m, int i, int blocks, long aBase, long bBase, int rows, int tid, int a0, int b0, int d)
        where TM : struct, IWarpMma<TM>
    {
        if (i + 1 < blocks)
        {
            int stage = ((i + 1) & 1) * 64 * d * 2;
            LoadTile(m, aBase, (i + 1) * 64, rows, tid, a0 + stage, d);
            LoadTile(m, bBase, (i + 1) * 64, rows, tid, b0 + stage, d);
        }
        m.Commit();
        m.WaitOneGroupPending();
        Group.Barrier();
    }

    /// <summary>cp.async of a 64-row × d tile (rows r0.., zeros past n) into shared memory at <paramref name="offset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void LoadTile<TM>(TM m, long baseAddr, int r0, int n, int tid, int offset, int d) where TM : struct, IWarpMma<TM>
    {
        int chunks = d / 8;
        for (int q = 0; q < d / 16; q++)   // 64 · d/8 chunks over 128 threads
        {
            int id = tid + q * Threads, row = id / chunks, chunk = id - row * chunks;
            bool inside = r0 + row < n;
            long src = inside ? baseAddr + ((long)(r0 + row) * d + chunk * 8) * 2 : baseAddr;
            m.CopyAsync16((uint)(offset + Offset(row, chunk, d)), src, inside ? 16u : 0u);
        }
    }

    /// <summary>The A fragment (16 rows × k16 step <paramref name="ks"/>) of a warp's rows warp·16.. of a row-major tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static U4 RowFragment<TM>(TM m, int tile, int warp, int lane, int ks, int d) where TM : struct, IWarpMma<TM> =>
        m.LoadMatrixX4(tile + Offset(warp * 16 + (lane & 15), 2 * ks + (lane >> 4), d));

    /// <summary>One k16 step of S = Q·Kᵀ over 64 keys: K as mma's B operand (keys = n, d = k, rows K-contiguous).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Frag8 QkStep<TM>(TM m, Frag8 s, U4 a, int sk, int g, int r, int ks, int d) where TM : struct, IWarpMma<TM>
    {
        U4 b0 = m.LoadMatrixX4(sk + Offset(r + (g >> 1) * 8, ks * 2 + (g & 1), d));
        U4 b1 = m.LoadMatrixX4(sk + Offset(16 + r + (g >> 1) * 8, ks * 2 + (g & 1), d));
        U4 b2 = m.LoadMatrixX4(sk + Offset(32 + r + (g >> 1) * 8, ks * 2 + (g & 1), d));
        U4 b3 = m.LoadMatrixX4(sk + Offset(48 + r + (g >> 1) * 8, ks * 2 + (g & 1), d));
        return new Frag8(m.Mma(s.F0, a, b0.X, b0.Y), m.Mma(s.F1, a, b0.Z, b0.W), m.Mma(s.F2, a, b1.X, b1.Y), m.Mma(s.F3, a, b1.Z, b1.W),
                         m.Mma(s.F4, a, b2.X, b2.Y), m.Mma(s.F5, a, b2.Z, b2.W), m.Mma(s.F6, a, b3.X, b3.Y), m.Mma(s.F7, a, b3.Z, b3.W));
    }

    /// <summary>One k16 step (16 keys) of O += P·V for the 64 columns from <paramref name="colBase"/> that exist
    /// (V as mma's B operand: keys = k, d = n, rows n-contiguous, hence .trans).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Frag8 PvStep<TM>(TM m, Frag8 o, U4 pa, int sv, int g, int r, int kk, int colBase, int d) where TM : struct, IWarpMma<TM>
    {
        int vRow = kk * 16 + r + (g & 1) * 8;
        Frag f0 = o.F0, f1 = o.F1, f2 = o.F2, f3 = o.F3, f4 = o.F4, f5 = o.F5, f6 = o.F6, f7 = o.F7;
        U4 v = m.LoadMatrixX4Trans(sv + Offset(vRow, (colBase + (g >> 1) * 8) >> 3, d));
        f0 = m.Mma(f0, pa, v.X, v.Y); f1 = m.Mma(f1, pa, v.Z, v.W);
        v = m.LoadMatrixX4Trans(sv + Offset(vRow, (colBase + 16 + (g >> 1) * 8) >> 3, d));
        f2 = m.Mma(f2, pa, v.X, v.Y); f3 = m.Mma(f3, pa, v.Z, v.W);
        if (colBase + 32 < d)
        {
            v = m.LoadMatrixX4Trans(sv + Offset(vRow, (colBase + 32 + (g >> 1) * 8) >> 3, d));
            f4 = m.Mma(f4, pa, v.X, v.Y); f5 = m.Mma(f5, pa, v.Z, v.W);
            v = m.LoadMatrixX4Trans(sv + Offset(vRow, (colBase + 48 + (g >> 1) * 8) >> 3, d));
            f6 = m.Mma(f6, pa, v.X, v.Y); f7 = m.Mma(f7, pa, v.Z, v.W);
        }
        return new Frag8(f0, f1, f2, f3, f4, f5, f6, f7);
    }

    /// <summary>Scores × scale·log2(e); −∞ for keys past Nk or masked out. Tile j covers keys key0 + 8j and +1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Frag8 ScaleMask(Frag8 s, ArrayView<float> mask, in TensorCoreAttentionArgs p, int batch, int key0) => new(
        ScaleMask(s.F0, mask, p, batch, key0), ScaleMask(s.F1, mask, p, batch, key0 + 8),
        ScaleMask(s.F2, mask, p, batch, key0 + 16), ScaleMask(s.F3, mask, p, batch, key0 + 24),
        ScaleMask(s.F4, mask, p, batch, key0 + 32), ScaleMask(s.F5, mask, p, batch, key0 + 40),
        ScaleMask(s.F6, mask, p, batch, key0 + 48), ScaleMask(s.F7, mask, p, batch, key0 + 56));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Frag ScaleMask(Frag s, ArrayView<float> mask, in TensorCoreAttentionArgs p, int batch, int key)
    {
        bool k0 = Attends(mask, p, batch, key), k1 = Attends(mask, p, batch, key + 1);
        return new Frag(k0 ? s.X * p.ScaleLog2 : float.NegativeInfinity, k1 ? s.Y * p.ScaleLog2 : float.NegativeInfinity,
                        k0 ? s.Z * p.ScaleLog2 : float.NegativeInfinity, k1 ? s.W * p.ScaleLog2 : float.NegativeInfinity);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool Attends(ArrayView<float> mask, in TensorCoreAttentionArgs p, int batch, int key) =>
        key < p.Nk && (p.HasMask == 0 || mask[batch * p.Nk + key] != 0f);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Frag Exp<TM>(TM m, Frag s, float ref0, float ref1) where TM : struct, IWarpMma<TM> =>
        new(m.Exp2(s.X - ref0), m.Exp2(s.Y - ref0), m.Exp2(s.Z - ref1), m.Exp2(s.W - ref1));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Frag8 Rescale(Frag8 o, float a0, float a1) => new(Rescale(o.F0, a0, a1), Rescale(o.F1, a0, a1), Rescale(o.F2, a0, a1),
        Rescale(o.F3, a0, a1), Rescale(o.F4, a0, a1), Rescale(o.F5, a0, a1), Rescale(o.F6, a0, a1), Rescale(o.F7, a0, a1));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Frag Rescale(Frag o, float a0, float a1) => new(o.X * a0, o.Y * a0, o.Z * a1, o.W * a1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float QuadMax(float x)
    {
        x = MathF.Max(x, Warp.ShuffleXor(x, 1));
        return MathF.Max(x, Warp.ShuffleXor(x, 2));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float RowMax(float a, float b, float c, float d, float e, float f, float g, float h,
                        float i, float j, float k, float l, float m, float n, float o, float p) =>
        MathF.Max(MathF.Max(MathF.Max(MathF.Max(a, b), MathF.Max(c, d)), MathF.Max(MathF.Max(e, f), MathF.Max(g, h))),
                  MathF.Max(MathF.Max(MathF.Max(i, j), MathF.Max(k, l)), MathF.Max(MathF.Max(m, n), MathF.Max(o, p))));

    /// <summary>Stores the (up to) 64 columns of one f32 accumulator half that exist, times the row factors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreHalf(ArrayView<float> o, int rows, long rowBase, int row, int col, int d, Frag8 f, float inv0, float inv1) =>
        StoreHalf<float, F32Narrow>(o, rows, rowBase, row, col, d, f, inv0, inv1);

    /// <summary>Stores the (up to) 64 columns of one accumulator half that exist, times the row factors, as TO.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreHalf<TO, TN>(ArrayView<TO> o, int rows, long rowBase, int row, int col, int d, Frag8 f, float inv0, float inv1)
        where TO : unmanaged where TN : struct, INarrow<TO>
    {
        Store<TO, TN>(o, rows, rowBase, row, col, d, f.F0, inv0, inv1); Store<TO, TN>(o, rows, rowBase, row, col + 8, d, f.F1, inv0, inv1);
        Store<TO, TN>(o, rows, rowBase, row, col + 16, d, f.F2, inv0, inv1); Store<TO, TN>(o, rows, rowBase, row, col + 24, d, f.F3, inv0, inv1);
        Store<TO, TN>(o, rows, rowBase, row, col + 32, d, f.F4, inv0, inv1); Store<TO, TN>(o, rows, rowBase, row, col + 40, d, f.F5, inv0, inv1);
        Store<TO, TN>(o, rows, rowBase, row, col + 48, d, f.F6, inv0, inv1); Store<TO, TN>(o, rows, rowBase, row, col + 56, d, f.F7, inv0, inv1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store<TO, TN>(ArrayView<TO> o, int rows, long rowBase, int row, int col, int d, Frag f, float inv0, float inv1)
        where TO : unmanaged where TN : struct, INarrow<TO>
    {
        var n = default(TN);
        if (col >= d) return;
        if (row < rows) { o[(rowBase + row) * d + col] = n.Narrow(f.X * inv0); o[(rowBase + row) * d + col + 1] = n.Narrow(f.Y * inv0); }
        if (row + 8 < rows) { o[(rowBase + row + 8) * d + col] = n.Narrow(f.Z * inv1); o[(rowBase + row + 8) * d + col + 1] = n.Narrow(f.W * inv1); }
    }
}

/// <summary>Eight m16n8 accumulator tiles: 64 columns (or keys) of a warp's 16 rows, carried by value.</summary>
public readonly struct Frag8(Frag f0, Frag f1, Frag f2, Frag f3, Frag f4, Frag f5, Frag f6, Frag f7)
{
    public readonly Frag F0 = f0, F1 = f1, F2 = f2, F3 = f3, F4 = f4, F5 = f5, F6 = f6, F7 = f7;
}
