using System.Runtime.CompilerServices;
using ILGPU;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>Arguments of <see cref="WgmmaGemmKernels.Gemm{TO, TG}"/>: sizes, leading dimensions and batch strides in
/// elements (C's rows may be padded: Ldc ≥ N).</summary>
public struct WgmmaGemmArgs
{
    public int M, N, K, Lda, Ldb, Ldc, StrideA, StrideB, StrideC, Batch, SumBatch, TilesN, KTiles;
    /// <summary>0: none; 1: bias[column]; 2: bias[row].</summary>
    public int HasBias;
}

/// <summary>
/// bf16 GEMM on Hopper's warpgroup MMA (wgmma m64n64k16, f32 accumulate): one warpgroup of 128 threads per 64×64 tile
/// of C, K in slices of 64 (four wgmma per slice) through two shared stages of 16 KB, both operands K-major and
/// unswizzled (8×16-byte core matrices, <see cref="LeadingBytes"/> apart along K, <see cref="StrideBytes"/> apart along
/// M or N). Each thread loads its 8 chunks of the next slice (8 k of one row, elements outside the matrix zero) into
/// registers while the current slice multiplies, then stores them into the other stage, so one barrier per slice
/// both publishes the new stage and frees the old one. Any transpose form: the copy transposes an MN-contiguous
/// operand on the way into shared memory. The warpgroup primitives are a type argument: <see cref="PtxWarpgroupMma"/>
/// on CUDA (sm_90 only), <see cref="EmulatedWarpgroupMma"/> on the CPU accelerator, where the tests run it.
/// </summary>
public static class WgmmaGemmKernels
{
    public const int TileM = 64, TileN = 64, TileK = 64, Threads = 128;
    public const int OperandBytes = TileM * TileK * 2, StageBytes = 2 * OperandBytes, SharedBytes = 2 * StageBytes;
    public const int LeadingBytes = 128, StrideBytes = 1024;
    const int ChunksPerThread = TileM * TileK / 8 / Threads;

    /// <summary>Chunk (row, 8 k starting at 8·kChunk) of a 64×64 K-major operand tile: core matrix (row/8, kChunk), row row%8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ChunkOffset(int row, int kChunk) => (row >> 3) * StrideBytes + kChunk * LeadingBytes + (row & 7) * 16;

    /// <summary>A thread's 4 chunks of A and 4 of B for one slice, bf16 pairs as loaded.</summary>
    public readonly struct Slice(U4 a0, U4 a1, U4 a2, U4 a3, U4 b0, U4 b1, U4 b2, U4 b3)
    {
        public readonly U4 A0 = a0, A1 = a1, A2 = a2, A3 = a3, B0 = b0, B1 = b1, B2 = b2, B3 = b3;
    }

    /// <summary>The CUDA kernel: <see cref="Gemm{TO, TG}"/> on the inline-PTX primitives.</summary>
    public static void Gemm<TO>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<float> c, ArrayView<float> bias, WgmmaGemmArgs p)
        where TO : struct, IGemmOrientation => Gemm<TO, PtxWarpgroupMma>(a, b, c, bias, p);

    /// <summary>Launch with <see cref="Threads"/> threads and <see cref="SharedBytes"/> of dynamic shared memory, one
    /// group per 64×64 output tile (x) and output batch (y).</summary>
    public static void Gemm<TO, TG>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<float> c, ArrayView<float> bias, WgmmaGemmArgs p)
        where TO : struct, IGemmOrientation where TG : struct, IWarpgroupMma<TG>
    {
        var smem = SharedMemory.GetDynamic<byte>();   // on CUDA: __dyn_shared_alloca, the descriptors' base
        var wg = default(TG).Bind(smem);
        int tid = Group.IdxX;
        int tile = Grid.IdxX, tm = tile / p.TilesN;
        int m0 = tm * TileM, n0 = (tile - tm * p.TilesN) * TileN, outBatch = Grid.IdxY;
        int firstBatch = p.SumBatch != 0 ? 0 : outBatch;
        int iters = p.KTiles * (p.SumBatch != 0 ? p.Batch : 1);

        Store<TO>(smem, Load<TO>(a, b, p, m0, n0, firstBatch, 0, tid), 0, tid);
        wg.FenceSharedStores();
        Group.Barrier();
        Acc64x64 acc = default;
        for (int it = 0; it < iters; it++)
        {
            int stage = (it & 1) * StageBytes;
            bool more = it + 1 < iters;
            int nextBatch = firstBatch + (it + 1) / p.KTiles;
            var next = more ? Load<TO>(a, b, p, m0, n0, nextBatch, (it + 1 - (nextBatch - firstBatch) * p.KTiles) * TileK, tid) : default;

            // Four k16 steps of two core matrices each; synchronous, so this stage is free for the stores after the barrier.
            var da = MatrixDescriptor.Create(stage, LeadingBytes, StrideBytes, WgmmaSwizzle.None);
            acc = wg.MmaK64(acc, da, da.Advance(OperandBytes), 2 * LeadingBytes);

            if (more)
            {
                Store<TO>(smem, next, StageBytes - stage, tid);
                wg.FenceSharedStores();
            }
            Group.Barrier();
        }

        int lane = tid & 31, cBase = outBatch * p.StrideC;
        int row = m0 + (tid >> 5) * 16 + (lane >> 2), col = n0 + (lane & 3) * 2;
        MatmulTensorCoreKernels.StoreRow(c, bias, p.M, p.N, p.Ldc, p.HasBias, false, cBase, row, col,
            new Frag8(acc.N0, acc.N1, acc.N2, acc.N3, acc.N4, acc.N5, acc.N6, acc.N7), wide: true);
        if (smem.Length < 0) c[0] = 0f;   // never true; keeps the dynamic shared buffer declared in the PTX
    }

    // Chunk id = tid + q·128 of a 64×64 tile (512 chunks of 8 k). K-contiguous operands: 8 consecutive chunks along k
    // per row, so neighbouring threads read neighbouring 16 bytes. MN-contiguous: neighbouring threads take
    // neighbouring rows (m or n), the contiguous direction.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int ChunkRow(bool mnContiguous, int id) => mnContiguous ? id & 63 : id >> 3;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int ChunkK(bool mnContiguous, int id) => mnContiguous ? id >> 6 : id & 7;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Slice Load<TO>(ArrayView<ushort> a, ArrayView<ushort> b, in WgmmaGemmArgs p, int m0, int n0, int batch, int k0, int tid)
        where TO : struct, IGemmOrientation
    {
        var o = default(TO);
        int baseA = batch * p.StrideA, baseB = batch * p.StrideB;
        bool mnA = o.TransA, mnB = !o.TransB;   // A is M×K (stored K×M when transposed); B's rows here are its N columns
        return new Slice(
            LoadChunk(a, baseA, mnA, p.Lda, p.M, m0, k0, p.K, tid), LoadChunk(a, baseA, mnA, p.Lda, p.M, m0, k0, p.K, tid + Threads),
            LoadChunk(a, baseA, mnA, p.Lda, p.M, m0, k0, p.K, tid + 2 * Threads), LoadChunk(a, baseA, mnA, p.Lda, p.M, m0, k0, p.K, tid + 3 * Threads),
            LoadChunk(b, baseB, mnB, p.Ldb, p.N, n0, k0, p.K, tid), LoadChunk(b, baseB, mnB, p.Ldb, p.N, n0, k0, p.K, tid + Threads),
            LoadChunk(b, baseB, mnB, p.Ldb, p.N, n0, k0, p.K, tid + 2 * Threads), LoadChunk(b, baseB, mnB, p.Ldb, p.N, n0, k0, p.K, tid + 3 * Threads));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static U4 LoadChunk(ArrayView<ushort> x, int start, bool mnContiguous, int ld, int rows, int r0, int k0, int kEnd, int id)
    {
        int r = r0 + ChunkRow(mnContiguous, id), k = k0 + ChunkK(mnContiguous, id) * 8;
        return new U4(Pair(x, start, mnContiguous, ld, rows, r, k, kEnd), Pair(x, start, mnContiguous, ld, rows, r, k + 2, kEnd),
                      Pair(x, start, mnContiguous, ld, rows, r, k + 4, kEnd), Pair(x, start, mnContiguous, ld, rows, r, k + 6, kEnd));
    }

    /// <summary>Elements (r, k) and (r, k + 1) as one bf16 pair, zero outside the matrix.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static uint Pair(ArrayView<ushort> x, int start, bool mnContiguous, int ld, int rows, int r, int k, int kEnd) =>
        Element(x, start, mnContiguous, ld, rows, r, k, kEnd) | ((uint)Element(x, start, mnContiguous, ld, rows, r, k + 1, kEnd) << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static ushort Element(ArrayView<ushort> x, int start, bool mnContiguous, int ld, int rows, int r, int k, int kEnd) =>
        r < rows && k < kEnd ? x[start + (mnContiguous ? k * ld + r : r * ld + k)] : (ushort)0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store<TO>(ArrayView<byte> smem, Slice s, int stage, int tid) where TO : struct, IGemmOrientation
    {
        var o = default(TO);
        var words = smem.Cast<uint>();
        StoreChunk(words, stage, o.TransA, tid, s.A0);
        StoreChunk(words, stage, o.TransA, tid + Threads, s.A1);
        StoreChunk(words, stage, o.TransA, tid + 2 * Threads, s.A2);
        StoreChunk(words, stage, o.TransA, tid + 3 * Threads, s.A3);
        StoreChunk(words, stage + OperandBytes, !o.TransB, tid, s.B0);
        StoreChunk(words, stage + OperandBytes, !o.TransB, tid + Threads, s.B1);
        StoreChunk(words, stage + OperandBytes, !o.TransB, tid + 2 * Threads, s.B2);
        StoreChunk(words, stage + OperandBytes, !o.TransB, tid + 3 * Threads, s.B3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreChunk(ArrayView<uint> words, int tileOffset, bool mnContiguous, int id, U4 v)
    {
        int w = (tileOffset + ChunkOffset(ChunkRow(mnContiguous, id), ChunkK(mnContiguous, id))) >> 2;
        words[w] = v.X; words[w + 1] = v.Y; words[w + 2] = v.Z; words[w + 3] = v.W;
    }
}
