using ILGPU;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public static partial class KernelCatalog
{
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, ArrayView<float>, Conv2dGeometry> Conv2dForward = ConvKernels.Forward;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, Conv2dGeometry> Conv2dBackwardInput = ConvKernels.BackwardInput;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, Conv2dGeometry> Conv2dBackwardWeight = ConvKernels.BackwardWeight;
    public static readonly Action<ArrayView<float>, ArrayView<float>, int, int, int> Conv2dBackwardBias = ConvKernels.BackwardBias;
    public static readonly Action<ArrayView<ushort>, ArrayView<uint>, Conv2dGeometry, int, int> Im2ColBF16 = ConvKernels.Im2ColBF16;
    public static readonly Action<ArrayView<float>, ArrayView<float>, Conv2dGeometry, int, int> Col2Im = ConvKernels.Col2Im;
}
