using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public sealed partial class IlgpuBackend
{


    /// <summary>Most chunks one row is cut into for a reduction (bounds the partial buffer and the finishing pass).</summary>
    const int MaxReduceChunks = 1024;

    /// <summary>Chunking of a row of <paramref name="rowLen"/> for SquaredSumPartial: about 16 elements per thread on CUDA,
    /// 4 on the CPU accelerator (so the small test shapes still take the multi-chunk path).</summary>
    (int chunks, int chunkLen) ReduceChunks(int rowLen)
    {
        int target = groupSize * (Kind == BackendKind.Cuda ? 16 : 4);
        int chunks = Math.Min((rowLen + target - 1) / target, MaxReduceChunks);
        if (chunks < 1) chunks = 1;
        int chunkLen = (int)(((long)rowLen + chunks - 1) / chunks);
        return (chunks, chunkLen);
    }

    KernelConfig Groups(long tasks) => new((int)Math.Clamp(tasks, 1, maxGroups), groupSize);

    protected internal override void SquaredErrorRows(Tensor x, Tensor y, Tensor output, int rows, int rowLen, float scale)
    {
        var (chunks, chunkLen) = ReduceChunks(rowLen);
        long tasks = (long)rows * chunks;
        using var partial = Empty((int)tasks);
        Run(OptimKernels.SquaredSumPartial, Groups(tasks), F32(x), F32(y), F32(partial), rows, rowLen, chunks, chunkLen, 1);
        Run(OptimKernels.FinishRows, Groups(rows), F32(partial), F32(output), rows, chunks, scale, 0);
    }

    protected internal override void SquaredErrorBackward(Tensor x, Tensor y, Tensor dy, Tensor dx, int rowLen, float scale) =>
        Run(OptimKernels.SquaredErrorBackward, Launch(dx.Numel), F32(x), F32(y), F32(dy), F32(dx), rowLen, scale);

    protected internal override void QuantileAbsRows(Tensor x, Tensor q, int rows, int rowLen, int k, int kAbove, float frac) =>
        Run(OptimKernels.QuantileAbs, Groups(rows), F32(x), F32(q), rows, rowLen, k, kAbove, frac);

    protected internal override void GlobalNorm(IReadOnlyList<Tensor> tensors, Tensor norm)
    {
        var plan = new (int chunks, int chunkLen)[tensors.Count];
        long total = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            if (tensors[i].Numel == 0) continue;
            plan[i] = ReduceChunks((int)tensors[i].Numel);
            total += plan[i].chunks;
        }
        using var partial = Empty((int)Math.Max(total, 1));
        var pv = F32(partial);
        long at = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            var (chunks, chunkLen) = plan[i];
            if (chunks == 0) continue;
            var xv = F32(tensors[i]);
            Run(OptimKernels.SquaredSumPartial, Groups(chunks), xv, xv, pv.SubView(at, chunks), 1, (int)tensors[i].Numel, chunks, chunkLen, 0);
            at += chunks;
        }
        Run(OptimKernels.FinishRows, new KernelConfig(1, groupSize), pv, F32(norm), 1, (int)total, 1f, 1);
    }

    protected internal override void AdamStep(Tensor p, Tensor g, Tensor m, Tensor v, Tensor? gradNorm, in AdamStepArgs args)
    {
        var pv = F32(p);
        Run(OptimKernels.AdamStep, Launch(p.Numel), pv, F32(g), F32(m), F32(v), gradNorm is null ? pv : F32(gradNorm), args);
    }

    protected internal override void EmaUpdate(Tensor ema, Tensor param, float decay) =>
        Run(OptimKernels.EmaUpdate, Launch(ema.Numel), F32(ema), F32(param), decay);
}
