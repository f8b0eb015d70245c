using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    protected internal override void DiffusionLossForward(Tensor p, Tensor x, Tensor t, Tensor coef, Tensor perSample, Tensor loss, int rows, int rowLen)
    {
        var (chunks, chunkLen) = ReduceChunks(rowLen);
        long tasks = (long)rows * chunks;
        using var partial = Empty((int)tasks);
        Run(LossKernels.Partial, Groups(tasks), F32(p), F32(x), F32(t), F32(coef), F32(partial), rows, rowLen, chunks, chunkLen);
        Run(OptimKernels.FinishRows, Groups(rows), F32(partial), F32(perSample), rows, chunks, 1f / rowLen, 0);
        Run(LossKernels.WeightedSum, Groups(1), F32(perSample), F32(coef), F32(loss), rows);
    }

    protected internal override void DiffusionLossBackward(Tensor p, Tensor x, Tensor t, Tensor coef, Tensor g,
        Tensor? dp, Tensor? dx, Tensor? dt, int rowLen)
    {
        int outputs = (dp is null ? 0 : 1) | (dx is null ? 0 : 2) | (dt is null ? 0 : 4);
        var unused = F32(p);   // never written: its bit is clear
        Run(LossKernels.Backward, Launch(p.Numel), F32(p), F32(x), F32(t), F32(coef), F32(g),
            dp is null ? unused : F32(dp), dx is null ? unused : F32(dx), dt is null ? unused : F32(dt), rowLen, outputs);
    }
}
