using ILGPU;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>Sizes for the attention kernels: q [BH, Nq, D], k and v [BH, Nk, D], mask [BH / Heads, Nk] when HasMask != 0.</summary>
public struct AttentionShape
{
    public int BH, Heads, Nq, Nk, D, HasMask;
    /// <summary>D^-1/2: D^-1/4 on q times D^-1/4 on k.</summary>
    public float Scale;
}

/// <summary>
/// Flash-style attention in f32, nothing N×N in global memory. One group per (b·h, tile of rows), grid-stride over
/// tiles; the other operand is streamed through shared memory in tiles of 16 rows (rows padded to 129 floats, so the
/// per-thread dot products over a row hit distinct banks).
/// <list type="bullet">
/// <item><see cref="Forward"/>: per query tile, online softmax (running max and sum per row), O accumulated in shared
/// memory, then O/sum and lse = max + log(sum) (+∞ and O = 0 when a row attended to no key).</item>
/// <item><see cref="BackwardDq"/>: per query tile, Δ = rowsum(dO∘O) (also written out for the next kernel), then over
/// the key tiles P = exp(s − lse), dS = P∘(dO·vᵀ − Δ), dq += dS·k.</item>
/// <item><see cref="BackwardDkDv"/>: per key tile, over query tiles of 8: the same P and dS, dv += Pᵀ·dO, dk += dSᵀ·q.</item>
/// </list>
/// Any group size works (the loops stride by Group.DimX); D ≤ <see cref="MaxD"/>. Shared memory ≤ 43 KB per group.
/// q, k and v are f32 or bf16 (T, widened to f32 by TW as the tiles are loaded: autocast's bf16 storage); o is f32 or,
/// with bf16 q, k, v, bf16 (TO: rounded by the forward's store, widened by the dq kernel's read); the rest is f32.
/// </summary>
public static class AttentionKernels
{
    public const int MaxD = 128;
    const int Stride = MaxD + 1;
    public const int TileQ = 16, TileK = 16, BwdTileQ = 8;

    static bool Attends(ArrayView<float> mask, in AttentionShape s, int batch, int j) =>
        j < s.Nk && (s.HasMask == 0 || mask[batch * s.Nk + j] != 0f);

    [Kernel("AttentionForward", typeof(float), typeof(F32Widen), typeof(float), typeof(F32Narrow))]
    [Kernel("AttentionForwardBF16", typeof(ushort), typeof(BF16Widen), typeof(float), typeof(F32Narrow))]
    [Kernel("AttentionForwardBF16ToBF16", typeof(ushort), typeof(BF16Widen), typeof(ushort), typeof(BF16Narrow))]
    public static void Forward<T, TW, TO, TN>(ArrayView<T> q, ArrayView<T> k, ArrayView<T> v, ArrayView<float> mask,
        ArrayView<TO> o, ArrayView<float> lse, AttentionShape s)
        where T : unmanaged where TW : struct, IWiden<T> where TO : unmanaged where TN : struct, INarrow<TO>
    {
        var w = default(TW);
        var narrow = default(TN);
        var qs = SharedMemory.Allocate<float>(TileQ * Stride);
        var ks = SharedMemory.Allocate<float>(TileK * Stride);
        var vs = SharedMemory.Allocate<float>(TileK * Stride);
        var os = SharedMemory.Allocate<float>(TileQ * MaxD);
        var ps = SharedMemory.Allocate<float>(TileQ * TileK);
        var rowMax = SharedMemory.Allocate<float>(TileQ);
        var rowSum = SharedMemory.Allocate<float>(TileQ);
        var rowScale = SharedMemory.Allocate<float>(TileQ);
        int tid = Group.IdxX, threads = Group.DimX, d = s.D;
        int qTiles = (s.Nq + TileQ - 1) / TileQ, tiles = s.BH * qTiles;
        for (int tile = Grid.IdxX; tile < tiles; tile += Grid.DimX)
        {
            int g = tile / qTiles, i0 = (tile - g * qTiles) * TileQ, batch = g / s.Heads;
            int rows = XMin(TileQ, s.Nq - i0);
            int qBase = (g * s.Nq + i0) * d;
            for (int e = tid; e < TileQ * d; e += threads)
            {
                int r = e / d, c = e - r * d;
                qs[r * Stride + c] = r < rows ? w.Widen(q[qBase + e]) * s.Scale : 0f;
                os[e] = 0f;
            }
            if (tid < TileQ) { rowMax[tid] = float.NegativeInfinity; rowSum[tid] = 0f; }
            Group.Barrier();

            for (int j0 = 0; j0 < s.Nk; j0 += TileK)
            {
                int kBase = (g * s.Nk + j0) * d, keys = XMin(TileK, s.Nk - j0);
                for (int e = tid; e < TileK * d; e += threads)
                {
                    int r = e / d, c = e - r * d;
                    ks[r * Stride + c] = r < keys ? w.Widen(k[kBase + e]) : 0f;
                    vs[r * Stride + c] = r < keys ? w.Widen(v[kBase + e]) : 0f;
                }
                Group.Barrier();
                // scores of this tile; −∞ for masked and out-of-range keys
                for (int e = tid; e < TileQ * TileK; e += threads)
                {
                    int r = e / TileK, c = e - r * TileK;
                    float sc = float.NegativeInfinity;
                    if (Attends(mask, s, batch, j0 + c))
                    {
                        float acc = 0f;
                        for (int x = 0; x < d; x++) acc += qs[r * Stride + x] * ks[c * Stride + x];
                        sc = acc;
                    }
                    ps[e] = sc;
                }
                Group.Barrier();
                // online softmax, one thread per row: new max, rescale factor, probabilities relative to the new max
                if (tid < TileQ)
                {
                    int r = tid;
                    float mOld = rowMax[r], mNew = mOld;
                    for (int c = 0; c < TileK; c++) { float sc = ps[r * TileK + c]; mNew = sc > mNew ? sc : mNew; }
                    float alpha = 1f, sum = 0f;
                    if (mNew == float.NegativeInfinity)
                        for (int c = 0; c < TileK; c++) ps[r * TileK + c] = 0f;
                    else
                    {
                        alpha = mOld == float.NegativeInfinity ? 0f : MathF.Exp(mOld - mNew);
                        for (int c = 0; c < TileK; c++)
                        {
                            float sc = ps[r * TileK + c];
                            float p = sc == float.NegativeInfinity ? 0f : MathF.Exp(sc - mNew);
                            ps[r * TileK + c] = p;
                            sum += p;
                        }
                    }
                    rowMax[r] = mNew;
                    rowSum[r] = rowSum[r] * alpha + sum;
                    rowScale[r] = alpha;
                }
                Group.Barrier();
                for (int e = tid; e < TileQ * d; e += threads)
                {
                    int r = e / d, c = e - r * d;
                    float acc = os[e] * rowScale[r];
                    for (int x = 0; x < TileK; x++) acc += ps[r * TileK + x] * vs[x * Stride + c];
                    os[e] = acc;
                }
                Group.Barrier();
            }

            for (int e = tid; e < rows * d; e += threads)
            {
                float l = rowSum[e / d];
                o[qBase + e] = narrow.Narrow(l > 0f ? os[e] / l : 0f);
            }
            if (tid < rows)
            {
                float l = rowSum[tid];
                lse[g * s.Nq + i0 + tid] = l > 0f ? rowMax[tid] + MathF.Log(l) : float.PositiveInfinity;
            }
            Group.Barrier();   // shared tiles are refilled by the next tile
        }
    }

    [Kernel("AttentionBackwardDq", typeof(float), typeof(F32Widen), typeof(float), typeof(F32Widen))]
    [Kernel("AttentionBackwardDqBF16", typeof(ushort), typeof(BF16Widen), typeof(float), typeof(F32Widen))]
    [Kernel("AttentionBackwardDqBF16Out", typeof(ushort), typeof(BF16Widen), typeof(ushort), typeof(BF16Widen))]
    public static void BackwardDq<T, TW, TO, TOW>(ArrayView<T> q, ArrayView<T> k, ArrayView<T> v, ArrayView<TO> o, ArrayView<float> dO,
        ArrayView<float> lse, ArrayView<float> mask, ArrayView<float> dq, ArrayView<float> delta, AttentionShape s)
        where T : unmanaged where TW : struct, IWiden<T> where TO : unmanaged where TOW : struct, IWiden<TO>
    {
        var w = default(TW);
        var ow = default(TOW);
        var qs = SharedMemory.Allocate<float>(TileQ * Stride);
        var dos = SharedMemory.Allocate<float>(TileQ * Stride);
        var ks = SharedMemory.Allocate<float>(TileK * Stride);
        var vs = SharedMemory.Allocate<float>(TileK * Stride);
        var acc = SharedMemory.Allocate<float>(TileQ * MaxD);   // O for Δ first, then the dq accumulator
        var dss = SharedMemory.Allocate<float>(TileQ * TileK);
        var rowL = SharedMemory.Allocate<float>(TileQ);
        var rowD = SharedMemory.Allocate<float>(TileQ);
        int tid = Group.IdxX, threads = Group.DimX, d = s.D;
        int qTiles = (s.Nq + TileQ - 1) / TileQ, tiles = s.BH * qTiles;
        for (int tile = Grid.IdxX; tile < tiles; tile += Grid.DimX)
        {
            int g = tile / qTiles, i0 = (tile - g * qTiles) * TileQ, batch = g / s.Heads;
            int rows = XMin(TileQ, s.Nq - i0);
            int qBase = (g * s.Nq + i0) * d;
            for (int e = tid; e < TileQ * d; e += threads)
            {
                int r = e / d, c = e - r * d;
                bool ok = r < rows;
                qs[r * Stride + c] = ok ? w.Widen(q[qBase + e]) * s.Scale : 0f;
                dos[r * Stride + c] = ok ? dO[qBase + e] : 0f;
                acc[e] = ok ? ow.Widen(o[qBase + e]) : 0f;
            }
            Group.Barrier();
            if (tid < TileQ)
            {
                float dsum = 0f;
                for (int x = 0; x < d; x++) dsum += dos[tid * Stride + x] * acc[tid * d + x];
                rowD[tid] = dsum;
                rowL[tid] = tid < rows ? lse[g * s.Nq + i0 + tid] : float.PositiveInfinity;
                if (tid < rows) delta[g * s.Nq + i0 + tid] = dsum;
            }
            Group.Barrier();
            for (int e = tid; e < TileQ * d; e += threads) acc[e] = 0f;

            for (int j0 = 0; j0 < s.Nk; j0 += TileK)
            {
                int kBase = (g * s.Nk + j0) * d, keys = XMin(TileK, s.Nk - j0);
                for (int e = tid; e < TileK * d; e += threads)
                {
                    int r = e / d, c = e - r * d;
                    ks[r * Stride + c] = r < keys ? w.Widen(k[kBase + e]) : 0f;
                    vs[r * Stride + c] = r < keys ? w.Widen(v[kBase + e]) : 0f;
                }
                Group.Barrier();
                for (int e = tid; e < TileQ * TileK; e += threads)
                {
                    int r = e / TileK, c = e - r * TileK;
                    float ds = 0f, l = rowL[r];
                    if (l < float.PositiveInfinity && Attends(mask, s, batch, j0 + c))
                    {
                        float sc = 0f, dp = 0f;
                        for (int x = 0; x < d; x++)
                        {
                            sc += qs[r * Stride + x] * ks[c * Stride + x];
                            dp += dos[r * Stride + x] * vs[c * Stride + x];
                        }
                        ds = MathF.Exp(sc - l) * (dp - rowD[r]);
                    }
                    dss[e] = ds;
                }
                Group.Barrier();
                for (int e = tid; e < TileQ * d; e += threads)
                {
                    int r = e / d, c = e - r * d;
                    float a = acc[e];
                    for (int x = 0; x < TileK; x++) a += dss[r * TileK + x] * ks[x * Stride + c];
                    acc[e] = a;
                }
                Group.Barrier();
            }

            for (int e = tid; e < rows * d; e += threads) dq[qBase + e] = acc[e] * s.Scale;
            Group.Barrier();
        }
    }

    [Kernel("AttentionBackwardDkDv", typeof(float), typeof(F32Widen))]
    [Kernel("AttentionBackwardDkDvBF16", typeof(ushort), typeof(BF16Widen))]
    public static void BackwardDkDv<T, TW>(ArrayView<T> q, ArrayView<T> k, ArrayView<T> v, ArrayView<float> dO,
        ArrayView<float> lse, ArrayView<float> delta, ArrayView<float> mask, ArrayView<float> dk, ArrayView<float> dv, AttentionShape s)
        where T : unmanaged where TW : struct, IWiden<T>
    {
        var w = default(TW);
        var ks = SharedMemory.Allocate<float>(TileK * Stride);
        var vs = SharedMemory.Allocate<float>(TileK * Stride);
        var qs = SharedMemory.Allocate<float>(BwdTileQ * Stride);
        var dos = SharedMemory.Allocate<float>(BwdTileQ * Stride);
        var dks = SharedMemory.Allocate<float>(TileK * MaxD);
        var dvs = SharedMemory.Allocate<float>(TileK * MaxD);
        var ps = SharedMemory.Allocate<float>(BwdTileQ * TileK);
        var dss = SharedMemory.Allocate<float>(BwdTileQ * TileK);
        var rowL = SharedMemory.Allocate<float>(BwdTileQ);
        var rowD = SharedMemory.Allocate<float>(BwdTileQ);
        int tid = Group.IdxX, threads = Group.DimX, d = s.D;
        int kTiles = (s.Nk + TileK - 1) / TileK, tiles = s.BH * kTiles;
        for (int tile = Grid.IdxX; tile < tiles; tile += Grid.DimX)
        {
            int g = tile / kTiles, j0 = (tile - g * kTiles) * TileK, batch = g / s.Heads;
            int keys = XMin(TileK, s.Nk - j0);
            int kBase = (g * s.Nk + j0) * d;
            for (int e = tid; e < TileK * d; e += threads)
            {
                int r = e / d, c = e - r * d;
                ks[r * Stride + c] = r < keys ? w.Widen(k[kBase + e]) : 0f;
                vs[r * Stride + c] = r < keys ? w.Widen(v[kBase + e]) : 0f;
                dks[e] = 0f;
                dvs[e] = 0f;
            }

            for (int i0 = 0; i0 < s.Nq; i0 += BwdTileQ)
            {
                int rows = XMin(BwdTileQ, s.Nq - i0), qBase = (g * s.Nq + i0) * d;
                for (int e = tid; e < BwdTileQ * d; e += threads)
                {
                    int r = e / d, c = e - r * d;
                    bool ok = r < rows;
                    qs[r * Stride + c] = ok ? w.Widen(q[qBase + e]) * s.Scale : 0f;
                    dos[r * Stride + c] = ok ? dO[qBase + e] : 0f;
                }
                if (tid < BwdTileQ)
                {
                    bool ok = tid < rows;
                    rowL[tid] = ok ? lse[g * s.Nq + i0 + tid] : float.PositiveInfinity;
                    rowD[tid] = ok ? delta[g * s.Nq + i0 + tid] : 0f;
                }
                Group.Barrier();
                for (int e = tid; e < BwdTileQ * TileK; e += threads)
                {
                    int r = e / TileK, c = e - r * TileK;
                    float p = 0f, ds = 0f, l = rowL[r];
                    if (l < float.PositiveInfinity && Attends(mask, s, batch, j0 + c))
                    {
                        float sc = 0f, dp = 0f;
                        for (int x = 0; x < d; x++)
                        {
                            sc += qs[r * Stride + x] * ks[c * Stride + x];
                            dp += dos[r * Stride + x] * vs[c * Stride + x];
                        }
                        p = MathF.Exp(sc - l);
                        ds = p * (dp - rowD[r]);
                    }
                    ps[e] = p;
                    dss[e] = ds;
                }
                Group.Barrier();
                for (int e = tid; e < TileK * d; e += threads)
                {
                    int c = e / d, col = e - c * d;
                    float a = dvs[e], b = dks[e];
                    for (int r = 0; r < BwdTileQ; r++)
                    {
                        a += ps[r * TileK + c] * dos[r * Stride + col];
                        b += dss[r * TileK + c] * qs[r * Stride + col];
                    }
                    dvs[e] = a;
                    dks[e] = b;
                }
                Group.Barrier();
            }

            for (int e = tid; e < keys * d; e += threads)
            {
                dk[kBase + e] = dks[e];
                dv[kBase + e] = dvs[e];
            }
            Group.Barrier();
        }
    }

    /// <summary>
    /// Rotary encoding, rotate-half pairs (i, i + D/2) of rows of length d, row r at position offset + r % n:
    /// θ_i = pos·ratio^i with ratio = theta^(−2/d) from the host, the power by repeated squaring in double (ILGPU's
    /// double Exp/Pow are slow software routines on PTX), reduced to [−π, π] in double before the f32 sin/cos
    /// (sin.approx/cos.approx on PTX: absolute error below 1e-6 there).
    /// sign = −1 rotates by −θ (the backward). y may be x: each thread reads its pair before writing it.
    /// </summary>
    [Kernel("Rotary")]
    public static void Rotary(ArrayView<float> x, ArrayView<float> y, int n, int d, int offset, double ratio, float sign)
    {
        int half = d / 2;
        int pairs = (int)(x.IntLength / 2);
        int stride = Grid.DimX * Group.DimX;
        for (int idx = Grid.GlobalIndex.X; idx < pairs; idx += stride)
        {
            int row = idx / half, i = idx - row * half, pos = offset + row % n;
            double invFreq = 1.0, power = ratio;
            for (int e = i; e > 0; e >>= 1)
            {
                if ((e & 1) != 0) invFreq *= power;
                power *= power;
            }
            double angle = pos * invFreq;
            angle -= 2.0 * Math.PI * Math.Floor(angle / (2.0 * Math.PI) + 0.5);
            float c = MathF.Cos((float)angle), sn = sign * MathF.Sin((float)angle);
            int b = row * d + i;
            float x1 = x[b], x2 = x[b + half];
            y[b] = x1 * c - x2 * sn;
            y[b + half] = x2 * c + x1 * sn;
        }
    }

    static int XMin(int a, int b) => a < b ? a : b;
}
