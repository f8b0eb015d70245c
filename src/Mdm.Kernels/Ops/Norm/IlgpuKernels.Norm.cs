using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.Tuning;
using V = ILGPU.ArrayView<float>;

namespace Mdm.Kernels.Gpu;

// GroupNorm (+ FiLM + SiLU) and LayerNorm launchers.
public sealed partial class IlgpuBackend
{

    /// <summary>Rows per block of the LayerNorm parameter-gradient partials (summed afterwards by SumMiddle).</summary>
    const int LayerNormRowsPerBlock = 32;


    /// <summary>One group per row (grid-stride over rows beyond the grid). groupSize is a power of two ≤ NormKernels.MaxGroupSize.</summary>
    KernelConfig RowGroups(long rows) => new((int)Math.Min(Math.Max(rows, 1), maxGroups), groupSize);

    static GroupNormParams GroupNormShape(Tensor x, int groups, bool film, bool silu, float eps)
    {
        int n = x.Dim(0), c = x.Dim(1);
        return new GroupNormParams(n, c, (int)(x.Numel / ((long)n * c)), groups, film, silu, eps);
    }

    protected internal override void GroupNormForward(Tensor x, Tensor gamma, Tensor beta, Tensor? a, Tensor? b, bool silu,
        int groups, float eps, Tensor y, Tensor mean, Tensor rstd)
    {
        var p = GroupNormShape(x, groups, a is not null, silu, eps);
        var g = F32(gamma);   // stands in for a and b when there is no FiLM (never read then)
        long rows = (long)p.N * groups;
        // The CPU accelerator pays most for barriers (every simulated thread is an OS thread): warp rows have none.
        var variant = GroupNormForwardVariant ?? (Kind == BackendKind.IlgpuCpu ? GroupNormVariant.WarpRows : Tuning.GroupNorm(GpuArchitecture, p.C / groups * p.S));
        KernelConfig cfg;
        if (variant == GroupNormVariant.WarpRows)
        {
            // One warp per row: 8 rows per 256-thread group on CUDA; one warp (one row at a time) on the CPU accelerator,
            // whose warps are 32 lanes wide as on CUDA.
            const int WarpLanes = 32;
            int threads = Kind == BackendKind.Cuda ? 256 : groupSize, rowsPerGroup = threads / WarpLanes;
            cfg = new KernelConfig((int)Math.Min(Math.Max((rows + rowsPerGroup - 1) / rowsPerGroup, 1), maxGroups), threads);
        }
        else
        {
            // 512 threads per (n, g) on CUDA: four groups per SM, so a 16×32-group batch runs in one wave.
            cfg = Kind == BackendKind.Cuda ? new KernelConfig((int)Math.Min(Math.Max(rows, 1), maxGroups), 512) : RowGroups(rows);
        }
        V va = a is null ? g : F32(a), vb = b is null ? g : F32(b);
        bool bf16X = x.DType == DType.BF16, bf16Y = y.DType == DType.BF16;
        if (bf16X && bf16Y)
            Run(GroupNormKernel<ushort, BF16Widen, ushort, BF16NormStore>(variant), cfg, U16(x), g, F32(beta), va, vb, U16(y), F32(mean), F32(rstd), p);
        else if (bf16X)
            Run(GroupNormKernel<ushort, BF16Widen, float, F32NormStore>(variant), cfg, U16(x), g, F32(beta), va, vb, F32(y), F32(mean), F32(rstd), p);
        else if (bf16Y)
            Run(GroupNormKernel<float, F32Widen, ushort, BF16NormStore>(variant), cfg, F32(x), g, F32(beta), va, vb, U16(y), F32(mean), F32(rstd), p);
        else
            Run(GroupNormKernel<float, F32Widen, float, F32NormStore>(variant), cfg, F32(x), g, F32(beta), va, vb, F32(y), F32(mean), F32(rstd), p);
    }

    /// <summary>The forward kernel of a <see cref="GroupNormVariant"/>, reading x as TX and storing y as T.</summary>
    static Action<ArrayView<TX>, V, V, V, V, ArrayView<T>, V, V, GroupNormParams> GroupNormKernel<TX, TXW, T, TStore>(string variant)
        where TX : unmanaged where TXW : struct, IWiden<TX> where T : unmanaged where TStore : struct, INormStore<T> =>
        variant == GroupNormVariant.WarpRows ? NormKernels.GroupNormForwardWarpRows<TX, TXW, T, TStore>
        : variant == GroupNormVariant.OnePass ? NormKernels.GroupNormForwardOnePass<TX, TXW, T, TStore>
        : NormKernels.GroupNormForward<TX, TXW, T, TStore>;

    /// <summary>Which GroupNorm forward runs (<see cref="GroupNormVariant"/>), or null (the default): on CUDA the
    /// <see cref="Tuning"/> table's entry for this GPU and row length, else <see cref="TuningHeuristics.GroupNorm"/>;
    /// on the CPU accelerator warp rows.</summary>
    public string? GroupNormForwardVariant
    {
        get => groupNormForwardVariant;
        set => groupNormForwardVariant = TuningTable.CheckVariant(nameof(GroupNormForwardVariant), TuningTable.GroupNormOp, value);
    }
    string? groupNormForwardVariant;

    protected internal override void GroupNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, Tensor gamma, Tensor beta,
        Tensor? a, Tensor? b, bool silu, int groups, Tensor dx, Tensor dgamma, Tensor dbeta, Tensor? da, Tensor? db)
    {
        var p = GroupNormShape(x, groups, a is not null, silu, eps: 0f);
        using var partial = Empty(2, p.N, p.C);   // [0]: fa·Σ dz·xhat, [1]: fa·Σ dz, per (n, c)
        var pv = F32(partial);
        var g = F32(gamma);
        V va = a is null ? g : F32(a), vb = b is null ? g : F32(b);
        V vda = da is null ? pv : F32(da), vdb = db is null ? pv : F32(db);
        if (x.DType == DType.BF16)
        {
            Run(NormKernels.GroupNormBackwardChannels<ushort, BF16Widen>, RowGroups((long)p.N * p.C), F32(dy), U16(x), F32(mean), F32(rstd), g, F32(beta), va, vb, pv, vda, vdb, p);
            Run(NormKernels.GroupNormBackwardInput<ushort, BF16Widen>, RowGroups((long)p.N * groups), F32(dy), U16(x), F32(mean), F32(rstd), g, F32(beta), va, vb, pv, F32(dx), p);
        }
        else
        {
            Run(NormKernels.GroupNormBackwardChannels<float, F32Widen>, RowGroups((long)p.N * p.C), F32(dy), F32(x), F32(mean), F32(rstd), g, F32(beta), va, vb, pv, vda, vdb, p);
            Run(NormKernels.GroupNormBackwardInput<float, F32Widen>, RowGroups((long)p.N * groups), F32(dy), F32(x), F32(mean), F32(rstd), g, F32(beta), va, vb, pv, F32(dx), p);
        }
        using var sumGamma = partial.Slice(0, 1);
        using var sumBeta = partial.Slice(1, 1);
        SumAxis(sumGamma, dgamma, 1, p.N, p.C);
        SumAxis(sumBeta, dbeta, 1, p.N, p.C);
    }

    protected internal override void LayerNormForward(Tensor x, Tensor gamma, Tensor beta, int rows, int d, float eps,
        Tensor y, Tensor mean, Tensor rstd) =>
        Run(NormKernels.LayerNormForward, RowGroups(rows), F32(x), F32(gamma), F32(beta), F32(y), F32(mean), F32(rstd), rows, d, eps);

    protected internal override void LayerNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, Tensor gamma, int rows, int d,
        Tensor dx, Tensor dgamma, Tensor dbeta)
    {
        int blocks = (rows + LayerNormRowsPerBlock - 1) / LayerNormRowsPerBlock;
        using var partial = Empty(2, blocks, d);   // [0]: Σ dy·xhat, [1]: Σ dy, per (row block, column)
        Run(NormKernels.LayerNormBackwardInput, RowGroups(rows), F32(dy), F32(x), F32(mean), F32(rstd), F32(gamma), F32(dx), rows, d);
        Run(NormKernels.LayerNormBackwardParams, Launch((long)blocks * d), F32(dy), F32(x), F32(mean), F32(rstd), F32(partial), rows, d, LayerNormRowsPerBlock);
        using var sumGamma = partial.Slice(0, 1);
        using var sumBeta = partial.Slice(1, 1);
        SumAxis(sumGamma, dgamma, 1, blocks, d);
        SumAxis(sumBeta, dbeta, 1, blocks, d);
    }
}
