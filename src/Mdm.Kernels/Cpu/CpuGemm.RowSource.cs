using System.Runtime.CompilerServices;

namespace Mdm.Kernels.Cpu;

/// <summary>Where row p of the GEMM's B operand starts. The tile kernels are generic over it, so each source is
/// compiled into its own copy of the kernels with the row lookup inlined.</summary>
unsafe interface IRowSource
{
    float* Row(int p);
}

/// <summary>A row-major matrix: row p at b + p·ld.</summary>
readonly unsafe struct StridedRows(float* b, long ld) : IRowSource
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* Row(int p) => b + p * ld;
}

/// <summary>Rows gathered by offset (an implicit convolution: row (ci, kh, kw) is a shifted window of one input plane).</summary>
readonly unsafe struct OffsetRows(float* b, int* offsets) : IRowSource
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* Row(int p) => b + offsets[p];
}

public static unsafe partial class CpuGemm
{
    /// <summary>
    /// C[m, n] = A[m, k] · B where row p of B starts at b + offsets[p] (an implicit-GEMM convolution reads B straight
    /// from the input planes). Tiles of MC rows × NC columns run on the calling thread, or across the cores when
    /// <paramref name="parallel"/>.
    /// </summary>
    public static void SgemmGathered(int m, int n, int k, float* a, int lda, float* b, int* offsets, float* c, int ldc, bool parallel)
    {
        if (m == 0 || n == 0) return;
        int mChunks = (m + MC - 1) / MC, nPanels = (n + NC - 1) / NC;
        nint pa = (nint)a, pb = (nint)b, po = (nint)offsets, pc = (nint)c;
        void Tiles(int t0, int t1)
        {
            for (int t = t0; t < t1; t++)
            {
                int i0 = t / nPanels * MC, j0 = t % nPanels * NC;
                Tile((float*)pa + (long)i0 * lda, lda, new OffsetRows((float*)pb + j0, (int*)po), (float*)pc + (long)i0 * ldc + j0, ldc,
                    Math.Min(MC, m - i0), Math.Min(NC, n - j0), k, 1f, 0f);
            }
        }
        if (parallel) CpuBackend.ParallelRange(mChunks * nPanels, (long)Math.Min(MC, m) * Math.Min(NC, n) * Math.Max(k, 1), Tiles);
        else Tiles(0, mChunks * nPanels);
    }
}
