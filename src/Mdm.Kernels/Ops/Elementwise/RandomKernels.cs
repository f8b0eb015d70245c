using ILGPU;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>Philox-4x32-10 fills; one thread per block of four elements, identical to the CPU backend's streams.</summary>
public static class RandomKernels
{
    [Kernel("RandomUniform")]
    public static void Uniform(ArrayView<float> y, ulong seed, ulong subsequence, float lo, float range)
    {
        int n = y.IntLength, blocks = (n + 3) / 4, stride = Grid.DimX * Group.DimX;
        for (int blk = Grid.GlobalIndex.X; blk < blocks; blk += stride)
        {
            Philox.Words(seed, subsequence, (ulong)blk, out uint w0, out uint w1, out uint w2, out uint w3);
            int i = blk * 4;
            y[i] = lo + range * (1f - Philox.ToUniform(w0));
            if (i + 1 < n) y[i + 1] = lo + range * (1f - Philox.ToUniform(w1));
            if (i + 2 < n) y[i + 2] = lo + range * (1f - Philox.ToUniform(w2));
            if (i + 3 < n) y[i + 3] = lo + range * (1f - Philox.ToUniform(w3));
        }
    }

    [Kernel("RandomNormal")]
    public static void Normal(ArrayView<float> y, ulong seed, ulong subsequence, float mean, float std, ulong firstBlock)
    {
        int n = y.IntLength, blocks = (n + 3) / 4, stride = Grid.DimX * Group.DimX;
        for (int blk = Grid.GlobalIndex.X; blk < blocks; blk += stride)
        {
            Philox.Words(seed, subsequence, firstBlock + (ulong)blk, out uint w0, out uint w1, out uint w2, out uint w3);
            Philox.ToNormal(w0, w1, out float z0, out float z1);
            Philox.ToNormal(w2, w3, out float z2, out float z3);
            int i = blk * 4;
            y[i] = mean + std * z0;
            if (i + 1 < n) y[i + 1] = mean + std * z1;
            if (i + 2 < n) y[i + 2] = mean + std * z2;
            if (i + 3 < n) y[i + 3] = mean + std * z3;
        }
    }
}
