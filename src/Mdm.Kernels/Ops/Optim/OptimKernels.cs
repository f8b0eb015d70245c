using ILGPU;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>
/// Losses, per-sample statistics and the optimiser. Reductions are deterministic: fixed chunks per group, a
/// shared-memory tree inside the group, partial sums written to a buffer and added by a second tiny kernel
/// (no float atomics), so the same inputs and launch shape give the same bits.
/// </summary>
public static class OptimKernels
{
    public const int MaxGroupSize = 256;

    /// <summary>
    /// x, y viewed as [rows, rowLen], each row cut into <paramref name="chunks"/> chunks of <paramref name="chunkLen"/>:
    /// one group per (row, chunk) task (grid-stride over tasks) writes partial[task] = Σ (x − y)² over its chunk,
    /// or Σ x² when <paramref name="subtract"/> is 0 (y is then not read).
    /// </summary>
    public static void SquaredSumPartial(ArrayView<float> x, ArrayView<float> y, ArrayView<float> partial,
        int rows, int rowLen, int chunks, int chunkLen, int subtract)
    {
        var s = SharedMemory.Allocate<float>(MaxGroupSize);
        int tid = Group.IdxX, threads = Group.DimX;
        int tasks = rows * chunks;
        for (int t = Grid.IdxX; t < tasks; t += Grid.DimX)
        {
            int row = t / chunks, c = t - row * chunks;
            int start = c * chunkLen;
            int end = rowLen - start < chunkLen ? rowLen : start + chunkLen;   // no int overflow near 2³¹
            int b = row * rowLen;
            float acc = 0f;
            for (int i = start + tid; i < end; i += threads)
            {
                float d = subtract != 0 ? x[b + i] - y[b + i] : x[b + i];
                acc += d * d;
            }
            s[tid] = acc;
            Group.Barrier();
            for (int h = threads / 2; h > 0; h /= 2)
            {
                if (tid < h) s[tid] += s[tid + h];
                Group.Barrier();
            }
            if (tid == 0) partial[t] = s[0];
            Group.Barrier();   // s[0] is read before the next task overwrites it
        }
    }

    /// <summary>
    /// One group per row of partial [rows, chunks]: output[row] = scale·Σ partial[row, :], or √(scale·Σ) when
    /// <paramref name="takeSqrt"/> is 1 (the global norm).
    /// </summary>
    public static void FinishRows(ArrayView<float> partial, ArrayView<float> output, int rows, int chunks, float scale, int takeSqrt)
    {
        var s = SharedMemory.Allocate<float>(MaxGroupSize);
        int tid = Group.IdxX, threads = Group.DimX;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            float acc = 0f;
            for (int c = tid; c < chunks; c += threads) acc += partial[row * chunks + c];
            s[tid] = acc;
            Group.Barrier();
            for (int h = threads / 2; h > 0; h /= 2)
            {
                if (tid < h) s[tid] += s[tid + h];
                Group.Barrier();
            }
            if (tid == 0)
            {
                float r = s[0] * scale;
                output[row] = takeSqrt != 0 ? MathF.Sqrt(r) : r;
            }
            Group.Barrier();
        }
    }

    /// <summary>dx[i] = scale·(x[i] − y[i])·dy[i / rowLen].</summary>
    public static void SquaredErrorBackward(ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx,
        int rowLen, float scale)
    {
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < dx.IntLength; i += stride)
            dx[i] = (x[i] - y[i]) * (scale * dy[i / rowLen]);
    }

    /// <summary>
    /// One group per row of x [rows, rowLen]: the k-th and kAbove-th smallest |x| (0-based) found exactly by bisection
    /// over the bit patterns of |x| (non-negative floats order like their bits): 31 halvings of [0, 2³¹), each counting
    /// the elements ≤ the candidate with a group reduction, then one pass for the next larger value, the count at the
    /// k-th and the largest pattern (a NaN anywhere makes the row's result NaN, as torch.quantile).
    /// q[row] = lerp(a, b, frac) with torch.lerp's formula.
    /// </summary>
    public static void QuantileAbs(ArrayView<float> x, ArrayView<float> q, int rows, int rowLen, int k, int kAbove, float frac)
    {
        var cnt = SharedMemory.Allocate<int>(MaxGroupSize);
        var nxt = SharedMemory.Allocate<uint>(MaxGroupSize);
        var top = SharedMemory.Allocate<uint>(MaxGroupSize);
        int tid = Group.IdxX, threads = Group.DimX;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            int b = row * rowLen;
            uint lo = 0u, hi = 0x7FFFFFFFu;   // the answer's pattern lies in [lo, hi]
            for (int it = 0; it < 31; it++)   // a fixed count, so every thread reaches every barrier
            {
                uint mid = lo + (hi - lo) / 2u;
                int c = 0;
                for (int i = tid; i < rowLen; i += threads)
                    if ((Interop.FloatAsInt(x[b + i]) & 0x7FFFFFFFu) <= mid) c++;
                cnt[tid] = c;
                Group.Barrier();
                for (int h = threads / 2; h > 0; h /= 2)
                {
                    if (tid < h) cnt[tid] += cnt[tid + h];
                    Group.Barrier();
                }
                int total = cnt[0];
                Group.Barrier();   // everyone has read cnt[0] before the next pass writes it
                if (total >= k + 1) hi = mid; else lo = mid + 1u;
            }

            // lo is the k-th smallest pattern; count the elements <= lo, find the smallest pattern above it, and the largest.
            int cLo = 0;
            uint above = 0xFFFFFFFFu, largest = 0u;
            for (int i = tid; i < rowLen; i += threads)
            {
                uint u = Interop.FloatAsInt(x[b + i]) & 0x7FFFFFFFu;
                if (u <= lo) cLo++;
                else if (u < above) above = u;
                if (u > largest) largest = u;
            }
            cnt[tid] = cLo; nxt[tid] = above; top[tid] = largest;
            Group.Barrier();
            for (int h = threads / 2; h > 0; h /= 2)
            {
                if (tid < h)
                {
                    cnt[tid] += cnt[tid + h];
                    if (nxt[tid + h] < nxt[tid]) nxt[tid] = nxt[tid + h];
                    if (top[tid + h] > top[tid]) top[tid] = top[tid + h];
                }
                Group.Barrier();
            }
            if (tid == 0)
            {
                float a = Interop.IntAsFloat(lo);
                float bv = kAbove < cnt[0] ? a : Interop.IntAsFloat(nxt[0]);
                float r = frac < 0.5f ? a + frac * (bv - a) : bv - (bv - a) * (1f - frac);
                q[row] = top[0] > 0x7F800000u ? float.NaN : r;
            }
            Group.Barrier();
        }
    }

    /// <summary>
    /// Fused Adam/AdamW (torch's single-tensor formulas) with clip_grad_norm_'s scale min(1, maxNorm / (‖g‖ + 1e-6))
    /// read from norm[0] on the device; param, m, v updated in place, grad only read.
    /// </summary>
    public static void AdamStep(ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v,
        ArrayView<float> norm, AdamStepArgs a)
    {
        float clip = 1f;
        if (a.Clip != 0)
        {
            clip = a.MaxNorm / (norm[0] + 1e-6f);
            if (clip > 1f) clip = 1f;   // torch.clamp(max=1): NaN stays NaN
        }
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < p.IntLength; i += stride)
        {
            float pi = p[i];
            float gi = g[i] * clip;
            if (a.L2 != 0f) gi += a.L2 * pi;
            pi *= a.ParamScale;
            float mi = m[i];
            mi += a.OneMinusBeta1 * (gi - mi);
            float vi = v[i] * a.Beta2 + a.OneMinusBeta2 * (gi * gi);
            float denom = MathF.Sqrt(vi) / a.Bc2Sqrt + a.Eps;
            m[i] = mi;
            v[i] = vi;
            p[i] = pi - a.StepSize * (mi / denom);
        }
    }

    /// <summary>ema ← decay·ema + (1 − decay)·param.</summary>
    public static void EmaUpdate(ArrayView<float> ema, ArrayView<float> param, float decay)
    {
        float w = 1f - decay;
        int stride = Grid.DimX * Group.DimX, n = ema.IntLength, i = Grid.GlobalIndex.X;
        for (; i < n - 3 * stride; i += 4 * stride)   // four steps per trip, loads first (bytes in flight)
        {
            float e0 = ema[i], e1 = ema[i + stride], e2 = ema[i + 2 * stride], e3 = ema[i + 3 * stride];
            float p0 = param[i], p1 = param[i + stride], p2 = param[i + 2 * stride], p3 = param[i + 3 * stride];
            ema[i] = decay * e0 + w * p0; ema[i + stride] = decay * e1 + w * p1;
            ema[i + 2 * stride] = decay * e2 + w * p2; ema[i + 3 * stride] = decay * e3 + w * p3;
        }
        for (; i < n; i += stride) ema[i] = decay * ema[i] + w * param[i];
    }
}
