using ILGPU;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public static partial class KernelCatalog
{
    public static readonly Action<ArrayView<float>, ArrayView<float>> GeluForward = ShapeKernels.GeluForward;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>> GeluBackward = ShapeKernels.GeluBackward;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> ScaleShiftForward = ShapeKernels.ScaleShiftForward;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> ScaleShiftBackward = ShapeKernels.ScaleShiftBackward;
    public static readonly Action<ArrayView<float>, ArrayView<float>, int, int> UpsampleNearest2x = ShapeKernels.UpsampleNearest2x;
    public static readonly Action<ArrayView<float>, ArrayView<float>, int, int> UpsampleNearest2xBackward = ShapeKernels.UpsampleNearest2xBackward;
    public static readonly Action<ArrayView<float>, ArrayView<float>, int, int, int> AvgPool2d = ShapeKernels.AvgPool2d;
    public static readonly Action<ArrayView<float>, ArrayView<float>, int, int, int> AvgPool2dBackward = ShapeKernels.AvgPool2dBackward;
    public static readonly Action<ArrayView<float>, ArrayView<float>, int, int, int, int, int, int> CopyBlocks = ShapeKernels.CopyBlocks;
    public static readonly Action<ArrayView<float>, ArrayView<float>, PermutePlan> Permute = ShapeKernels.Permute;
}
