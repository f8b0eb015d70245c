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
    /// <summary>128 (4 warps of 64×64) or 256 (8 warps of 64×32) for a 128×128 tile (<see cref="MatmulTensorCoreKernels.ThreadsFor"/>).</summary>
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
/// A group computes a block tile of C (<see cref="IGemmTile"/>: 128×128 by default, 64×128 for short K), split by
/// <see cref="IGemmWarps"/>: warps of 64×32 (4×4 mma tiles, 64 f32 accumulators per thread) or of 64×64 (4×8 tiles,
/// 128 accumulators; a quarter less ldmatrix traffic per mma). K advances in slices of 64 (or 32) through a 3-stage
/// (or 4-stage) cp.async pipeline in dynamic shared memory (default 3 × 32 KB = 96 KB, above the 48 KB default: the
/// host raises the kernel's limit with cuFuncSetAttribute).
/// Fragments come in with ldmatrix (.trans for operands whose M/N dimension is the contiguous one). Shared rows are
/// XOR-swizzled by 16-byte chunk so each ldmatrix phase (8 rows, one chunk column) hits 8 distinct bank groups.
/// Each thread's copy addresses are worked out once; a slice only adds its k offset. The accumulators and fragments
/// are separate locals passed by value: a local whose address is taken stays in local memory.
/// The warp primitives are a type argument (<see cref="IWarpMma{TSelf}"/>): inline PTX on CUDA, emulated on the CPU
/// accelerator, where the tests run it against float64. The host routes other backends and unaligned shapes to v1.
/// C is f32 (<see cref="Gemm{TO, TW, TT, TM}"/>) or bf16 (<see cref="GemmBF16Out{TO, TW, TT, TM}"/>, staged through shared memory).
/// </summary>
public static partial class MatmulTensorCoreKernels
{
    /// <summary>The default tile (<see cref="Tile128x128K64"/>); TileN is every tile's.</summary>
    public const int TileM = 128, TileN = 128, TileK = 64, Stages = 3;
    public const int OperandBytes = TileM * TileK * 2, StageBytes = 2 * OperandBytes, SharedBytes = Stages * StageBytes;

    // Two shared layouts per operand tile (R = 128 or 64 rows along M or N, TileK = 64 or 32 along K), both rows of
    // whole 16-byte chunks:
    //   K-contiguous  : R rows of 2·TileK bytes (TileK/8 chunks of 8 k)
    //   MN-contiguous : TileK rows of 2·R bytes (R/8 chunks of 8 m/n)
    // 8 consecutive rows at one logical chunk land in 8 different bank groups: chunk' = chunk ^ (row & 7), except for
    // 64-byte rows (two per 128 bytes), where chunk' = chunk ^ ((row >> 1) & 3).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int KContigOffset(int row, int chunk, int tileK) =>
        tileK == 64 ? row * 128 + ((chunk ^ (row & 7)) << 4) : row * 64 + ((chunk ^ ((row >> 1) & 3)) << 4);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int MnContigOffset(int row, int chunk, int rowBytes) => row * rowBytes + ((chunk ^ (row & 7)) << 4);

    /// <summary>A thread's share of one operand tile: rows·TileK / 8 / threads 16-byte chunks, q = 0, 1, …, each threads·16 bytes
    /// further in shared memory and ByteStep bytes further in global memory than the one before. Offsets inside one
    /// matrix are 32-bit (the host checks each matrix is under 2 GB): the copy loop then costs one 64-bit add per chunk.</summary>
    public struct ChunkPlan
    {
        public int Smem, KOffset, RowsOk;   // KOffset: the chunk's k (K-contiguous) or first row's k (MN-contiguous)
        public int Bytes, ByteStep;         // byte offset of chunk 0 at k0 = 0, and from chunk q to q + 1
    }

    /// <summary>Where the pipeline will load next: slice k0 of batch Bb into stage Stage, Left slices to go.</summary>
    public struct LoadCursor { public int K0, Bb, Left, Stage; }

    /// <summary>Chunk q of thread tid is chunk id = tid + q·threads of the tile: the same column chunk,
    /// threads / chunks-per-row rows further (a multiple of 8, so the swizzle repeats), which is always threads·16
    /// bytes of shared memory. <paramref name="tileRows"/>: the tile's M (or N) extent.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static ChunkPlan Plan(bool mnContiguous, int ld, int r0, int rows, int tid, int threads, int tileRows, int tileK)
    {
        ChunkPlan c;
        int shift = ChunkShift(mnContiguous ? tileRows >> 3 : tileK >> 3), perRow = (1 << shift) - 1;
        int row = tid >> shift, chunk = tid & perRow;
        if (mnContiguous)
        {
            // row = k, chunk = 8 columns of m/n
            c.Smem = MnContigOffset(row, chunk, 2 * tileRows);
            c.KOffset = row;
            c.RowsOk = r0 + chunk * 8 < rows ? 1 : 0;
            c.Bytes = 2 * (row * ld + r0 + chunk * 8);
        }
        else
        {
            // row = m/n, chunk = 8 values of k
            c.Smem = KContigOffset(row, chunk, tileK);
            c.KOffset = chunk * 8;
            c.RowsOk = rows - r0 - row;                           // > 0 for chunk 0; chunk q is q·(threads >> shift) rows further
            c.Bytes = 2 * ((r0 + row) * ld + chunk * 8);
        }
        c.ByteStep = 2 * (threads >> shift) * ld;
        return c;
    }

    /// <summary>The GEMM on any implementation of the warp primitives (<see cref="PtxWarpMma"/> on CUDA,
    /// <see cref="EmulatedWarpMma"/> on the CPU accelerator), f32 C. Launch with <see cref="ThreadsFor"/> threads and <see cref="SharedBytesFor"/> of
    /// dynamic shared memory, one group per output tile (x) and output batch × K piece (y).</summary>
    public static void Gemm<TO, TW, TT, TM>(ArrayView<float> c, ArrayView<float> bias, TensorCoreGemmArgs p)
        where TO : struct, IGemmOrientation where TW : struct, IGemmWarps where TT : struct, IGemmTile where TM : struct, IWarpMma<TM>
    {
        var smem = SharedMemory.GetDynamic<byte>();   // addressed through the primitives (on CUDA: __dyn_shared_alloca)
        var m = default(TM).Bind(smem);
        var at = Place<TW, TT>(p.TilesN);
        int splits = XMath.Max(p.Splits, 1), outBatch = Grid.IdxY / splits, piece = Grid.IdxY - outBatch * splits;
        var acc = Accumulate<TO, TW, TT, TM>(m, p, at, outBatch, piece);

        int cBase = outBatch * p.StrideC, lane = at.Tid & 31;
        int row = at.M0 + at.Wm * 64 + (lane >> 2), col = at.N0 + at.ColBase + (lane & 3) * 2;
        bool wide = default(TW).Wide, add = p.Splits > 1;
        StoreRow(c, bias, p.M, p.N, p.Ldc, p.HasBias, add, cBase, row, col, acc.R0, wide);
        StoreRow(c, bias, p.M, p.N, p.Ldc, p.HasBias, add, cBase, row + 16, col, acc.R1, wide);
        StoreRow(c, bias, p.M, p.N, p.Ldc, p.HasBias, add, cBase, row + 32, col, acc.R2, wide);
        StoreRow(c, bias, p.M, p.N, p.Ldc, p.HasBias, add, cBase, row + 48, col, acc.R3, wide);
        if (smem.Length < 0) c[0] = 0f;   // never true; keeps the dynamic shared buffer declared in the PTX
    }

    /// <summary>Where a thread works: its warp's 64-row block (Wm) and first column (ColBase) inside the group's tile
    /// at (M0, N0) of C.</summary>
    public readonly struct WarpPlace(int tid, int wm, int colBase, int m0, int n0)
    {
        public readonly int Tid = tid, Wm = wm, ColBase = colBase, M0 = m0, N0 = n0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static WarpPlace Place<TW, TT>(int tilesN) where TW : struct, IGemmWarps where TT : struct, IGemmTile
    {
        bool wide = default(TW).Wide;
        int tid = Group.IdxX, warp = tid >> 5, tile = Grid.IdxX, tm = tile / tilesN;
        int wm = wide ? warp >> 1 : warp >> 2, colBase = wide ? (warp & 1) * 64 : (warp & 3) * 32;
        return new WarpPlace(tid, wm, colBase, tm * default(TT).TileM, (tile - tm * tilesN) * TileN);
    }

    /// <summary>A warp's accumulators after the K loop: R{i} holds rows wm·64 + i·16.. as n8 tiles F0..F7 (F4..F7
    /// only in the wide layout).</summary>
    public readonly struct WarpAcc(Frag8 r0, Frag8 r1, Frag8 r2, Frag8 r3) { public readonly Frag8 R0 = r0, R1 = r1, R2 = r2, R3 = r3; }

    /// <summary>The main loop, shared by every epilogue: the cp.async pipeline over all K slices (and summed batches)
    /// and the warp's mma.sync; returns once every copy has landed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static WarpAcc Accumulate<TO, TW, TT, TM>(TM m, in TensorCoreGemmArgs p, WarpPlace at, int outBatch, int piece)
        where TO : struct, IGemmOrientation where TW : struct, IGemmWarps where TT : struct, IGemmTile where TM : struct, IWarpMma<TM>
    {
        var o = default(TO);
        var w = default(TW);
        var t = default(TT);
        int tid = at.Tid, lane = tid & 31, wm = at.Wm, colBase = at.ColBase, threads = ThreadsFor(t.TileM, w.Wide);
        int operandA = t.TileM * t.TileK * 2, stageBytes = operandA + TileN * t.TileK * 2;
        var planA = Plan(o.TransA, p.Lda, at.M0, p.M, tid, threads, t.TileM, t.TileK);
        var planB = Plan(!o.TransB, p.Ldb, at.N0, p.N, tid, threads, TileN, t.TileK);
        // Slice s of the run is slice s % KTiles of batch s / KTiles (summed) or of this group's batch.
        int slices = p.KTiles * (p.SumBatch != 0 ? p.Batch : 1), first = piece * p.SplitSlices;
        LoadCursor cur;
        cur.K0 = (first % p.KTiles) * t.TileK; cur.Bb = p.SumBatch != 0 ? first / p.KTiles : outBatch;
        cur.Left = p.Splits > 1 ? XMath.Min(p.SplitSlices, slices - first) : slices; cur.Stage = 0;
        int iters = cur.Left;

        // Prologue: all stages but one in flight.
        cur = Issue(m, o, t, p, planA, planB, cur, threads);
        cur = Issue(m, o, t, p, planA, planB, cur, threads);
        if (t.Stages == 4) cur = Issue(m, o, t, p, planA, planB, cur, threads);

        // t{i}{j}: rows wm·64 + i·16, columns colBase + j·8 (j ≥ 4 only in the wide layout).
        Frag t00 = default, t01 = default, t02 = default, t03 = default, t04 = default, t05 = default, t06 = default, t07 = default;
        Frag t10 = default, t11 = default, t12 = default, t13 = default, t14 = default, t15 = default, t16 = default, t17 = default;
        Frag t20 = default, t21 = default, t22 = default, t23 = default, t24 = default, t25 = default, t26 = default, t27 = default;
        Frag t30 = default, t31 = default, t32 = default, t33 = default, t34 = default, t35 = default, t36 = default, t37 = default;
        int g = lane >> 3, r = lane & 7, stage = 0;
        for (int it = 0; it < iters; it++)
        {
            if (t.Stages == 4) m.WaitTwoGroupsPending(); else m.WaitOneGroupPending();
            Group.Barrier();   // stage `it` visible to all warps; stage it-1 no longer read by anyone
            cur = Issue(m, o, t, p, planA, planB, cur, threads);

            int sa = stage * stageBytes, sb = sa + operandA;
            stage = stage == t.Stages - 1 ? 0 : stage + 1;
            for (int ks = 0; ks < t.TileK / 16; ks++)
            {
                U4 x0 = LoadA(m, o, t, sa, wm, lane, g, r, ks, 0), x1 = LoadA(m, o, t, sa, wm, lane, g, r, ks, 1);
                U4 x2 = LoadA(m, o, t, sa, wm, lane, g, r, ks, 2), x3 = LoadA(m, o, t, sa, wm, lane, g, r, ks, 3);
                U4 y0 = LoadB(m, o, t, sb, colBase, g, r, ks, 0), y1 = LoadB(m, o, t, sb, colBase, g, r, ks, 1);
                t00 = m.Mma(t00, x0, y0.X, y0.Y); t01 = m.Mma(t01, x0, y0.Z, y0.W); t02 = m.Mma(t02, x0, y1.X, y1.Y); t03 = m.Mma(t03, x0, y1.Z, y1.W);
                t10 = m.Mma(t10, x1, y0.X, y0.Y); t11 = m.Mma(t11, x1, y0.Z, y0.W); t12 = m.Mma(t12, x1, y1.X, y1.Y); t13 = m.Mma(t13, x1, y1.Z, y1.W);
                t20 = m.Mma(t20, x2, y0.X, y0.Y); t21 = m.Mma(t21, x2, y0.Z, y0.W); t22 = m.Mma(t22, x2, y1.X, y1.Y); t23 = m.Mma(t23, x2, y1.Z, y1.W);
                t30 = m.Mma(t30, x3, y0.X, y0.Y); t31 = m.Mma(t31, x3, y0.Z, y0.W); t32 = m.Mma(t32, x3, y1.X, y1.Y); t33 = m.Mma(t33, x3, y1.Z, y1.W);
                if (w.Wide)
                {
                    U4 y2 = LoadB(m, o, t, sb, colBase, g, r, ks, 2), y3 = LoadB(m, o, t, sb, colBase, g, r, ks, 3);
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
    static LoadCursor Issue<TM, TO, TT>(TM m, TO o, TT t, in TensorCoreGemmArgs p, ChunkPlan a, ChunkPlan b, LoadCursor cur, int threads)
        where TM : struct, IWarpMma<TM> where TO : struct, IGemmOrientation where TT : struct, IGemmTile
    {
        if (cur.Left > 0)
        {
            int operandA = t.TileM * t.TileK * 2, stageOffset = cur.Stage * (operandA + TileN * t.TileK * 2);
            long aBase = p.A + 2 * (cur.Bb * p.StrideA), bBase = p.B + 2 * (cur.Bb * p.StrideB);
            int ka = 2 * (o.TransA ? cur.K0 * p.Lda : cur.K0), kb = 2 * (o.TransB ? cur.K0 : cur.K0 * p.Ldb);
            for (int q = 0; q < t.TileM * t.TileK / 8 / threads; q++)
                CopyChunk(m, o.TransA, a, aBase, ka, cur.K0, p.K, q, threads, RowStep(o.TransA, t.TileM, t.TileK, threads), stageOffset);
            for (int q = 0; q < TileN * t.TileK / 8 / threads; q++)
                CopyChunk(m, !o.TransB, b, bBase, kb, cur.K0, p.K, q, threads, RowStep(!o.TransB, TileN, t.TileK, threads), stageOffset + operandA);
            cur.K0 += t.TileK;
            if (cur.K0 >= p.K) { cur.K0 = 0; cur.Bb++; }
            cur.Left--;
        }
        cur.Stage = cur.Stage == t.Stages - 1 ? 0 : cur.Stage + 1;
        m.Commit();   // an empty group past the end keeps "wait_group n" meaning "the slice n groups back is in"
        return cur;
    }

    /// <summary>Stored rows between a thread's consecutive chunks (k rows when MN-contiguous, m/n rows otherwise).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int RowStep(bool mnContiguous, int tileRows, int tileK, int threads) =>
        threads >> ChunkShift(mnContiguous ? tileRows >> 3 : tileK >> 3);

    /// <summary>Chunk q of a thread's plan for slice k0 (<paramref name="kBytes"/> = k0's byte offset along the stored rows).
    /// A chunk outside the matrix copies 0 bytes from the matrix's first address (valid, never read); cp.async zero-fills
    /// whatever it does not read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void CopyChunk<TM>(TM m, bool mnContiguous, ChunkPlan c, long baseAddr, int kBytes, int k0, int k, int q, int threads, int rowStep, int stageOffset)
        where TM : struct, IWarpMma<TM>
    {
        bool inside = mnContiguous
            ? c.RowsOk != 0 && k0 + c.KOffset + q * rowStep < k
            : c.RowsOk > q * rowStep && k0 + c.KOffset < k;
        int offset = inside ? c.Bytes + q * c.ByteStep + kBytes : 0;
        // A K-contiguous chunk that straddles K reads only up to K (the rest of the stored row may be any padding).
        int bytes = !inside ? 0 : mnContiguous ? 16 : XMath.Min(16, 2 * (k - k0 - c.KOffset));
        m.CopyAsync16((uint)(stageOffset + c.Smem + q * threads * 16), baseAddr + offset, (uint)bytes);
    }

    /// <summary>ldmatrix.x4 of A's m16k16 tile <paramref name="i"/> of the warp: each lane supplies one row address of
    /// one of the four 8×8 matrices, giving mma's a0..a3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static U4 LoadA<TM, TO, TT>(TM m, TO o, TT t, int sa, int wm, int lane, int g, int r, int ks, int i)
        where TM : struct, IWarpMma<TM> where TO : struct, IGemmOrientation where TT : struct, IGemmTile
    {
        if (o.TransA)
            return m.LoadMatrixX4Trans(sa + MnContigOffset(ks * 16 + r + (g >> 1) * 8, (wm * 64 + i * 16 + (g & 1) * 8) >> 3, 2 * t.TileM));
        return m.LoadMatrixX4(sa + KContigOffset(wm * 64 + i * 16 + (lane & 15), ks * 2 + (lane >> 4), t.TileK));
    }

    /// <summary>ldmatrix.x4 of B's k16n16 block <paramref name="j"/> of the warp (columns colBase + j·16): (X, Y) = b0, b1 of the first n8 tile,
    /// (Z, W) of the second.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static U4 LoadB<TM, TO, TT>(TM m, TO o, TT t, int sb, int colBase, int g, int r, int ks, int j)
        where TM : struct, IWarpMma<TM> where TO : struct, IGemmOrientation where TT : struct, IGemmTile
    {
        if (o.TransB)
            return m.LoadMatrixX4(sb + KContigOffset(colBase + j * 16 + r + (g >> 1) * 8, ks * 2 + (g & 1), t.TileK));
        return m.LoadMatrixX4Trans(sb + MnContigOffset(ks * 16 + r + (g & 1) * 8, (colBase + j * 16 + (g >> 1) * 8) >> 3, 2 * TileN));
    }

    /// <summary>One row block of a warp's f32 accumulators (F4..F7 only when wide); the wgmma GEMM stores its
    /// 64×64 warpgroup tile through it too.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreRow(ArrayView<float> c, ArrayView<float> bias, int m, int n, int ldc, int hasBias, bool add, int cBase, int row, int col, Frag8 t, bool wide)
    {
        StoreFrag(c, bias, m, n, ldc, hasBias, add, cBase, row, col, t.F0);
        StoreFrag(c, bias, m, n, ldc, hasBias, add, cBase, row, col + 8, t.F1);
        StoreFrag(c, bias, m, n, ldc, hasBias, add, cBase, row, col + 16, t.F2);
        StoreFrag(c, bias, m, n, ldc, hasBias, add, cBase, row, col + 24, t.F3);
        if (!wide) return;
        StoreFrag(c, bias, m, n, ldc, hasBias, add, cBase, row, col + 32, t.F4);
        StoreFrag(c, bias, m, n, ldc, hasBias, add, cBase, row, col + 40, t.F5);
        StoreFrag(c, bias, m, n, ldc, hasBias, add, cBase, row, col + 48, t.F6);
        StoreFrag(c, bias, m, n, ldc, hasBias, add, cBase, row, col + 56, t.F7);
    }

    /// <summary>One m16n8 accumulator tile into an f32 C: (row, col), (row,
    /// col + 1), (row + 8, col), (row + 8, col + 1), inside the matrix only, plus bias (1: per column, 2: per row), or
    /// added atomically (<paramref name="add"/>: split-K pieces, no bias).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreFrag(ArrayView<float> c, ArrayView<float> bias, int m, int n, int ldc, int hasBias, bool add, int cBase, int row, int col, Frag f)
    {
        Store(c, bias, m, n, ldc, hasBias, add, cBase, row, col, f.X);
        Store(c, bias, m, n, ldc, hasBias, add, cBase, row, col + 1, f.Y);
        Store(c, bias, m, n, ldc, hasBias, add, cBase, row + 8, col, f.Z);
        Store(c, bias, m, n, ldc, hasBias, add, cBase, row + 8, col + 1, f.W);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(ArrayView<float> c, ArrayView<float> bias, int m, int n, int ldc, int hasBias, bool add, int cBase, int i, int j, float v)
    {
        if (i >= m || j >= n) return;
        int at = cBase + i * ldc + j;
        if (add) Atomic.Add(ref c[at], v);
        else c[at] = hasBias == 1 ? v + bias[j] : hasBias == 2 ? v + bias[i] : v;
    }
}
