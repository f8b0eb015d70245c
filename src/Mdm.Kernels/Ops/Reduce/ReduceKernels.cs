using ILGPU;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>Sum over the middle axis of x viewed as [outer, reduce, inner].</summary>
public static class ReduceKernels
{
    public const int MaxGroupSize = 256;

    /// <summary>inner == 1: one group per row (grid-stride over rows); strided per-thread partials, then a shared-memory tree.</summary>
    public static void SumRows(ArrayView<float> x, ArrayView<float> y, int outer, int reduce)
    {
        var partial = SharedMemory.Allocate<float>(MaxGroupSize);
        int tid = Group.IdxX, threads = Group.DimX;
        for (int row = Grid.IdxX; row < outer; row += Grid.DimX)
        {
            float acc = 0f;
            int baseIdx = row * reduce;
            for (int r = tid; r < reduce; r += threads) acc += x[baseIdx + r];
            partial[tid] = acc;
            Group.Barrier();
            for (int s = threads / 2; s > 0; s /= 2)
            {
                if (tid < s) partial[tid] += partial[tid + s];
                Group.Barrier();
            }
            if (tid == 0) y[row] = partial[0];
            Group.Barrier();   // partial[0] is read before the next row overwrites it
        }
    }

    /// <summary>inner &gt; 1: one thread per output element, walking the reduced axis (reads are coalesced along inner).</summary>
    public static void SumMiddle(ArrayView<float> x, ArrayView<float> y, int outer, int reduce, int inner)
    {
        int stride = Grid.DimX * Group.DimX;
        int total = outer * inner;
        for (int i = Grid.GlobalIndex.X; i < total; i += stride)
        {
            int o = i / inner, n = i - o * inner;
            int p = o * reduce * inner + n;
            float acc = 0f;
            for (int r = 0; r < reduce; r++) { acc += x[p]; p += inner; }
            y[i] = acc;
        }
    }
}
