using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime.Cuda;
using Mdm.Kernels.Gpu.TensorCore;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>Which operand dimension is contiguous in memory: the transpose flags of a GEMM, fixed per compiled kernel.</summary>
public interface IGemmOrientation { bool TransA { get; } bool TransB { get; } }
public struct OrientNN : IGemmOrientation { public readonly bool TransA => false; public readonly bool TransB => false; }
public struct OrientNT : IGemmOrientation { public readonly bool TransA => false; public readonly bool TransB => true; }
public struct OrientTN : IGemmOrientation { public readonly bool TransA => true; public readonly bool TransB => false; }
public struct OrientTT : IGemmOrientation { public readonly bool TransA => true; public readonly bool TransB => true; }

/// <summary>How a group's 128×128 tile is split among warps (fixed per compiled kernel).</summary>
public interface IGemmWarps
{
    /// <summary>128 (4 warps of 64×64) or 256 (8 warps of 64×32).</summary>
    int Threads { get; }
    /// <summary>64-column warp tiles: 8 ldmatrix per 32 mma instead of 6 per 16 (less shared-memory traffic per mma).</summary>
    bool Wide { get; }
}
public struct EightWarps64x32 : IGemmWarps { public readonly int Threads => 256; public readonly bool Wide => false; }
public struct FourWarps64x64 : IGemmWarps { public readonly int Threads => 128; public readonly bool Wide => true; }

/// <summary>Arguments of <see cref="MatmulTensorCoreKernels.Gemm"/>. A and B are raw device addresses (bf16 elements,
/// 16-byte aligned); strides and leading dimensions are in elements and multiples of 8.</summary>
public struct TensorCoreGemmArgs
{
    public long A, B, StrideA, StrideB;
    public int M, N, K, Lda, Ldb, Ldc, StrideC, Batch, SumBatch, TilesN, KTiles;
    /// <summary>0: none; 1: bias[column] (Linear); 2: bias[row] (a convolution's output channel).</summary>
    public int HasBias;
    /// <summary>bf16 output only: C's device address, and 1 when it and every row start are 16-byte aligned (Ldc and
    /// StrideC multiples of 8), so whole 8-value chunks go out as one 16-byte store.</summary>
    public long C;
    public int CAligned;
    /// <summary>Split-K (f32 C only): the run of K slices (over every summed batch) is cut into Splits pieces of
    /// SplitSlices; group y = outBatch·Splits + piece adds its partial product into C, which the host zeroed, with
    /// atomics. Splits = 1: one piece, plain stores.</summary>
    public int Splits, SplitSlices;
}

/// <summary>
/// bf16 GEMM on tensor cores (mma.sync m16n8k16, f32 accumulate): GPU GEMM v5. v1 = <see cref="MatmulKernels"/>, the
/// SIMT kernel that still serves F32, ILGPU's CPU accelerator and shapes this one cannot take. Earlier tensor-core
/// versions are in git: v2 (52fbf61, 32-deep K slices in 48 KB, addresses recomputed per slice), v3 (c03e87f, 64-deep
/// slices in 96 KB, copy plans), v4 (32-bit copy offsets); bench/RESULTS.md has each one's H200 timing.
/// A group computes a 128×128 tile of C, split by <see cref="IGemmWarps"/>: 8 warps of 64×32 (4×4 mma tiles, 64 f32
/// accumulators per thread) or 4 warps of 64×64 (4×8 tiles, 128 accumulators; a quarter less ldmatrix traffic per
/// mma). K advances in slices of 64 through a 3-stage cp.async pipeline in dynamic shared memory (3 × 32 KB = 96 KB,
/// above the 48 KB default: the host raises the kernel's limit with cuFuncSetAttribute).
/// Fragments come in with ldmatrix (.trans for operands whose M/N dimension is the contiguous one). Shared rows are
/// XOR-swizzled by 16-byte chunk so each ldmatrix phase (8 rows, one chunk column) hits 8 distinct bank groups.
/// Each thread's copy addresses are worked out once; a slice only adds its k offset. The accumulators and fragments
/// are separate locals passed by value: a local whose address is taken stays in local memory.
/// The warp primitives are a type argument (<see cref="IWarpMma{TSelf}"/>): inline PTX on CUDA, emulated on the CPU
/// accelerator, where the tests run it against float64. The host routes other backends and unaligned shapes to v1.
/// C is f32 (<see cref="Gemm{TO, TW, TM}"/>) or bf16 (<see cref="GemmBF16Out{TO, TW, TM}"/>, staged through shared memory).
/// </summary>
public static partial class MatmulTensorCoreKernels
{
    public const int TileM = 128, TileN = 128, TileK = 64, Stages = 3;
    public const int OperandBytes = TileM * TileK * 2, StageBytes = 2 * OperandBytes, SharedBytes = Stages * StageBytes;

    // Two shared layouts per operand tile (128 along M or N, 64 along K), both rows of whole 16-byte chunks:
    //   K-contiguous  : 128 rows of 128 B (8 chunks of 8 k)
    //   MN-contiguous :  64 rows of 256 B (16 chunks of 8 m/n)
    // chunk' = chunk ^ (row & 7) in both: 8 consecutive rows at one logical chunk land in 8 different bank groups.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int KContigOffset(int row, int chunk) => row * 128 + ((chunk ^ (row & 7)) << 4);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int MnContigOffset(int row, int chunk) => row * 256 + ((chunk ^ (row & 7)) << 4);

    /// <summary>A thread's share of one operand tile: 1024 / threads 16-byte chunks, q = 0, 1, …, each threads·16 bytes
    /// further in shared memory and ByteStep bytes further in global memory than the one before. Offsets inside one
    /// matrix are 32-bit (the host checks each matrix is under 2 GB): the copy loop then costs one 64-bit add per chunk.</summary>
    public struct ChunkPlan
    {
        public int Smem, KOffset, RowsOk;   // KOffset: the chunk's k (K-contiguous) or first row's k (MN-contiguous)
        public int Bytes, ByteStep;         // byte offset of chunk 0 at k0 = 0, and from chunk q to q + 1
    }

    /// <summary>Where the pipeline will load next: slice k0 of batch Bb into stage Stage, Left slices to go.</summary>
    public struct LoadCursor { public int K0, Bb, Left, Stage; }

    /// <summary>Chunk q of thread tid is chunk id = tid + q·threads of the tile: the same column chunk, threads/8
    /// (K-contiguous) or threads/16 (MN-contiguous) rows further, which is always threads·16 bytes of shared memory.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static ChunkPlan Plan(bool mnContiguous, int ld, int r0, int rows, int tid, int threads)
    {
        ChunkPlan c;
        if (mnContiguous)
        {
            int row = tid >> 4, chunk = tid & 15;                // row = k, chunk = 8 columns of m/n
            c.Smem = MnContigOffset(row, chunk);
            c.KOffset = row;
            c.RowsOk = r0 + chunk * 8 < rows ? 1 : 0;
            c.Bytes = 2 * (row * ld + r0 + chunk * 8);
            c.ByteStep = 2 * (threads >> 4) * ld;
        }
        else
        {
            int row = tid >> 3, chunk = tid & 7;                 // row = m/n, chunk = 8 values of k
            c.Smem = KContigOffset(row, chunk);
            c.KOffset = chunk * 8;
            c.RowsOk = rows - r0 - row;                           // > 0 for chunk 0; chunk q is q·threads/8 rows further
            c.Bytes = 2 * ((r0 + row) * ld + chunk * 8);
            c.ByteStep = 2 * (threads >> 3) * ld;
        }
        return c;
    }

    /// <summary>The CUDA kernel: <see cref="Gemm{TO, TW, TM}"/> on the inline-PTX primitives.</summary>
    public static void Gemm<TO, TW>(ArrayView<float> c, ArrayView<float> bias, TensorCoreGemmArgs p)
        where TO : struct, IGemmOrientation where TW : struct, IGemmWarps => Gemm<TO, TW, PtxWarpMma>(c, bias, p);

    /// <summary>The GEMM on any implementation of the warp primitives (<see cref="EmulatedWarpMma"/> runs it on the
    /// CPU accelerator), f32 C. Launch with <see cref="IGemmWarps.Threads"/> threads and <see cref="SharedBytes"/> of
    /// dynamic shared memory, one group per output tile (x) and output batch × K piece (y).</summary>
    public static void Gemm<TO, TW, TM>(ArrayView<float> c, ArrayView<float> bias, TensorCoreGemmArgs p)
        where TO : struct, IGemmOrientation where TW : struct, IGemmWarps where TM : struct, IWarpMma<TM>
    {
        var smem = SharedMemory.GetDynamic<byte>();   // addressed through the primitives (on CUDA: __dyn_shared_alloca)
        var w = default(TW);
        var m = default(TM).Bind(smem);
        int tid = Group.IdxX, lane = tid & 31, warp = tid >> 5;
        int wm = w.Wide ? warp >> 1 : warp >> 2, colBase = w.Wide ? (warp & 1) * 64 : (warp & 3) * 32;
        int tile = Grid.IdxX, tm = tile / p.TilesN;
        int m0 = tm * TileM, n0 = (tile - tm * p.TilesN) * TileN;
        int splits = XMath.Max(p.Splits, 1), outBatch = Grid.IdxY / splits, piece = Grid.IdxY - outBatch * splits;
        var acc = Accumulate<TO, TW, TM>(m, p, tid, wm, colBase, m0, n0, outBatch, piece);

        int cBase = outBatch * p.StrideC;
        int row = m0 + wm * 64 + (lane >> 2), col = n0 + colBase + (lane & 3) * 2;
        StoreRow(c, bias, p, cBase, row, col, acc.R0.F0, acc.R0.F1, acc.R0.F2, acc.R0.F3);
        StoreRow(c, bias, p, cBase, row + 16, col, acc.R1.F0, acc.R1.F1, acc.R1.F2, acc.R1.F3);
        StoreRow(c, bias, p, cBase, row + 32, col, acc.R2.F0, acc.R2.F1, acc.R2.F2, acc.R2.F3);
        StoreRow(c, bias, p, cBase, row + 48, col, acc.R3.F0, acc.R3.F1, acc.R3.F2, acc.R3.F3);
        if (w.Wide)
        {
            StoreRow(c, bias, p, cBase, row, col + 32, acc.R0.F4, acc.R0.F5, acc.R0.F6, acc.R0.F7);
            StoreRow(c, bias, p, cBase, row + 16, col + 32, acc.R1.F4, acc.R1.F5, acc.R1.F6, acc.R1.F7);
            StoreRow(c, bias, p, cBase, row + 32, col + 32, acc.R2.F4, acc.R2.F5, acc.R2.F6, acc.R2.F7);
            StoreRow(c, bias, p, cBase, row + 48, col + 32, acc.R3.F4, acc.R3.F5, acc.R3.F6, acc.R3.F7);
        }
        if (smem.Length < 0) c[0] = 0f;   // never true; keeps the dynamic shared buffer declared in the PTX
    }

    /// <summary>A warp's accumulators after the K loop: R{i} holds rows wm·64 + i·16.. as n8 tiles F0..F7 (F4..F7
    /// only in the wide layout).</summary>
    public readonly struct WarpAcc(Frag8 r0, Frag8 r1, Frag8 r2, Frag8 r3) { public readonly Frag8 R0 = r0, R1 = r1, R2 = r2, R3 = r3; }

    /// <summary>The main loop, shared by every epilogue: the cp.async pipeline over all K slices (and summed batches)
    /// and the warp's mma.sync; returns once every copy has landed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static WarpAcc Accumulate<TO, TW, TM>(TM m, in TensorCoreGemmArgs p, int tid, int wm, int colBase, int m0, int n0, int outBatch, int piece)
        where TO : struct, IGemmOrientation where TW : struct, IGemmWarps where TM : struct, IWarpMma<TM>
    {
        var o = default(TO);
        var w = default(TW);
        int lane = tid & 31;
        var planA = Plan(o.TransA, p.Lda, m0, p.M, tid, w.Threads);
        var planB = Plan(!o.TransB, p.Ldb, n0, p.N, tid, w.Threads);
        // Slice s of the run is slice s % KTiles of batch s / KTiles (summed) or of this group's batch.
        int slices = p.KTiles * (p.SumBatch != 0 ? p.Batch : 1), first = piece * p.SplitSlices;
        LoadCursor cur;
        cur.K0 = (first % p.KTiles) * TileK; cur.Bb = p.SumBatch != 0 ? first / p.KTiles : outBatch;
        cur.Left = p.Splits > 1 ? XMath.Min(p.SplitSlices, slices - first) : slices; cur.Stage = 0;
        int iters = cur.Left;

        // Prologue: stages 0 and 1 in flight.
        cur = Issue(m, o, w, p, planA, planB, cur);
        cur = Issue(m, o, w, p, planA, planB, cur);

        // t{i}{j}: rows wm·64 + i·16, columns colBase + j·8 (j ≥ 4 only in the wide layout).
        Frag t00 = default, t01 = default, t02 = default, t03 = default, t04 = default, t05 = default, t06 = default, t07 = default;
        Frag t10 = default, t11 = default, t12 = default, t13 = default, t14 = default, t15 = default, t16 = default, t17 = default;
        Frag t20 = default, t21 = default, t22 = default, t23 = default, t24 = default, t25 = default, t26 = default, t27 = default;
        Frag t30 = default, t31 = default, t32 = default, t33 = default, t34 = default, t35 = default, t36 = default, t37 = default;
        int g = lane >> 3, r = lane & 7, stage = 0;
        for (int it = 0; it < iters; it++)
        {
            m.WaitOneGroupPending();
            Group.Barrier();   // stage `it` visible to all warps; stage it-1 no longer read by anyone
            cur = Issue(m, o, w, p, planA, planB, cur);

            int sa = stage * StageBytes, sb = sa + OperandBytes;
            stage = stage == Stages - 1 ? 0 : stage + 1;
            for (int ks = 0; ks < TileK / 16; ks++)
            {
                U4 x0 = LoadA(m, o, sa, wm, lane, g, r, ks, 0), x1 = LoadA(m, o, sa, wm, lane, g, r, ks, 1);
                U4 x2 = LoadA(m, o, sa, wm, lane, g, r, ks, 2), x3 = LoadA(m, o, sa, wm, lane, g, r, ks, 3);
                U4 y0 = LoadB(m, o, sb, colBase, g, r, ks, 0), y1 = LoadB(m, o, sb, colBase, g, r, ks, 1);
                t00 = m.Mma(t00, x0, y0.X, y0.Y); t01 = m.Mma(t01, x0, y0.Z, y0.W); t02 = m.Mma(t02, x0, y1.X, y1.Y); t03 = m.Mma(t03, x0, y1.Z, y1.W);
                t10 = m.Mma(t10, x1, y0.X, y0.Y); t11 = m.Mma(t11, x1, y0.Z, y0.W); t12 = m.Mma(t12, x1, y1.X, y1.Y); t13 = m.Mma(t13, x1, y1.Z, y1.W);
                t20 = m.Mma(t20, x2, y0.X, y0.Y); t21 = m.Mma(t21, x2, y0.Z, y0.W); t22 = m.Mma(t22, x2, y1.X, y1.Y); t23 = m.Mma(t23, x2, y1.Z, y1.W);
                t30 = m.Mma(t30, x3, y0.X, y0.Y); t31 = m.Mma(t31, x3, y0.Z, y0.W); t32 = m.Mma(t32, x3, y1.X, y1.Y); t33 = m.Mma(t33, x3, y1.Z, y1.W);
                if (w.Wide)
                {
                    U4 y2 = LoadB(m, o, sb, colBase, g, r, ks, 2), y3 = LoadB(m, o, sb, colBase, g, r, ks, 3);
                    t04 = m.Mma(t04, x0, y2.X, y2.Y); t05 = m.Mma(t05, x0, y2.Z, y2.W); t06 = m.Mma(t06, x0, y3.X, y3.Y); t07 = m.Mma(t07, x0, y3.Z, y3.W);
                    t14 = m.Mma(t14, x1, y2.X, y2.Y); t15 = m.Mma(t15, x1, y2.Z, y2.W); t16 = m.Mma(t16, x1, y3.X, y3.Y); t17 = m.Mma(t17, x1, y3.Z, y3.W);
                    t24 = m.Mma(t24, x2, y2.X, y2.Y); t25 = m.Mma(t25, x2, y2.Z, y2.W); t26 = m.Mma(t26, x2, y3.X, y3.Y); t27 = m.Mma(t27, x2, y3.Z, y3.W);
                    t34 = m.Mma(t34, x3, y2.X, y2.Y); t35 = m.Mma(t35, x3, y2.Z, y2.W); t36 = m.Mma(t36, x3, y3.X, y3.Y); t37 = m.Mma(t37, x3, y3.Z, y3.W);
                }
            }
        }
        m.WaitAll();
        return new WarpAcc(new Frag8(t00, t01, t02, t03, t04, t05, t06, t07), new Frag8(t10, t11, t12, t13, t14, t15, t16, t17),
                           new Frag8(t20, t21, t22, t23, t24, t25, t26, t27), new Frag8(t30, t31, t32, t33, t34, t35, t36, t37));
    }

    /// <summary>Issues the cp.async copies of the slice under the cursor (none once all are issued), commits them as
    /// one group, and moves the cursor on. Chunks outside the matrix read 0 bytes and land as zeros.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static LoadCursor Issue<TM, TO, TW>(TM m, TO o, TW w, in TensorCoreGemmArgs p, ChunkPlan a, ChunkPlan b, LoadCursor cur)
        where TM : struct, IWarpMma<TM> where TO : struct, IGemmOrientation where TW : struct, IGemmWarps
    {
        if (cur.Left > 0)
        {
            int stageOffset = cur.Stage * StageBytes;
            long aBase = p.A + 2 * (cur.Bb * p.StrideA), bBase = p.B + 2 * (cur.Bb * p.StrideB);
            int ka = 2 * (o.TransA ? cur.K0 * p.Lda : cur.K0), kb = 2 * (o.TransB ? cur.K0 : cur.K0 * p.Ldb);
            for (int q = 0; q < 1024 / w.Threads; q++)
            {
                CopyChunk(m, o.TransA, a, aBase, ka, cur.K0, p.K, q, w.Threads, stageOffset);
                CopyChunk(m, !o.TransB, b, bBase, kb, cur.K0, p.K, q, w.Threads, stageOffset + OperandBytes);
            }
            cur.K0 += TileK;
            if (cur.K0 >= p.K) { cur.K0 = 0; cur.Bb++; }
            cur.Left--;
        }
        cur.Stage = cur.Stage == Stages - 1 ? 0 : cur.Stage + 1;
        m.Commit();   // an empty group past the end keeps "wait_group 1" meaning "the slice before is in"
        return cur;
    }

    /// <summary>Chunk q of a thread's plan for slice k0 (<paramref name="kBytes"/> = k0's byte offset along the stored rows).
    /// A chunk outside the matrix copies 0 bytes from the matrix's first address (valid, never read); cp.async zero-fills
    /// whatever it does not read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void CopyChunk<TM>(TM m, bool mnContiguous, ChunkPlan c, long baseAddr, int kBytes, int k0, int k, int q, int threads, int stageOffset)
        where TM : struct, IWarpMma<TM>
    {
        bool inside = mnContiguous
            ? c.RowsOk != 0 && k0 + c.KOffset + q * (threads >> 4) < k
            : c.RowsOk > q * (threads >> 3) && k0 + c.KOffset < k;
        int offset = inside ? c.Bytes + q * c.ByteStep + kBytes : 0;
        // A K-contiguous chunk that straddles K reads only up to K (the rest of the stored row may be any padding).
        int bytes = !inside ? 0 : mnContiguous ? 16 : XMath.Min(16, 2 * (k - k0 - c.KOffset));
        m.CopyAsync16((uint)(stageOffset + c.Smem + q * threads * 16), baseAddr + offset, (uint)bytes);
    }

    /// <summary>ldmatrix.x4 of A's m16k16 tile <paramref name="i"/> of the warp: each lane supplies one row address of
    /// one of the four 8×8 matrices, giving mma's a0..a3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static U4 LoadA<TM, TO>(TM m, TO o, int sa, int wm, int lane, int g, int r, int ks, int i)
        where TM : struct, IWarpMma<TM> where TO : struct, IGemmOrientation
    {
        if (o.TransA)
            return m.LoadMatrixX4Trans(sa + MnContigOffset(ks * 16 + r + (g >> 1) * 8, (wm * 64 + i * 16 + (g & 1) * 8) >> 3));
        return m.LoadMatrixX4(sa + KContigOffset(wm * 64 + i * 16 + (lane & 15), ks * 2 + (lane >> 4)));
    }

    /// <summary>ldmatrix.x4 of B's k16n16 block <paramref name="j"/> of the warp (columns colBase + j·16): (X, Y) = b0, b1 of the first n8 tile,
    /// (Z, W) of the second.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static U4 LoadB<TM, TO>(TM m, TO o, int sb, int colBase, int g, int r, int ks, int j)
        where TM : struct, IWarpMma<TM> where TO : struct, IGemmOrientation
    {
        if (o.TransB)
            return m.LoadMatrixX4(sb + KContigOffset(colBase + j * 16 + r + (g >> 1) * 8, ks * 2 + (g & 1)));
        return m.LoadMatrixX4Trans(sb + MnContigOffset(ks * 16 + r + (g & 1) * 8, (colBase + j * 16 + (g >> 1) * 8) >> 3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreRow(ArrayView<float> c, ArrayView<float> bias, in TensorCoreGemmArgs p, int cBase, int row, int col, Frag t0, Frag t1, Frag t2, Frag t3)
    {
        StoreFrag(c, bias, p, cBase, row, col, t0);
        StoreFrag(c, bias, p, cBase, row, col + 8, t1);
        StoreFrag(c, bias, p, cBase, row, col + 16, t2);
        StoreFrag(c, bias, p, cBase, row, col + 24, t3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreFrag(ArrayView<float> c, ArrayView<float> bias, in TensorCoreGemmArgs p, int cBase, int row, int col, Frag f)
    {
        Store(c, bias, p, cBase, row, col, f.X);
        Store(c, bias, p, cBase, row, col + 1, f.Y);
        Store(c, bias, p, cBase, row + 8, col, f.Z);
        Store(c, bias, p, cBase, row + 8, col + 1, f.W);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(ArrayView<float> c, ArrayView<float> bias, in TensorCoreGemmArgs p, int cBase, int i, int j, float v)
    {
        if (i >= p.M || j >= p.N) return;
        int at = cBase + i * p.Ldc + j;
        if (p.Splits > 1) Atomic.Add(ref c[at], v);
        else c[at] = p.HasBias == 1 ? v + bias[j] : p.HasBias == 2 ? v + bias[i] : v;
    }

}
