using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public static partial class KernelCatalog
{
    public static readonly Delegate OptimSquaredSumPartial = OptimKernels.SquaredSumPartial;
    public static readonly Delegate OptimFinishRows = OptimKernels.FinishRows;
    public static readonly Delegate MseLossBackward = OptimKernels.SquaredErrorBackward;
    public static readonly Delegate QuantileAbs = OptimKernels.QuantileAbs;
    public static readonly Delegate AdamStep = OptimKernels.AdamStep;
    public static readonly Delegate EmaUpdate = OptimKernels.EmaUpdate;
}
