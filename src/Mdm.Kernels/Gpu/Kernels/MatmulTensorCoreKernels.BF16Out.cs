using System.Runtime.CompilerServices;
using ILGPU;
using Mdm.Kernels.Gpu.TensorCore;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>
/// The bf16-output epilogue of the tensor-core GEMM: the same main loop, then each accumulator (plus the bias, in f32)
/// is rounded to bf16 (nearest even) and staged in shared memory as the group's tile (TileM × 128), so that each thread can
/// write whole rows of 8 values: one 16-byte store where the chunk lies inside N and C is 16-byte aligned
/// (<see cref="TensorCoreGemmArgs.CAligned"/>), element stores on ragged edges.
/// </summary>
public static partial class MatmulTensorCoreKernels
{
    /// <summary>A staged row: 128 bf16 plus 16 bytes of padding, so the 8 rows one mma store covers hit 8 bank groups.</summary>
    public const int StagedRowBytes = TileN * 2 + 16;

    /// <summary>As <see cref="Gemm{TO, TW, TT, TM}"/> with a bf16 C; <see cref="TensorCoreGemmArgs.C"/> is c's device address.</summary>
    public static void GemmBF16Out<TO, TW, TT, TM>(ArrayView<ushort> c, ArrayView<float> bias, TensorCoreGemmArgs p)
        where TO : struct, IGemmOrientation where TW : struct, IGemmWarps where TT : struct, IGemmTile where TM : struct, IWarpMma<TM>
    {
        var smem = SharedMemory.GetDynamic<byte>();
        var w = default(TW);
        var m = default(TM).Bind(smem);
        var place = Place<TW, TT>(p.TilesN);
        int outBatch = Grid.IdxY;   // never split: a bf16 C cannot take atomic partial sums
        var acc = Accumulate<TO, TW, TT, TM>(m, p, place, outBatch, 0);

        Group.Barrier();   // every warp is past its last ldmatrix: the pipeline's stages may be overwritten
        var words = smem.Cast<uint>();
        int tid = place.Tid, lane = tid & 31, m0 = place.M0, n0 = place.N0, threads = ThreadsFor(default(TT).TileM, w.Wide);
        int row = place.Wm * 64 + (lane >> 2), col = place.ColBase + (lane & 3) * 2;
        StageRow(m, words, bias, p, m0, n0, row, col, acc.R0, w.Wide);
        StageRow(m, words, bias, p, m0, n0, row + 16, col, acc.R1, w.Wide);
        StageRow(m, words, bias, p, m0, n0, row + 32, col, acc.R2, w.Wide);
        StageRow(m, words, bias, p, m0, n0, row + 48, col, acc.R3, w.Wide);
        Group.Barrier();

        int cBase = outBatch * p.StrideC;
        for (int q = 0; q < default(TT).TileM * (TileN / 8) / threads; q++)
        {
            int chunkId = tid + q * threads, r = chunkId >> 4, j = (chunkId & 15) * 8;
            int i = m0 + r, jj = n0 + j;
            if (i >= p.M || jj >= p.N) continue;
            int s = (r * StagedRowBytes + j * 2) >> 2;
            var v = new U4(words[s], words[s + 1], words[s + 2], words[s + 3]);
            int at = cBase + i * p.Ldc + jj;
            if (p.CAligned != 0 && jj + 8 <= p.N) m.StoreGlobal16(p.C + 2L * at, v);
            else StoreRagged(c, at, p.N - jj, v);
        }
        if (smem.Length < 0) c[0] = 0;   // never true; keeps the dynamic shared buffer declared in the PTX
    }

    /// <summary>Rounds one row block of a warp's accumulators (plus bias) to bf16 pairs in the staged tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StageRow<TM>(TM m, ArrayView<uint> words, ArrayView<float> bias, in TensorCoreGemmArgs p, int m0, int n0,
        int row, int col, Frag8 t, bool wide) where TM : struct, IWarpMma<TM>
    {
        StageFrag(m, words, bias, p, m0, n0, row, col, t.F0);
        StageFrag(m, words, bias, p, m0, n0, row, col + 8, t.F1);
        StageFrag(m, words, bias, p, m0, n0, row, col + 16, t.F2);
        StageFrag(m, words, bias, p, m0, n0, row, col + 24, t.F3);
        if (!wide) return;
        StageFrag(m, words, bias, p, m0, n0, row, col + 32, t.F4);
        StageFrag(m, words, bias, p, m0, n0, row, col + 40, t.F5);
        StageFrag(m, words, bias, p, m0, n0, row, col + 48, t.F6);
        StageFrag(m, words, bias, p, m0, n0, row, col + 56, t.F7);
    }

    /// <summary>One m16n8 tile: (row, col..col+1) and (row+8, col..col+1) of the staged tile. Bias is read only inside
    /// the matrix; outside it the staged values are never copied out.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StageFrag<TM>(TM m, ArrayView<uint> words, ArrayView<float> bias, in TensorCoreGemmArgs p, int m0, int n0,
        int row, int col, Frag f) where TM : struct, IWarpMma<TM>
    {
        float b0 = 0f, b1 = 0f, b2 = 0f, b3 = 0f;
        if (p.HasBias == 1)
        {
            int j = n0 + col;
            if (j < p.N) b0 = b2 = bias[j];
            if (j + 1 < p.N) b1 = b3 = bias[j + 1];
        }
        else if (p.HasBias == 2)
        {
            int i = m0 + row;
            if (i < p.M) b0 = b1 = bias[i];
            if (i + 8 < p.M) b2 = b3 = bias[i + 8];
        }
        int s = (row * StagedRowBytes + col * 2) >> 2;
        words[s] = m.PackBF16(f.X + b0, f.Y + b1);
        words[s + 8 * StagedRowBytes / 4] = m.PackBF16(f.Z + b2, f.W + b3);
    }

    /// <summary>The first <paramref name="left"/> (at most 8) bf16 values of a staged chunk, one by one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreRagged(ArrayView<ushort> c, int at, int left, U4 v)
    {
        for (int e = 0; e < 8; e++)
        {
            if (e >= left) return;
            uint word = e < 2 ? v.X : e < 4 ? v.Y : e < 6 ? v.Z : v.W;
            c[at + e] = (ushort)((e & 1) == 0 ? word & 0xFFFFu : word >> 16);
        }
    }
}
