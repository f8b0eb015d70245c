using ILGPU;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>Reads one stored element as f32: the identity for F32, the exact bf16 widening (bits &lt;&lt; 16) for BF16.</summary>
public interface IWiden<T> where T : unmanaged { float Widen(T v); }
public struct F32Widen : IWiden<float> { public readonly float Widen(float v) => v; }
public struct BF16Widen : IWiden<ushort> { public readonly float Widen(ushort v) => Interop.IntAsFloat((uint)v << 16); }

/// <summary>Writes one f32 result as the output type: the identity for F32, round to nearest even for BF16.</summary>
public interface INarrow<T> where T : unmanaged { T Narrow(float v); }
public struct F32Narrow : INarrow<float> { public readonly float Narrow(float v) => v; }
public struct BF16Narrow : INarrow<ushort> { public readonly ushort Narrow(float v) => BFloat16.FromBits((uint)Interop.FloatAsInt(v)); }

/// <summary>Kernel arguments of <see cref="MatmulKernels.Gemm"/> (see <see cref="MatmulDesc"/>; flags are 0/1).</summary>
public struct GemmArgs
{
    public int Batch, M, N, K, Lda, Ldb, Ldc, StrideA, StrideB, StrideC, TransA, TransB, SumBatch, HasBias, TilesM, TilesN;
}

/// <summary>
/// Tiled shared-memory SGEMM. A group of 64 threads computes a 32×32 tile of C, 4×4 outputs per thread (rows ty+8r,
/// columns tx+8c, so a warp's stores and shared reads spread over consecutive addresses), stepping through K in slices
/// of 16: each slice of op(A) [32×16] and op(B) [16×32] is staged in shared memory (zero outside the matrix, so any
/// M, N, K works), with the global reads ordered along each operand's stored rows so they coalesce whatever the
/// transpose flags. Tiles of all batches are walked grid-stride; with SumBatch the batch loop runs inside the tile
/// (the sum of per-batch products, one C). 64 threads fit the ILGPU CPU accelerator's 128-thread groups.
/// C is F32 or BF16 (the f32 result plus bias, rounded once).
/// </summary>
public static class MatmulKernels
{
    public const int TileM = 32, TileN = 32, TileK = 16, Threads = 64;
    const int Pad = 33;   // shared row stride: 32 + 1 so column-ordered stores hit distinct banks

    [Kernel("MatmulF32", typeof(float), typeof(F32Widen), typeof(float), typeof(F32Narrow))]
    [Kernel("MatmulBF16", typeof(ushort), typeof(BF16Widen), typeof(float), typeof(F32Narrow))]
    [Kernel("MatmulF32ToBF16", typeof(float), typeof(F32Widen), typeof(ushort), typeof(BF16Narrow))]
    [Kernel("MatmulBF16ToBF16", typeof(ushort), typeof(BF16Widen), typeof(ushort), typeof(BF16Narrow))]
    public static void Gemm<T, TW, TC, TN>(ArrayView<T> a, ArrayView<T> b, ArrayView<TC> c, ArrayView<float> bias, GemmArgs p)
        where T : unmanaged where TW : struct, IWiden<T> where TC : unmanaged where TN : struct, INarrow<TC>
    {
        var sa = SharedMemory.Allocate<float>(TileK * Pad);   // sa[kk*Pad + i] = op(A)[i0+i, k0+kk]
        var sb = SharedMemory.Allocate<float>(TileK * Pad);   // sb[kk*Pad + j] = op(B)[k0+kk, j0+j]
        var w = default(TW);
        int t = Group.IdxX, tx = t % 8, ty = t / 8;
        int tilesPerBatch = p.TilesM * p.TilesN;
        int total = tilesPerBatch * (p.SumBatch != 0 ? 1 : p.Batch);
        for (int tile = Grid.IdxX; tile < total; tile += Grid.DimX)
        {
            int ob = tile / tilesPerBatch, rem = tile - ob * tilesPerBatch;
            int tm = rem / p.TilesN;
            int i0 = tm * TileM, j0 = (rem - tm * p.TilesN) * TileN;
            float c00 = 0f, c01 = 0f, c02 = 0f, c03 = 0f, c10 = 0f, c11 = 0f, c12 = 0f, c13 = 0f;
            float c20 = 0f, c21 = 0f, c22 = 0f, c23 = 0f, c30 = 0f, c31 = 0f, c32 = 0f, c33 = 0f;
            int bFirst = p.SumBatch != 0 ? 0 : ob, bEnd = p.SumBatch != 0 ? p.Batch : ob + 1;
            for (int bb = bFirst; bb < bEnd; bb++)
            {
                int aBase = bb * p.StrideA, bBase = bb * p.StrideB;
                for (int k0 = 0; k0 < p.K; k0 += TileK)
                {
                    for (int q = 0; q < TileM * TileK / Threads; q++)
                    {
                        int e = t + q * Threads, i, kk;
                        if (p.TransA != 0) { i = e % TileM; kk = e / TileM; } else { kk = e % TileK; i = e / TileK; }
                        int gi = i0 + i, gk = k0 + kk;
                        float v = 0f;
                        if (gi < p.M && gk < p.K)
                            v = w.Widen(p.TransA != 0 ? a[aBase + gk * p.Lda + gi] : a[aBase + gi * p.Lda + gk]);
                        sa[kk * Pad + i] = v;
                    }
                    for (int q = 0; q < TileN * TileK / Threads; q++)
                    {
                        int e = t + q * Threads, j, kk;
                        if (p.TransB != 0) { kk = e % TileK; j = e / TileK; } else { j = e % TileN; kk = e / TileN; }
                        int gj = j0 + j, gk = k0 + kk;
                        float v = 0f;
                        if (gj < p.N && gk < p.K)
                            v = w.Widen(p.TransB != 0 ? b[bBase + gj * p.Ldb + gk] : b[bBase + gk * p.Ldb + gj]);
                        sb[kk * Pad + j] = v;
                    }
                    Group.Barrier();
                    for (int kk = 0; kk < TileK; kk++)
                    {
                        int ra = kk * Pad + ty, rb = kk * Pad + tx;
                        float a0 = sa[ra], a1 = sa[ra + 8], a2 = sa[ra + 16], a3 = sa[ra + 24];
                        float b0 = sb[rb], b1 = sb[rb + 8], b2 = sb[rb + 16], b3 = sb[rb + 24];
                        c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                        c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                        c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                        c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
                    }
                    Group.Barrier();
                }
            }
            int cBase = ob * p.StrideC, r0 = i0 + ty, q0 = j0 + tx;
            Store<TC, TN>(c, bias, p, cBase, r0, q0, c00); Store<TC, TN>(c, bias, p, cBase, r0, q0 + 8, c01);
            Store<TC, TN>(c, bias, p, cBase, r0, q0 + 16, c02); Store<TC, TN>(c, bias, p, cBase, r0, q0 + 24, c03);
            Store<TC, TN>(c, bias, p, cBase, r0 + 8, q0, c10); Store<TC, TN>(c, bias, p, cBase, r0 + 8, q0 + 8, c11);
            Store<TC, TN>(c, bias, p, cBase, r0 + 8, q0 + 16, c12); Store<TC, TN>(c, bias, p, cBase, r0 + 8, q0 + 24, c13);
            Store<TC, TN>(c, bias, p, cBase, r0 + 16, q0, c20); Store<TC, TN>(c, bias, p, cBase, r0 + 16, q0 + 8, c21);
            Store<TC, TN>(c, bias, p, cBase, r0 + 16, q0 + 16, c22); Store<TC, TN>(c, bias, p, cBase, r0 + 16, q0 + 24, c23);
            Store<TC, TN>(c, bias, p, cBase, r0 + 24, q0, c30); Store<TC, TN>(c, bias, p, cBase, r0 + 24, q0 + 8, c31);
            Store<TC, TN>(c, bias, p, cBase, r0 + 24, q0 + 16, c32); Store<TC, TN>(c, bias, p, cBase, r0 + 24, q0 + 24, c33);
        }
    }

    static void Store<TC, TN>(ArrayView<TC> c, ArrayView<float> bias, GemmArgs p, int cBase, int i, int j, float v)
        where TC : unmanaged where TN : struct, INarrow<TC>
    {
        if (i < p.M && j < p.N) c[cBase + i * p.Ldc + j] = default(TN).Narrow(p.HasBias != 0 ? v + bias[j] : v);
    }
}
