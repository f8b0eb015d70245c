using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public static partial class KernelCatalog
{
    public static readonly Delegate Conv2dForward = ConvKernels.Forward;
    public static readonly Delegate Conv2dBackwardInput = ConvKernels.BackwardInput;
    public static readonly Delegate Conv2dBackwardWeight = ConvKernels.BackwardWeight;
    public static readonly Delegate Conv2dBackwardBias = ConvKernels.BackwardBias;
    public static readonly Delegate Im2ColBF16 = ConvKernels.Im2ColBF16;
    public static readonly Delegate Col2Im = ConvKernels.Col2Im;
}
