using ILGPU;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>
/// Dropout with a counter-based mask: element i is kept when the uniform of lane i%4 of Philox block
/// (offset + i/4) of stream (seed, subsequence) exceeds p. The backward is the same kernel on dy, so no mask is stored.
/// </summary>
public static class DropoutKernels
{
    /// <summary>Whether a Philox word keeps its element at drop probability p (shared by every backend).</summary>
    public static bool Keeps(uint word, float p) => Philox.ToUniform(word) > p;

    [Kernel("Dropout")]
    public static void Apply(ArrayView<float> x, ArrayView<float> y, ulong seed, ulong subsequence, ulong offset, float p, float scale)
    {
        int n = y.IntLength, blocks = (n + 3) / 4, stride = Grid.DimX * Group.DimX;
        for (int blk = Grid.GlobalIndex.X; blk < blocks; blk += stride)
        {
            Philox.Words(seed, subsequence, offset + (ulong)blk, out uint w0, out uint w1, out uint w2, out uint w3);
            int i = blk * 4;
            y[i] = Keeps(w0, p) ? x[i] * scale : 0f;
            if (i + 1 < n) y[i + 1] = Keeps(w1, p) ? x[i + 1] * scale : 0f;
            if (i + 2 < n) y[i + 2] = Keeps(w2, p) ? x[i + 2] * scale : 0f;
            if (i + 3 < n) y[i + 3] = Keeps(w3, p) ? x[i + 3] * scale : 0f;
        }
    }
}
