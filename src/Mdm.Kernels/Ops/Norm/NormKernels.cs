using System.Runtime.CompilerServices;
using ILGPU;

namespace Mdm.Kernels.Gpu.Kernels;

/// <summary>
/// Shape and mode of a GroupNorm launch: x is [N, C, S] with S the product of the spatial dims, Groups groups of C/Groups
/// channels. Film != 0: z = (xhat·gamma + beta)·(1 + a[n,c]) + b[n,c]; Silu != 0: y = SiLU(z).
/// </summary>
public struct GroupNormParams
{
    public int N, C, S, Groups, Film, Silu;
    public float Eps;

    public GroupNormParams(int n, int c, int s, int groups, bool film, bool silu, float eps)
    {
        N = n; C = c; S = s; Groups = groups; Film = film ? 1 : 0; Silu = silu ? 1 : 0; Eps = eps;
    }
}

/// <summary>How a norm kernel stores a value of y: as f32, or rounded to bf16 bits (autocast's copy, fused into the store).</summary>
public interface INormStore<T> where T : unmanaged { T From(float v); }
public struct F32NormStore : INormStore<float> { public readonly float From(float v) => v; }
public struct BF16NormStore : INormStore<ushort> { public readonly ushort From(float v) => BFloat16.FromBits((uint)Interop.FloatAsInt(v)); }

/// <summary>Two sums from one group reduction.</summary>
public struct SumPair { public float A, B; }

/// <summary>
/// GroupNorm (with optional FiLM and SiLU) and LayerNorm. Statistics: one group per (n, g) group or per LayerNorm row,
/// grid-stride over rows, per-thread strided partials then a shared-memory tree (group size a power of two, at most
/// <see cref="MaxGroupSize"/>); two-pass mean / centred sum of squares. Sums over samples for the parameter gradients
/// are written as per-(n, c) or per-row-block partials and reduced by <c>ReduceKernels.SumMiddle</c>: no atomics,
/// deterministic. Every barrier sits in code that all threads of the group reach (the row loop bound is uniform).
/// </summary>
public static partial class NormKernels
{
    public const int MaxGroupSize = 256;

    /// <summary>Sum of v over the group, returned to every thread. Must be reached by all threads of the group.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float GroupSum(ArrayView<float> shared, float v)
    {
        int tid = Group.IdxX;
        shared[tid] = v;
        Group.Barrier();
        for (int s = Group.DimX / 2; s > 0; s /= 2)
        {
            if (tid < s) shared[tid] += shared[tid + s];
            Group.Barrier();
        }
        float total = shared[0];
        Group.Barrier();   // everyone has read shared[0] before the next reduction overwrites it
        return total;
    }

    /// <summary>Two sums over the group with one set of barriers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static SumPair GroupSum2(ArrayView<float> sharedA, ArrayView<float> sharedB, float a, float b)
    {
        int tid = Group.IdxX;
        sharedA[tid] = a;
        sharedB[tid] = b;
        Group.Barrier();
        for (int s = Group.DimX / 2; s > 0; s /= 2)
        {
            if (tid < s)
            {
                sharedA[tid] += sharedA[tid + s];
                sharedB[tid] += sharedB[tid + s];
            }
            Group.Barrier();
        }
        SumPair r;
        r.A = sharedA[0];
        r.B = sharedB[0];
        Group.Barrier();
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Sigmoid(float z) => 1f / (1f + MathF.Exp(-z));

    /// <summary>Sum of v over the group via warp shuffles and one shared slot per warp, returned to every thread.
    /// Must be reached by all threads of the group; group size a multiple of the warp size, at most 32 warps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float BlockSum(ArrayView<float> perWarp, float v)
    {
        for (int o = Warp.WarpSize / 2; o > 0; o /= 2) v += Warp.ShuffleDown(v, o);
        int warps = Group.DimX / Warp.WarpSize;
        if (Warp.LaneIdx == 0) perWarp[Warp.WarpIdx] = v;
        Group.Barrier();
        float total = 0f;
        for (int w = 0; w < warps; w++) total += perWarp[w];   // every thread sums the few partials: no second round
        Group.Barrier();   // all have read perWarp before the next call overwrites it
        return total;
    }

    /// <summary>
    /// One group per (n, g) (grid-stride): mean, then centred variance, then y = [SiLU]((x − mean)·rstd·gamma·(1+a) + beta·(1+a) + b)
    /// over the group's C/G·S contiguous elements. Writes mean and rstd [N, G]. The group's 128 KB (at 64², 8 channels)
    /// comes from DRAM once; the second and third sweeps hit L2. When a channel has at least as many elements as the
    /// group has threads, the last sweep walks channel by channel so scale and shift are computed once per channel,
    /// not per element. Reductions are warp shuffles (two barriers each).
    /// </summary>
    [Kernel("GroupNormForward", typeof(float), typeof(F32Widen), typeof(float), typeof(F32NormStore))]
    [Kernel("GroupNormForwardBF16", typeof(float), typeof(F32Widen), typeof(ushort), typeof(BF16NormStore))]
    [Kernel("GroupNormForwardBF16X", typeof(ushort), typeof(BF16Widen), typeof(float), typeof(F32NormStore))]
    [Kernel("GroupNormForwardBF16XBF16", typeof(ushort), typeof(BF16Widen), typeof(ushort), typeof(BF16NormStore))]
    public static void GroupNormForward<TX, TXW, T, TStore>(ArrayView<TX> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> a,
        ArrayView<float> b, ArrayView<T> y, ArrayView<float> mean, ArrayView<float> rstd, GroupNormParams p)
        where TX : unmanaged where TXW : struct, IWiden<TX> where T : unmanaged where TStore : struct, INormStore<T>
    {
        var xw = default(TXW);
        var store = default(TStore);
        var perWarp = SharedMemory.Allocate<float>(32);
        int tid = Group.IdxX, threads = Group.DimX;
        int cpg = p.C / p.Groups, m = cpg * p.S, rows = p.N * p.Groups;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            int nn = row / p.Groups, c0 = (row - nn * p.Groups) * cpg, start = row * m;
            // Four independent loads per trip (ILGPU does not unroll): enough bytes in flight to cover DRAM latency.
            float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
            int i4 = tid;
            for (; i4 < m - 3 * threads; i4 += 4 * threads)
            {
                s0 += xw.Widen(x[start + i4]); s1 += xw.Widen(x[start + i4 + threads]); s2 += xw.Widen(x[start + i4 + 2 * threads]); s3 += xw.Widen(x[start + i4 + 3 * threads]);
            }
            for (; i4 < m; i4 += threads) s0 += xw.Widen(x[start + i4]);
            float mu = BlockSum(perWarp, (s0 + s1) + (s2 + s3)) / m;
            s0 = 0f; s1 = 0f; s2 = 0f; s3 = 0f;
            i4 = tid;
            for (; i4 < m - 3 * threads; i4 += 4 * threads)
            {
                float d0 = xw.Widen(x[start + i4]) - mu, d1 = xw.Widen(x[start + i4 + threads]) - mu, d2 = xw.Widen(x[start + i4 + 2 * threads]) - mu, d3 = xw.Widen(x[start + i4 + 3 * threads]) - mu;
                s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
            }
            for (; i4 < m; i4 += threads)
            {
                float d = xw.Widen(x[start + i4]) - mu;
                s0 += d * d;
            }
            float rs = 1f / MathF.Sqrt(BlockSum(perWarp, (s0 + s1) + (s2 + s3)) / m + p.Eps);
            if (tid == 0)
            {
                mean[row] = mu;
                rstd[row] = rs;
            }
            if (p.S >= threads)
            {
                for (int cc = 0; cc < cpg; cc++)
                {
                    int ch = c0 + cc, cs = start + cc * p.S;
                    float scale = ChannelScale(gamma, a, p, nn, ch, rs), shift = ChannelShift(beta, a, b, p, nn, ch);
                    int i = tid;
                    for (; i < p.S - 3 * threads; i += 4 * threads)
                    {
                        float v0 = xw.Widen(x[cs + i]), v1 = xw.Widen(x[cs + i + threads]), v2 = xw.Widen(x[cs + i + 2 * threads]), v3 = xw.Widen(x[cs + i + 3 * threads]);
                        y[cs + i] = store.From(Activate((v0 - mu) * scale + shift, p.Silu));
                        y[cs + i + threads] = store.From(Activate((v1 - mu) * scale + shift, p.Silu));
                        y[cs + i + 2 * threads] = store.From(Activate((v2 - mu) * scale + shift, p.Silu));
                        y[cs + i + 3 * threads] = store.From(Activate((v3 - mu) * scale + shift, p.Silu));
                    }
                    for (; i < p.S; i += threads) y[cs + i] = store.From(Activate((xw.Widen(x[cs + i]) - mu) * scale + shift, p.Silu));
                }
            }
            else
            {
                for (int i = tid; i < m; i += threads)
                {
                    int ch = c0 + i / p.S;
                    float scale = ChannelScale(gamma, a, p, nn, ch, rs), shift = ChannelShift(beta, a, b, p, nn, ch);
                    y[start + i] = store.From(Activate((xw.Widen(x[start + i]) - mu) * scale + shift, p.Silu));
                }
            }
        }
    }

    /// <summary>gamma·rstd·(1 + a[n,c]) (FiLM) or gamma·rstd.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float ChannelScale(ArrayView<float> gamma, ArrayView<float> a, GroupNormParams p, int nn, int ch, float rs) =>
        p.Film != 0 ? gamma[ch] * rs * (1f + a[nn * p.C + ch]) : gamma[ch] * rs;

    /// <summary>beta·(1 + a[n,c]) + b[n,c] (FiLM) or beta.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float ChannelShift(ArrayView<float> beta, ArrayView<float> a, ArrayView<float> b, GroupNormParams p, int nn, int ch) =>
        p.Film != 0 ? beta[ch] * (1f + a[nn * p.C + ch]) + b[nn * p.C + ch] : beta[ch];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Activate(float z, int silu) => silu != 0 ? z * Sigmoid(z) : z;

    /// <summary>dz = dy·SiLU'(z) with z the pre-activation (SiLU mode), else dy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float PreActivationGrad(float dy, float xhat, float gammaFa, float shift, int silu)
    {
        if (silu == 0) return dy;
        float z = xhat * gammaFa + shift;
        float s = Sigmoid(z);
        return dy * s * (1f + z * (1f - s));
    }

    /// <summary>
    /// Backward, step 1: one group per (n, c) row of S elements (grid-stride). With dz = dy·SiLU'(z) (or dy) and fa = 1 + a[n,c]:
    /// partial[n,c] = fa·Σ dz·xhat (for dgamma), partial[N·C + n·C + c] = fa·Σ dz (for dbeta); with FiLM also
    /// db[n,c] = Σ dz and da[n,c] = gamma_c·Σ dz·xhat + beta_c·Σ dz.
    /// </summary>
    [Kernel("GroupNormBackwardChannels", typeof(float), typeof(F32Widen))]
    [Kernel("GroupNormBackwardChannelsBF16X", typeof(ushort), typeof(BF16Widen))]
    public static void GroupNormBackwardChannels<TX, TXW>(ArrayView<float> dy, ArrayView<TX> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> a, ArrayView<float> b, ArrayView<float> partial,
        ArrayView<float> da, ArrayView<float> db, GroupNormParams p)
        where TX : unmanaged where TXW : struct, IWiden<TX>
    {
        var xw = default(TXW);
        var sharedA = SharedMemory.Allocate<float>(MaxGroupSize);
        var sharedB = SharedMemory.Allocate<float>(MaxGroupSize);
        int tid = Group.IdxX, threads = Group.DimX;
        int cpg = p.C / p.Groups, rows = p.N * p.C;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            int nn = row / p.C, ch = row - nn * p.C, grp = nn * p.Groups + ch / cpg, start = row * p.S;
            float mu = mean[grp], rs = rstd[grp];
            float fa = p.Film != 0 ? 1f + a[row] : 1f;
            float shift = p.Film != 0 ? beta[ch] * fa + b[row] : beta[ch];
            float gammaFa = gamma[ch] * fa;
            float sumDz = 0f, sumDzXhat = 0f;
            for (int i = tid; i < p.S; i += threads)
            {
                float xh = (xw.Widen(x[start + i]) - mu) * rs;
                float dz = PreActivationGrad(dy[start + i], xh, gammaFa, shift, p.Silu);
                sumDz += dz;
                sumDzXhat += dz * xh;
            }
            var sums = GroupSum2(sharedA, sharedB, sumDz, sumDzXhat);
            if (tid == 0)
            {
                partial[row] = fa * sums.B;
                partial[rows + row] = fa * sums.A;
                if (p.Film != 0)
                {
                    db[row] = sums.A;
                    da[row] = gamma[ch] * sums.B + beta[ch] * sums.A;
                }
            }
        }
    }

    /// <summary>
    /// Backward, step 2: one group per (n, g) (grid-stride), no barriers. Each thread forms the group means of dxhat and
    /// dxhat·xhat from the step-1 partials (C/G loads), then dx = rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat)).
    /// </summary>
    [Kernel("GroupNormBackwardInput", typeof(float), typeof(F32Widen))]
    [Kernel("GroupNormBackwardInputBF16X", typeof(ushort), typeof(BF16Widen))]
    public static void GroupNormBackwardInput<TX, TXW>(ArrayView<float> dy, ArrayView<TX> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> a, ArrayView<float> b, ArrayView<float> partial,
        ArrayView<float> dx, GroupNormParams p)
        where TX : unmanaged where TXW : struct, IWiden<TX>
    {
        var xw = default(TXW);
        int tid = Group.IdxX, threads = Group.DimX;
        int cpg = p.C / p.Groups, m = cpg * p.S, rows = p.N * p.Groups, nc = p.N * p.C;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            int nn = row / p.Groups, c0 = (row - nn * p.Groups) * cpg, start = row * m;
            float mu = mean[row], rs = rstd[row];
            float m1 = 0f, m2 = 0f;
            for (int ci = 0; ci < cpg; ci++)
            {
                int idx = nn * p.C + c0 + ci;
                float g = gamma[c0 + ci];
                m1 += g * partial[nc + idx];
                m2 += g * partial[idx];
            }
            m1 /= m;
            m2 /= m;
            for (int i = tid; i < m; i += threads)
            {
                int ch = c0 + i / p.S;
                float fa = p.Film != 0 ? 1f + a[nn * p.C + ch] : 1f;
                float shift = p.Film != 0 ? beta[ch] * fa + b[nn * p.C + ch] : beta[ch];
                float gammaFa = gamma[ch] * fa;
                float xh = (xw.Widen(x[start + i]) - mu) * rs;
                float dz = PreActivationGrad(dy[start + i], xh, gammaFa, shift, p.Silu);
                dx[start + i] = rs * (dz * gammaFa - m1 - xh * m2);
            }
        }
    }

    /// <summary>One group per row of d elements (grid-stride): mean, centred variance, y = (x − mean)·rstd·gamma + beta.</summary>
    [Kernel("LayerNormForward")]
    public static void LayerNormForward(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> y,
        ArrayView<float> mean, ArrayView<float> rstd, int rows, int d, float eps)
    {
        var shared = SharedMemory.Allocate<float>(MaxGroupSize);
        int tid = Group.IdxX, threads = Group.DimX;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            int start = row * d;
            float acc = 0f;
            for (int i = tid; i < d; i += threads) acc += x[start + i];
            float mu = GroupSum(shared, acc) / d;
            acc = 0f;
            for (int i = tid; i < d; i += threads)
            {
                float v = x[start + i] - mu;
                acc += v * v;
            }
            float rs = 1f / MathF.Sqrt(GroupSum(shared, acc) / d + eps);
            if (tid == 0)
            {
                mean[row] = mu;
                rstd[row] = rs;
            }
            for (int i = tid; i < d; i += threads) y[start + i] = (x[start + i] - mu) * rs * gamma[i] + beta[i];
        }
    }

    /// <summary>One group per row (grid-stride): dx = rstd·(dy·gamma − mean(dy·gamma) − xhat·mean(dy·gamma·xhat)).</summary>
    [Kernel("LayerNormBackwardInput")]
    public static void LayerNormBackwardInput(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> gamma, ArrayView<float> dx, int rows, int d)
    {
        var sharedA = SharedMemory.Allocate<float>(MaxGroupSize);
        var sharedB = SharedMemory.Allocate<float>(MaxGroupSize);
        int tid = Group.IdxX, threads = Group.DimX;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            int start = row * d;
            float mu = mean[row], rs = rstd[row];
            float s1 = 0f, s2 = 0f;
            for (int i = tid; i < d; i += threads)
            {
                float g = dy[start + i] * gamma[i];
                s1 += g;
                s2 += g * (x[start + i] - mu) * rs;
            }
            var sums = GroupSum2(sharedA, sharedB, s1, s2);
            float m1 = sums.A / d, m2 = sums.B / d;
            for (int i = tid; i < d; i += threads)
            {
                float xh = (x[start + i] - mu) * rs;
                dx[start + i] = rs * (dy[start + i] * gamma[i] - m1 - xh * m2);
            }
        }
    }

    /// <summary>
    /// LayerNorm parameter gradients, step 1: one thread per (block of rowsPerBlock rows, column) (grid-stride, coalesced
    /// along columns): partial[k, j] = Σ dy·xhat and partial[blocks·d + k·d + j] = Σ dy over the block's rows.
    /// Step 2 sums the blocks with <c>ReduceKernels.SumMiddle</c>.
    /// </summary>
    [Kernel("LayerNormBackwardParams")]
    public static void LayerNormBackwardParams(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> partial, int rows, int d, int rowsPerBlock)
    {
        int blocks = (rows + rowsPerBlock - 1) / rowsPerBlock, total = blocks * d;
        int stride = Grid.DimX * Group.DimX;
        for (int idx = Grid.GlobalIndex.X; idx < total; idx += stride)
        {
            int k = idx / d, j = idx - k * d;
            int end = Math.Min(rows, (k + 1) * rowsPerBlock);
            float sg = 0f, sb = 0f;
            for (int row = k * rowsPerBlock; row < end; row++)
            {
                float g = dy[row * d + j];
                sg += g * (x[row * d + j] - mean[row]) * rstd[row];
                sb += g;
            }
            partial[idx] = sg;
            partial[total + idx] = sb;
        }
    }
}
