using System.Runtime.CompilerServices;
using ILGPU;
using Mdm.Kernels.Gpu.Kernels;
using static Mdm.Kernels.Gpu.TensorCore.AttentionTensorCoreKernels;

namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>
/// Attention backward on tensor cores, FlashAttention-2 style: P is recomputed from the forward's lse, nothing N×N in
/// memory, two kernels as the SIMT backward (launch <see cref="Dq{THd, TM, TO, TW}"/> first: it writes Δ = rowsum(dO∘O), which
/// <see cref="DkDv{THd, TM}"/> reads). Both use the forward's tiles, swizzle and mma steps: groups of 4 warps, 16 rows
/// per warp, the other operand streamed through shared memory in double-buffered blocks of 64 rows.
/// <list type="bullet">
/// <item><see cref="Dq{THd, TM, TO, TW}"/>: per 64 queries, over key blocks: S = Q·Kᵀ, P = exp(S·scale − lse), dP = dO·Vᵀ,
/// dS = P∘(dP − Δ), dQ += dS·K; dQ·scale at the end.</item>
/// <item><see cref="DkDv{THd, TM}"/>: per 64 keys (and 64 columns of dK, dV: <see cref="ColumnSplits"/>), over query
/// blocks: Sᵀ = K·Qᵀ, Pᵀ, dV += Pᵀ·dO, dPᵀ = V·dOᵀ, dSᵀ = Pᵀ∘(dPᵀ − Δ), dK += dSᵀ·Q; dK·scale at the end.</item>
/// </list>
/// P and dS enter the mma as bf16 (the forward's P·V does the same); everything else is f32. Masked keys, keys past Nk
/// and queries past Nq get P = 0; a fully masked row has lse = +∞, so its P is 0 too. Launch: grid (⌈Nq/64⌉, BH) for
/// dQ and (⌈Nk/64⌉ · <see cref="ColumnSplits"/>, BH) for dK/dV,
/// <see cref="AttentionTensorCoreKernels.Threads"/> threads, <see cref="SharedBytes"/> of dynamic shared memory.
/// </summary>
public static class AttentionBackwardTensorCoreKernels
{
    /// <summary>Two resident tiles and two double-buffered ones, 64 rows × D bf16 each.</summary>
    public static int SharedBytes(int d) => 6 * 64 * d * 2;

    const float Log2E = 1.4426950408889634f;

    /// <summary>Groups per 64 keys in <see cref="DkDv{THd, TM}"/>: above 64 columns each group keeps dK and dV for one
    /// 64-column half and recomputes Sᵀ and dPᵀ (all four accumulator sets spill past 255 registers).</summary>
    public static int ColumnSplits(int d) => d > 64 ? 2 : 1;

    /// <summary>dQ [BH, Nq, D] and Δ [BH, Nq]; o is the forward output, f32 or bf16 (TO, widened by TW as Δ reads it),
    /// and dOf the output gradient in f32 (for Δ).</summary>
    public static void Dq<THd, TM, TO, TW>(ArrayView<TO> o, ArrayView<float> dOf, ArrayView<float> lse, ArrayView<float> mask,
        ArrayView<float> dq, ArrayView<float> delta, TensorCoreAttentionArgs p)
        where THd : struct, IHeadDim where TM : struct, IWarpMma<TM> where TO : unmanaged where TW : struct, IWiden<TO>
    {
        var smem = SharedMemory.GetDynamic<byte>();
        var m = default(TM).Bind(smem);
        int d = default(THd).D, tileBytes = 64 * d * 2;
        int tid = Group.IdxX, lane = tid & 31, warp = tid >> 5, g = lane >> 3, r = lane & 7, t = lane & 3;
        int q0 = Grid.IdxX * BlockQ, bh = Grid.IdxY, batch = bh / p.Heads;
        long qRows = (long)bh * p.Nq, kRows = (long)bh * p.Nk;
        int blocks = (p.Nk + BlockK - 1) / BlockK;

        // Tiles: 0 = Q, 1 = dO, 2/3 = K, 4/5 = V.
        LoadTile(m, p.Q + 2 * qRows * d, q0, p.Nq, tid, 0, d);
        LoadTile(m, p.DO + 2 * qRows * d, q0, p.Nq, tid, tileBytes, d);
        if (blocks > 0)
        {
            LoadTile(m, p.K + 2 * kRows * d, 0, p.Nk, tid, 2 * tileBytes, d);
            LoadTile(m, p.V + 2 * kRows * d, 0, p.Nk, tid, 4 * tileBytes, d);
        }
        m.Commit();

        // Δ and lse of the lane's rows (g and g + 8 of the warp's 16); rows past Nq get lse = +∞ (P = 0).
        int row = q0 + warp * 16 + (lane >> 2);
        float delta0 = RowDot<TO, TW>(o, dOf, qRows, row, p.Nq, t, d), delta1 = RowDot<TO, TW>(o, dOf, qRows, row + 8, p.Nq, t, d);
        if (t == 0 && row < p.Nq) delta[qRows + row] = delta0;
        if (t == 0 && row + 8 < p.Nq) delta[qRows + row + 8] = delta1;
        float lse0 = row < p.Nq ? lse[qRows + row] * Log2E : float.PositiveInfinity;
        float lse1 = row + 8 < p.Nq ? lse[qRows + row + 8] * Log2E : float.PositiveInfinity;

        Frag8 dqLo = default, dqHi = default;
        for (int i = 0; i < blocks; i++)
        {
            NextBlock(m, i, blocks, p.K + 2 * kRows * d, p.V + 2 * kRows * d, p.Nk, tid, 2 * tileBytes, 4 * tileBytes, d);
            int sk = (2 + (i & 1)) * tileBytes, sv = (4 + (i & 1)) * tileBytes;

            Frag8 s = default, dp = default;
            for (int ks = 0; ks < d / 16; ks++)
            {
                s = QkStep(m, s, RowFragment(m, 0, warp, lane, ks, d), sk, g, r, ks, d);
                dp = QkStep(m, dp, RowFragment(m, tileBytes, warp, lane, ks, d), sv, g, r, ks, d);
            }
            s = ScaleMask(s, mask, p, batch, i * BlockK + 2 * t);
            Frag8 ds = GradScores(m, s, dp, lse0, lse1, delta0, delta1);
            for (int kk = 0; kk < BlockK / 16; kk++)
            {
                U4 a = PackStep(m, ds, kk);
                dqLo = PvStep(m, dqLo, a, sk, g, r, kk, 0, d);
                if (d > 64) dqHi = PvStep(m, dqHi, a, sk, g, r, kk, 64, d);
            }
            Group.Barrier();
        }
        m.WaitAll();
        StoreHalf(dq, p.Nq, qRows, row, 2 * t, d, dqLo, p.Scale, p.Scale);
        if (d > 64) StoreHalf(dq, p.Nq, qRows, row, 2 * t + 64, d, dqHi, p.Scale, p.Scale);
        if (smem.Length < 0) dq[0] = 0f;   // keeps the dynamic shared buffer declared in the PTX
    }

    /// <summary>dK and dV [BH, Nk, D]; lse and Δ per query from the forward and <see cref="Dq{THd, TM, TO, TW}"/>.</summary>
    public static void DkDv<THd, TM>(ArrayView<float> lse, ArrayView<float> delta, ArrayView<float> mask,
        ArrayView<float> dk, ArrayView<float> dv, TensorCoreAttentionArgs p)
        where THd : struct, IHeadDim where TM : struct, IWarpMma<TM>
    {
        var smem = SharedMemory.GetDynamic<byte>();
        var m = default(TM).Bind(smem);
        int d = default(THd).D, tileBytes = 64 * d * 2, splits = ColumnSplits(d);
        int tid = Group.IdxX, lane = tid & 31, warp = tid >> 5, g = lane >> 3, r = lane & 7, t = lane & 3;
        int kBlock = Grid.IdxX / splits, colBase = (Grid.IdxX - kBlock * splits) * 64;
        int k0 = kBlock * BlockK, bh = Grid.IdxY, batch = bh / p.Heads;
        long qRows = (long)bh * p.Nq, kRows = (long)bh * p.Nk;
        int blocks = (p.Nq + BlockQ - 1) / BlockQ;

        // Tiles: 0 = K, 1 = V, 2/3 = Q, 4/5 = dO.
        LoadTile(m, p.K + 2 * kRows * d, k0, p.Nk, tid, 0, d);
        LoadTile(m, p.V + 2 * kRows * d, k0, p.Nk, tid, tileBytes, d);
        if (blocks > 0)
        {
            LoadTile(m, p.Q + 2 * qRows * d, 0, p.Nq, tid, 2 * tileBytes, d);
            LoadTile(m, p.DO + 2 * qRows * d, 0, p.Nq, tid, 4 * tileBytes, d);
        }
        m.Commit();

        // The lane's keys (rows g and g + 8 of the warp's 16): P = 0 for keys past Nk or masked out.
        int key = k0 + warp * 16 + (lane >> 2);
        bool in0 = Attends(mask, p, batch, key), in1 = Attends(mask, p, batch, key + 8);

        Frag8 dk64 = default, dv64 = default;   // columns colBase .. colBase + 63
        for (int i = 0; i < blocks; i++)
        {
            NextBlock(m, i, blocks, p.Q + 2 * qRows * d, p.DO + 2 * qRows * d, p.Nq, tid, 2 * tileBytes, 4 * tileBytes, d);
            int sq = (2 + (i & 1)) * tileBytes, sdo = (4 + (i & 1)) * tileBytes;

            Frag8 st = default, dpt = default;
            for (int ks = 0; ks < d / 16; ks++)
            {
                st = QkStep(m, st, RowFragment(m, 0, warp, lane, ks, d), sq, g, r, ks, d);
                dpt = QkStep(m, dpt, RowFragment(m, tileBytes, warp, lane, ks, d), sdo, g, r, ks, d);
            }
            // Columns are queries: tile j holds queries q + 8j and +1, each with its own lse and Δ.
            int q = i * BlockQ + 2 * t;
            Frag8 pt = new(
                ProbT(m, st.F0, lse, qRows, p, q, in0, in1), ProbT(m, st.F1, lse, qRows, p, q + 8, in0, in1),
                ProbT(m, st.F2, lse, qRows, p, q + 16, in0, in1), ProbT(m, st.F3, lse, qRows, p, q + 24, in0, in1),
                ProbT(m, st.F4, lse, qRows, p, q + 32, in0, in1), ProbT(m, st.F5, lse, qRows, p, q + 40, in0, in1),
                ProbT(m, st.F6, lse, qRows, p, q + 48, in0, in1), ProbT(m, st.F7, lse, qRows, p, q + 56, in0, in1));
            Frag8 dst = new(
                GradT(pt.F0, dpt.F0, delta, qRows, p, q), GradT(pt.F1, dpt.F1, delta, qRows, p, q + 8),
                GradT(pt.F2, dpt.F2, delta, qRows, p, q + 16), GradT(pt.F3, dpt.F3, delta, qRows, p, q + 24),
                GradT(pt.F4, dpt.F4, delta, qRows, p, q + 32), GradT(pt.F5, dpt.F5, delta, qRows, p, q + 40),
                GradT(pt.F6, dpt.F6, delta, qRows, p, q + 48), GradT(pt.F7, dpt.F7, delta, qRows, p, q + 56));
            for (int kk = 0; kk < BlockQ / 16; kk++)
            {
                U4 pa = PackStep(m, pt, kk), da = PackStep(m, dst, kk);
                dv64 = PvStep(m, dv64, pa, sdo, g, r, kk, colBase, d);
                dk64 = PvStep(m, dk64, da, sq, g, r, kk, colBase, d);
            }
            Group.Barrier();
        }
        m.WaitAll();
        StoreHalf(dk, p.Nk, kRows, key, 2 * t + colBase, d, dk64, p.Scale, p.Scale);
        StoreHalf(dv, p.Nk, kRows, key, 2 * t + colBase, d, dv64, 1f, 1f);
        if (smem.Length < 0) dk[0] = 0f;   // keeps the dynamic shared buffer declared in the PTX
    }

    /// <summary>Σ_c o·dO over one row, lanes of a quad taking every 4th column; 0 past the last row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float RowDot<TO, TW>(ArrayView<TO> o, ArrayView<float> dOf, long rowBase, int row, int rows, int t, int d)
        where TO : unmanaged where TW : struct, IWiden<TO>
    {
        var w = default(TW);
        float sum = 0f;
        if (row < rows)
            for (int c = t; c < d; c += 4) sum += w.Widen(o[(rowBase + row) * d + c]) * dOf[(rowBase + row) * d + c];
        sum += Warp.ShuffleXor(sum, 1);
        return sum + Warp.ShuffleXor(sum, 2);
    }

    /// <summary>dS = P∘(dP − Δ) with P = 2^(s − lse·log2 e), rows g (X, Y) and g + 8 (Z, W).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Frag8 GradScores<TM>(TM m, Frag8 s, Frag8 dp, float lse0, float lse1, float delta0, float delta1) where TM : struct, IWarpMma<TM> => new(
        Grad(m, s.F0, dp.F0, lse0, lse1, delta0, delta1), Grad(m, s.F1, dp.F1, lse0, lse1, delta0, delta1),
        Grad(m, s.F2, dp.F2, lse0, lse1, delta0, delta1), Grad(m, s.F3, dp.F3, lse0, lse1, delta0, delta1),
        Grad(m, s.F4, dp.F4, lse0, lse1, delta0, delta1), Grad(m, s.F5, dp.F5, lse0, lse1, delta0, delta1),
        Grad(m, s.F6, dp.F6, lse0, lse1, delta0, delta1), Grad(m, s.F7, dp.F7, lse0, lse1, delta0, delta1));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Frag Grad<TM>(TM m, Frag s, Frag dp, float lse0, float lse1, float delta0, float delta1) where TM : struct, IWarpMma<TM> => new(
        m.Exp2(s.X - lse0) * (dp.X - delta0), m.Exp2(s.Y - lse0) * (dp.Y - delta0),
        m.Exp2(s.Z - lse1) * (dp.Z - delta1), m.Exp2(s.W - lse1) * (dp.W - delta1));

    /// <summary>Pᵀ for one tile: rows are the lane's two keys, columns queries q and q + 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Frag ProbT<TM>(TM m, Frag st, ArrayView<float> lse, long qRows, in TensorCoreAttentionArgs p, int q, bool in0, bool in1)
        where TM : struct, IWarpMma<TM>
    {
        float l0 = q < p.Nq ? lse[qRows + q] * Log2E : float.PositiveInfinity;
        float l1 = q + 1 < p.Nq ? lse[qRows + q + 1] * Log2E : float.PositiveInfinity;
        return new Frag(in0 ? m.Exp2(st.X * p.ScaleLog2 - l0) : 0f, in0 ? m.Exp2(st.Y * p.ScaleLog2 - l1) : 0f,
                        in1 ? m.Exp2(st.Z * p.ScaleLog2 - l0) : 0f, in1 ? m.Exp2(st.W * p.ScaleLog2 - l1) : 0f);
    }

    /// <summary>dSᵀ = Pᵀ∘(dPᵀ − Δ) for one tile (Δ of queries q and q + 1; 0 past Nq, where P is 0 anyway).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Frag GradT(Frag pt, Frag dpt, ArrayView<float> delta, long qRows, in TensorCoreAttentionArgs p, int q)
    {
        float d0 = q < p.Nq ? delta[qRows + q] : 0f, d1 = q + 1 < p.Nq ? delta[qRows + q + 1] : 0f;
        return new Frag(pt.X * (dpt.X - d0), pt.Y * (dpt.Y - d1), pt.Z * (dpt.Z - d0), pt.W * (dpt.W - d1));
    }

    /// <summary>Tiles 2kk and 2kk + 1 of an accumulator set as the bf16 A fragment of k16 step kk.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static U4 PackStep<TM>(TM m, Frag8 s, int kk) where TM : struct, IWarpMma<TM>
    {
        Frag lo = kk == 0 ? s.F0 : kk == 1 ? s.F2 : kk == 2 ? s.F4 : s.F6, hi = kk == 0 ? s.F1 : kk == 1 ? s.F3 : kk == 2 ? s.F5 : s.F7;
        return new U4(m.PackBF16(lo.X, lo.Y), m.PackBF16(lo.Z, lo.W), m.PackBF16(hi.X, hi.Y), m.PackBF16(hi.Z, hi.W));
    }
}
