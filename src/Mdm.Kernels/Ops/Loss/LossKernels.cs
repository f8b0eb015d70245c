using ILGPU;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>
/// The fused diffusion loss (<see cref="Ops.DiffusionLoss"/>): the target conversion e = a·p + k·x − t is computed where
/// it is squared (forward) or differentiated (backward), never stored. Reductions as in <see cref="OptimKernels"/>:
/// fixed chunks, a group tree, partial sums added by a second kernel, no atomics.
/// </summary>
public static class LossKernels
{
    /// <summary>One group per (row, chunk) task: partial[task] = Σ e² over the chunk (coef rows (a, k, w)).</summary>
    [Kernel("DiffusionLossPartial")]
    public static void Partial(ArrayView<float> p, ArrayView<float> x, ArrayView<float> t, ArrayView<float> coef, ArrayView<float> partial,
        int rows, int rowLen, int chunks, int chunkLen)
    {
        var s = SharedMemory.Allocate<float>(OptimKernels.MaxGroupSize);
        int tid = Group.IdxX, threads = Group.DimX;
        int tasks = rows * chunks;
        for (int task = Grid.IdxX; task < tasks; task += Grid.DimX)
        {
            int row = task / chunks, c = task - row * chunks;
            int start = c * chunkLen;
            int end = rowLen - start < chunkLen ? rowLen : start + chunkLen;
            int b = row * rowLen;
            float a = coef[3 * row], k = coef[3 * row + 1];
            float acc = 0f;
            for (int i = start + tid; i < end; i += threads)
            {
                float e = a * p[b + i] + k * x[b + i] - t[b + i];
                acc += e * e;
            }
            s[tid] = acc;
            Group.Barrier();
            for (int h = threads / 2; h > 0; h /= 2)
            {
                if (tid < h) s[tid] += s[tid + h];
                Group.Barrier();
            }
            if (tid == 0) partial[task] = s[0];
            Group.Barrier();
        }
    }

    /// <summary>One group: loss[0] = Σ_r w_r·perSample[r] (w_r = coef[r, 2]).</summary>
    [Kernel("DiffusionLossWeightedSum")]
    public static void WeightedSum(ArrayView<float> perSample, ArrayView<float> coef, ArrayView<float> loss, int rows)
    {
        var s = SharedMemory.Allocate<float>(OptimKernels.MaxGroupSize);
        int tid = Group.IdxX, threads = Group.DimX;
        if (Grid.IdxX != 0) return;
        float acc = 0f;
        for (int r = tid; r < rows; r += threads) acc += coef[3 * r + 2] * perSample[r];
        s[tid] = acc;
        Group.Barrier();
        for (int h = threads / 2; h > 0; h /= 2)
        {
            if (tid < h) s[tid] += s[tid + h];
            Group.Barrier();
        }
        if (tid == 0) loss[0] = s[0];
    }

    /// <summary>dp = s·a·e, dx = s·k·e, dt = −s·e (s = 2·w·g/rowLen per row), each written when its bit of
    /// <paramref name="outputs"/> (1, 2, 4) is set; an unset one's view is not touched.</summary>
    [Kernel("DiffusionLossBackward")]
    public static void Backward(ArrayView<float> p, ArrayView<float> x, ArrayView<float> t, ArrayView<float> coef, ArrayView<float> g,
        ArrayView<float> dp, ArrayView<float> dx, ArrayView<float> dt, int rowLen, int outputs)
    {
        int stride = Grid.DimX * Group.DimX;
        float gradient = g[0];
        for (int i = Grid.GlobalIndex.X; i < p.IntLength; i += stride)
        {
            int row = i / rowLen;
            float a = coef[3 * row], k = coef[3 * row + 1], s = 2f * coef[3 * row + 2] * gradient / rowLen;
            float e = a * p[i] + k * x[i] - t[i];
            if ((outputs & 1) != 0) dp[i] = s * a * e;
            if ((outputs & 2) != 0) dx[i] = s * k * e;
            if ((outputs & 4) != 0) dt[i] = -s * e;
        }
    }
}
