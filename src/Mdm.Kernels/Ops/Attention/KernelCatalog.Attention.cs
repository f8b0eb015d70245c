using ILGPU;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public static partial class KernelCatalog
{
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape>
        AttentionForward = AttentionKernels.Forward;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape>
        AttentionBackwardDq = AttentionKernels.BackwardDq;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape>
        AttentionBackwardDkDv = AttentionKernels.BackwardDkDv;
    public static readonly Action<ArrayView<float>, ArrayView<float>, int, int, int, double, float> Rotary = AttentionKernels.Rotary;
}
