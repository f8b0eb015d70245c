using ILGPU;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public static partial class KernelCatalog
{
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> MatmulF32 =
        MatmulKernels.Gemm<float, F32Widen>;
    public static readonly Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, GemmArgs> MatmulBF16 =
        MatmulKernels.Gemm<ushort, BF16Widen>;
}
