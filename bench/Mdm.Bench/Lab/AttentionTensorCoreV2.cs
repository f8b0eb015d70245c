using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;
using static Mdm.Kernels.Gpu.Kernels.TensorCorePtx;

namespace Mdm.Bench.Lab;

/// <summary>Arguments of <see cref="AttentionTensorCoreV2.Forward"/>: q, k, v are raw device addresses of bf16
/// [B·H, N, 64] tensors (16-byte aligned); o is f32 [B·H, N, 64], lse f32 [B·H, N].</summary>
public struct AttentionLabArgs
{
    public long Q, K, V;
    public int N;
    public float ScaleLog2;   // log2(e) / sqrt(D)
}

/// <summary>
/// Attention forward v2 (lab, not promoted): FlashAttention-2 on tensor cores for head dimension 64, self-attention
/// without a mask. v1 is the SIMT kernel in src (AttentionKernels, f32 FMA). A group of 4 warps takes 64 queries
/// (16 per warp); keys and values stream through shared memory in blocks of 64 (double-buffered cp.async, XOR-swizzled
/// 128-byte rows, 40 KB). Per key block a warp computes S = Q·Kᵀ (32 mma.sync m16n8k16; Q's fragments stay in
/// registers, K through ldmatrix), the online softmax in registers (row max and sum across the 4 lanes of a quad),
/// re-packs P as bf16 A fragments in registers (the accumulator layout of two n8 tiles is the A layout of one k16
/// step) and adds P·V (32 mma, V through ldmatrix.trans). Status: compiles, 0 bytes of stack after depot promotion;
/// not yet run on a GPU (the session that wrote it had spent its device time). `lab attention` checks it against v1
/// and times both on CUDA.
/// </summary>
public static class AttentionTensorCoreV2
{
    public const int D = 64, BlockQ = 64, BlockK = 64, Threads = 128;
    public const int TileBytes = 64 * 128, SharedBytes = 5 * TileBytes;   // Q, K×2, V×2

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Offset(int row, int chunk) => row * 128 + ((chunk ^ (row & 7)) << 4);

    public static void Forward(ArrayView<float> o, ArrayView<float> lse, AttentionLabArgs p)
    {
        var smem = SharedMemory.GetDynamic<byte>();
        int tid = Group.IdxX, lane = tid & 31, warp = tid >> 5, g = lane >> 3, r = lane & 7;
        int q0 = Grid.IdxX * BlockQ, bh = Grid.IdxY;
        long head = (long)bh * p.N * D * 2;
        int blocks = (p.N + BlockK - 1) / BlockK;

        LoadTile(p.Q + head, q0, p.N, tid, 0);
        LoadTile(p.K + head, 0, p.N, tid, TileBytes);
        LoadTile(p.V + head, 0, p.N, tid, 3 * TileBytes);
        Commit();

        U4 qa0 = default, qa1 = default, qa2 = default, qa3 = default;
        Frag o0 = default, o1 = default, o2 = default, o3 = default, o4 = default, o5 = default, o6 = default, o7 = default;
        float m0 = float.NegativeInfinity, m1 = float.NegativeInfinity, l0 = 0f, l1 = 0f;
        for (int i = 0; i < blocks; i++)
        {
            if (i + 1 < blocks)
            {
                int next = (i + 1) & 1;
                LoadTile(p.K + head, (i + 1) * BlockK, p.N, tid, (1 + next) * TileBytes);
                LoadTile(p.V + head, (i + 1) * BlockK, p.N, tid, (3 + next) * TileBytes);
            }
            Commit();
            WaitOneGroupPending();
            Group.Barrier();
            if (i == 0)
            {
                int qr = warp * 16 + (lane & 15), qc = lane >> 4;
                qa0 = LoadMatrix(Offset(qr, qc)); qa1 = LoadMatrix(Offset(qr, 2 + qc));
                qa2 = LoadMatrix(Offset(qr, 4 + qc)); qa3 = LoadMatrix(Offset(qr, 6 + qc));
            }
            int sk = (1 + (i & 1)) * TileBytes, sv = (3 + (i & 1)) * TileBytes;

            // S = Q·Kᵀ for 64 keys: tiles s0..s7 of 8 keys each.
            Frag s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
            for (int ks = 0; ks < D / 16; ks++)
            {
                U4 a = ks == 0 ? qa0 : ks == 1 ? qa1 : ks == 2 ? qa2 : qa3;
                U4 b0 = KFragment(sk, g, r, ks, 0), b1 = KFragment(sk, g, r, ks, 1), b2 = KFragment(sk, g, r, ks, 2), b3 = KFragment(sk, g, r, ks, 3);
                s0 = Mma(s0, a, b0.X, b0.Y); s1 = Mma(s1, a, b0.Z, b0.W); s2 = Mma(s2, a, b1.X, b1.Y); s3 = Mma(s3, a, b1.Z, b1.W);
                s4 = Mma(s4, a, b2.X, b2.Y); s5 = Mma(s5, a, b2.Z, b2.W); s6 = Mma(s6, a, b3.X, b3.Y); s7 = Mma(s7, a, b3.Z, b3.W);
            }
            int kb = i * BlockK + 2 * (lane & 3);
            s0 = ScaleMask(s0, p, kb); s1 = ScaleMask(s1, p, kb + 8); s2 = ScaleMask(s2, p, kb + 16); s3 = ScaleMask(s3, p, kb + 24);
            s4 = ScaleMask(s4, p, kb + 32); s5 = ScaleMask(s5, p, kb + 40); s6 = ScaleMask(s6, p, kb + 48); s7 = ScaleMask(s7, p, kb + 56);

            // Online softmax (log2 domain): rows g (X, Y) and g + 8 (Z, W) of the warp's 16.
            float mx0 = Max4(s0.X, s0.Y, s1.X, s1.Y, s2.X, s2.Y, s3.X, s3.Y, s4.X, s4.Y, s5.X, s5.Y, s6.X, s6.Y, s7.X, s7.Y);
            float mx1 = Max4(s0.Z, s0.W, s1.Z, s1.W, s2.Z, s2.W, s3.Z, s3.W, s4.Z, s4.W, s5.Z, s5.W, s6.Z, s6.W, s7.Z, s7.W);
            mx0 = MathF.Max(mx0, Warp.ShuffleXor(mx0, 1)); mx0 = MathF.Max(mx0, Warp.ShuffleXor(mx0, 2));
            mx1 = MathF.Max(mx1, Warp.ShuffleXor(mx1, 1)); mx1 = MathF.Max(mx1, Warp.ShuffleXor(mx1, 2));
            float n0 = MathF.Max(m0, mx0), n1 = MathF.Max(m1, mx1);
            float alpha0 = Exp2(m0 - n0), alpha1 = Exp2(m1 - n1);
            m0 = n0; m1 = n1;
            s0 = Exp(s0, n0, n1); s1 = Exp(s1, n0, n1); s2 = Exp(s2, n0, n1); s3 = Exp(s3, n0, n1);
            s4 = Exp(s4, n0, n1); s5 = Exp(s5, n0, n1); s6 = Exp(s6, n0, n1); s7 = Exp(s7, n0, n1);
            l0 = l0 * alpha0 + (s0.X + s0.Y + s1.X + s1.Y + s2.X + s2.Y + s3.X + s3.Y + s4.X + s4.Y + s5.X + s5.Y + s6.X + s6.Y + s7.X + s7.Y);
            l1 = l1 * alpha1 + (s0.Z + s0.W + s1.Z + s1.W + s2.Z + s2.W + s3.Z + s3.W + s4.Z + s4.W + s5.Z + s5.W + s6.Z + s6.W + s7.Z + s7.W);
            o0 = Rescale(o0, alpha0, alpha1); o1 = Rescale(o1, alpha0, alpha1); o2 = Rescale(o2, alpha0, alpha1); o3 = Rescale(o3, alpha0, alpha1);
            o4 = Rescale(o4, alpha0, alpha1); o5 = Rescale(o5, alpha0, alpha1); o6 = Rescale(o6, alpha0, alpha1); o7 = Rescale(o7, alpha0, alpha1);

            // O += P·V: P's k16 step kk is S tiles 2kk and 2kk+1, packed to bf16 in place.
            for (int kk = 0; kk < BlockK / 16; kk++)
            {
                Frag lo = kk == 0 ? s0 : kk == 1 ? s2 : kk == 2 ? s4 : s6, hi = kk == 0 ? s1 : kk == 1 ? s3 : kk == 2 ? s5 : s7;
                var pa = new U4(Pack(lo.X, lo.Y), Pack(lo.Z, lo.W), Pack(hi.X, hi.Y), Pack(hi.Z, hi.W));
                U4 v0 = VFragment(sv, g, r, kk, 0), v1 = VFragment(sv, g, r, kk, 1), v2 = VFragment(sv, g, r, kk, 2), v3 = VFragment(sv, g, r, kk, 3);
                o0 = Mma(o0, pa, v0.X, v0.Y); o1 = Mma(o1, pa, v0.Z, v0.W); o2 = Mma(o2, pa, v1.X, v1.Y); o3 = Mma(o3, pa, v1.Z, v1.W);
                o4 = Mma(o4, pa, v2.X, v2.Y); o5 = Mma(o5, pa, v2.Z, v2.W); o6 = Mma(o6, pa, v3.X, v3.Y); o7 = Mma(o7, pa, v3.Z, v3.W);
            }
            Group.Barrier();   // everyone is done with this stage before the next iteration refills it
        }
        WaitAll();

        l0 += Warp.ShuffleXor(l0, 1); l0 += Warp.ShuffleXor(l0, 2);
        l1 += Warp.ShuffleXor(l1, 1); l1 += Warp.ShuffleXor(l1, 2);
        float inv0 = 1f / l0, inv1 = 1f / l1;
        int row = q0 + warp * 16 + (lane >> 2), col = 2 * (lane & 3);
        long rowBase = (long)bh * p.N;
        Store(o, p, rowBase, row, col, o0, inv0, inv1); Store(o, p, rowBase, row, col + 8, o1, inv0, inv1);
        Store(o, p, rowBase, row, col + 16, o2, inv0, inv1); Store(o, p, rowBase, row, col + 24, o3, inv0, inv1);
        Store(o, p, rowBase, row, col + 32, o4, inv0, inv1); Store(o, p, rowBase, row, col + 40, o5, inv0, inv1);
        Store(o, p, rowBase, row, col + 48, o6, inv0, inv1); Store(o, p, rowBase, row, col + 56, o7, inv0, inv1);
        if ((lane & 3) == 0)
        {
            const float Ln2 = 0.6931471805599453f;
            if (row < p.N) lse[rowBase + row] = (m0 + Log2(l0)) * Ln2;
            if (row + 8 < p.N) lse[rowBase + row + 8] = (m1 + Log2(l1)) * Ln2;
        }
        if (smem.Length < 0) o[0] = 0f;   // keeps the dynamic shared buffer declared
    }

    /// <summary>cp.async of a 64-row × 64-value bf16 tile (rows r0.., zero past n) into shared memory at offset.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void LoadTile(long baseAddr, int r0, int n, int tid, int offset)
    {
        for (int q = 0; q < 4; q++)
        {
            int id = tid + q * Threads, row = id >> 3, chunk = id & 7;
            bool inside = r0 + row < n;
            long src = inside ? baseAddr + ((long)(r0 + row) * D + chunk * 8) * 2 : baseAddr;
            CopyAsync16((uint)(offset + Offset(row, chunk)), src, inside ? 16u : 0u);
        }
    }

    /// <summary>K as mma's B operand (keys = n, d = k; K-contiguous rows): two n8 key tiles of pair j.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static U4 KFragment(int sk, int g, int r, int ks, int j) =>
        LoadMatrix(sk + Offset(j * 16 + r + (g >> 1) * 8, ks * 2 + (g & 1)));

    /// <summary>V as mma's B operand (keys = k, d = n; n-contiguous rows, so .trans): two n8 d tiles of pair j.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static U4 VFragment(int sv, int g, int r, int kk, int j) =>
        LoadMatrixTrans(sv + Offset(kk * 16 + r + (g & 1) * 8, (j * 16 + (g >> 1) * 8) >> 3));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Frag ScaleMask(Frag s, AttentionLabArgs p, int key)
    {
        float a = key < p.N ? s.X * p.ScaleLog2 : float.NegativeInfinity, b = key + 1 < p.N ? s.Y * p.ScaleLog2 : float.NegativeInfinity;
        float c = key < p.N ? s.Z * p.ScaleLog2 : float.NegativeInfinity, d = key + 1 < p.N ? s.W * p.ScaleLog2 : float.NegativeInfinity;
        return new Frag(a, b, c, d);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Frag Exp(Frag s, float n0, float n1) => new(Exp2(s.X - n0), Exp2(s.Y - n0), Exp2(s.Z - n1), Exp2(s.W - n1));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Frag Rescale(Frag o, float a0, float a1) => new(o.X * a0, o.Y * a0, o.Z * a1, o.W * a1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Max4(float a, float b, float c, float d, float e, float f, float g, float h,
                      float i, float j, float k, float l, float m, float n, float o, float p) =>
        MathF.Max(MathF.Max(MathF.Max(MathF.Max(a, b), MathF.Max(c, d)), MathF.Max(MathF.Max(e, f), MathF.Max(g, h))),
                  MathF.Max(MathF.Max(MathF.Max(i, j), MathF.Max(k, l)), MathF.Max(MathF.Max(m, n), MathF.Max(o, p))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(ArrayView<float> o, AttentionLabArgs p, long rowBase, int row, int col, Frag f, float inv0, float inv1)
    {
        if (row < p.N) { o[(rowBase + row) * D + col] = f.X * inv0; o[(rowBase + row) * D + col + 1] = f.Y * inv0; }
        if (row + 8 < p.N) { o[(rowBase + row + 8) * D + col] = f.Z * inv1; o[(rowBase + row + 8) * D + col + 1] = f.W * inv1; }
    }

    // ---- inline PTX -----------------------------------------------------------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Exp2(float x)
    {
        CudaAsm.Emit("ex2.approx.ftz.f32 %0, %1;", out float y, x);
        return y;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Log2(float x)
    {
        CudaAsm.Emit("lg2.approx.ftz.f32 %0, %1;", out float y, x);
        return y;
    }

    /// <summary>Two f32 → one bf16x2 register, lo in the low half (the lower column index), round to nearest even.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static uint Pack(float lo, float hi)
    {
        CudaAsm.Emit("cvt.rn.bf16x2.f32 %0, %1, %2;", out uint packed, hi, lo);
        return packed;
    }
}
