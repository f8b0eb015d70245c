using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public static partial class KernelCatalog
{
    public static readonly Delegate GeluForward = ShapeKernels.GeluForward;
    public static readonly Delegate GeluBackward = ShapeKernels.GeluBackward;
    public static readonly Delegate ScaleShiftForward = ShapeKernels.ScaleShiftForward;
    public static readonly Delegate ScaleShiftBackward = ShapeKernels.ScaleShiftBackward;
    public static readonly Delegate UpsampleNearest2x = ShapeKernels.UpsampleNearest2x;
    public static readonly Delegate UpsampleNearest2xBackward = ShapeKernels.UpsampleNearest2xBackward;
    public static readonly Delegate AvgPool2d = ShapeKernels.AvgPool2d;
    public static readonly Delegate AvgPool2dBackward = ShapeKernels.AvgPool2dBackward;
    public static readonly Delegate CopyBlocks = ShapeKernels.CopyBlocks;
    public static readonly Delegate Permute = ShapeKernels.Permute;
}
