using ILGPU;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public static partial class KernelCatalog
{
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int> OptimSquaredSumPartial = OptimKernels.SquaredSumPartial;
    public static readonly Action<ArrayView<float>, ArrayView<float>, int, int, float, int> OptimFinishRows = OptimKernels.FinishRows;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> MseLossBackward = OptimKernels.SquaredErrorBackward;
    public static readonly Action<ArrayView<float>, ArrayView<float>, int, int, int, int, float> QuantileAbs = OptimKernels.QuantileAbs;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamStepArgs> AdamStep = OptimKernels.AdamStep;
    public static readonly Action<ArrayView<float>, ArrayView<float>, float> EmaUpdate = OptimKernels.EmaUpdate;
}
