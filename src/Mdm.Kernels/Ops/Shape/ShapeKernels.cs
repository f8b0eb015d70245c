using ILGPU;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>
/// Shape family kernels: GELU (Erf32), FiLM scale-shift, nearest ×2 upsample, average pooling, block copies
/// (concat / split) and permute; the copies and permute also move bf16 values as they are. All explicitly grouped with grid-stride loops, one thread per output element,
/// except the FiLM backward, which reduces each (n, c) row with one group.
/// </summary>
public static class ShapeKernels
{
    public const int MaxGroupSize = 256;

    /// <summary>y = GELU(x) in f32; x and y f32, or bf16 (autocast's storage: widened, rounded once).</summary>
    [Kernel("GeluForward", typeof(float), typeof(F32Widen), typeof(F32Narrow))]
    [Kernel("GeluForwardBF16", typeof(ushort), typeof(BF16Widen), typeof(BF16Narrow))]
    public static void GeluForward<T, TW, TN>(ArrayView<T> x, ArrayView<T> y)
        where T : unmanaged where TW : struct, IWiden<T> where TN : struct, INarrow<T>
    {
        var (w, n) = (default(TW), default(TN));
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride) y[i] = n.Narrow(Erf32.Gelu(w.Widen(x[i])));
    }

    [Kernel("GeluBackward", typeof(float), typeof(F32Widen))]
    [Kernel("GeluBackwardBF16", typeof(ushort), typeof(BF16Widen))]
    public static void GeluBackward<T, TW>(ArrayView<T> x, ArrayView<float> dy, ArrayView<float> dx) where T : unmanaged where TW : struct, IWiden<T>
    {
        var w = default(TW);
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < dx.IntLength; i += stride) dx[i] = dy[i] * Erf32.GeluGrad(w.Widen(x[i]));
    }

    /// <summary>y[i] = x[i]·(1 + a[row]) + b[row], row = i / inner.</summary>
    [Kernel("ScaleShiftForward")]
    public static void ScaleShiftForward(ArrayView<float> x, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int inner)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride)
        {
            int row = i / inner;
            y[i] = x[i] * (1f + a[row]) + b[row];
        }
    }

    /// <summary>
    /// One group per row (grid-stride over rows): each thread writes dx for its strided elements and accumulates
    /// dy·x and dy; a shared-memory tree then gives da[row] and db[row]. Needs a power-of-two group size ≤ 256.
    /// </summary>
    [Kernel("ScaleShiftBackward")]
    public static void ScaleShiftBackward(ArrayView<float> x, ArrayView<float> a, ArrayView<float> dy, ArrayView<float> dx,
        ArrayView<float> da, ArrayView<float> db, int rows, int inner)
    {
        var pa = SharedMemory.Allocate<float>(MaxGroupSize);
        var pb = SharedMemory.Allocate<float>(MaxGroupSize);
        int tid = Group.IdxX, threads = Group.DimX;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            float scale = 1f + a[row];
            float accA = 0f, accB = 0f;
            int baseIdx = row * inner;
            for (int j = tid; j < inner; j += threads)
            {
                float g = dy[baseIdx + j];
                dx[baseIdx + j] = g * scale;
                accA += g * x[baseIdx + j];
                accB += g;
            }
            pa[tid] = accA;
            pb[tid] = accB;
            Group.Barrier();
            for (int s = threads / 2; s > 0; s /= 2)
            {
                if (tid < s) { pa[tid] += pa[tid + s]; pb[tid] += pb[tid + s]; }
                Group.Barrier();
            }
            if (tid == 0) { da[row] = pa[0]; db[row] = pb[0]; }
            Group.Barrier();   // pa[0], pb[0] are read before the next row overwrites them
        }
    }

    /// <summary>y [planes, 2h, 2w] from x [planes, h, w]: one thread per output element.</summary>
    [Kernel("UpsampleNearest2x")]
    public static void UpsampleNearest2x(ArrayView<float> x, ArrayView<float> y, int h, int w)
    {
        int stride = Grid.DimX * Group.DimX;
        int w2 = 2 * w, plane2 = 4 * h * w;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride)
        {
            int p = i / plane2, rem = i - p * plane2;
            int oy = rem / w2, ox = rem - oy * w2;
            y[i] = x[p * h * w + (oy >> 1) * w + (ox >> 1)];
        }
    }

    /// <summary>dx [planes, h, w] = sum of each 2×2 block of dy [planes, 2h, 2w]: one thread per dx element.</summary>
    [Kernel("UpsampleNearest2xBackward")]
    public static void UpsampleNearest2xBackward(ArrayView<float> dy, ArrayView<float> dx, int h, int w)
    {
        int stride = Grid.DimX * Group.DimX;
        int hw = h * w, w2 = 2 * w;
        for (int i = Grid.GlobalIndex.X; i < dx.IntLength; i += stride)
        {
            int p = i / hw, rem = i - p * hw;
            int iy = rem / w, ix = rem - iy * w;
            int top = p * 4 * hw + 2 * iy * w2 + 2 * ix;
            dx[i] = (dy[top] + dy[top + 1]) + (dy[top + w2] + dy[top + w2 + 1]);
        }
    }

    /// <summary>y [planes, oh, ow] = mean of each s×s block of x [planes, oh·s, ow·s]: one thread per output element.</summary>
    [Kernel("AvgPool2d")]
    public static void AvgPool2d(ArrayView<float> x, ArrayView<float> y, int oh, int ow, int s)
    {
        int stride = Grid.DimX * Group.DimX;
        int ohw = oh * ow, w = ow * s;
        float inv = 1f / (s * s);
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride)
        {
            int p = i / ohw, rem = i - p * ohw;
            int oy = rem / ow, ox = rem - oy * ow;
            int src = p * ohw * s * s + oy * s * w + ox * s;
            float sum = 0f;
            for (int k = 0; k < s; k++)
            {
                for (int j = 0; j < s; j++) sum += x[src + j];
                src += w;
            }
            y[i] = sum * inv;
        }
    }

    /// <summary>dx [planes, oh·s, ow·s] = dy / s² of the block each element belongs to: one thread per dx element.</summary>
    [Kernel("AvgPool2dBackward")]
    public static void AvgPool2dBackward(ArrayView<float> dy, ArrayView<float> dx, int oh, int ow, int s)
    {
        int stride = Grid.DimX * Group.DimX;
        int w = ow * s, hw = oh * s * w;
        float inv = 1f / (s * s);
        for (int i = Grid.GlobalIndex.X; i < dx.IntLength; i += stride)
        {
            int p = i / hw, rem = i - p * hw;
            int iy = rem / w, ix = rem - iy * w;
            dx[i] = dy[p * oh * ow + (iy / s) * ow + ix / s] * inv;
        }
    }

    /// <summary>dst[o·dstStride + dstOffset + j] = src[o·srcStride + srcOffset + j] for o &lt; outer, j &lt; chunk.</summary>
    [Kernel("CopyBlocks", typeof(float))]
    [Kernel("CopyBlocksBF16", typeof(ushort))]
    public static void CopyBlocks<T>(ArrayView<T> src, ArrayView<T> dst, int outer, int chunk,
        int srcStride, int srcOffset, int dstStride, int dstOffset) where T : unmanaged
    {
        int stride = Grid.DimX * Group.DimX;
        int total = outer * chunk;
        for (int i = Grid.GlobalIndex.X; i < total; i += stride)
        {
            int o = i / chunk, j = i - o * chunk;
            dst[o * dstStride + dstOffset + j] = src[o * srcStride + srcOffset + j];
        }
    }

    /// <summary>y[i] = x[plan.Offset(i)]: a permuted copy, coalesced writes (f32, or bf16 bits as they are).</summary>
    [Kernel("Permute", typeof(float))]
    [Kernel("PermuteBF16", typeof(ushort))]
    public static void Permute<T>(ArrayView<T> x, ArrayView<T> y, PermutePlan plan) where T : unmanaged
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < y.IntLength; i += stride) y[i] = x[plan.Offset(i)];
    }
}
