using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public static partial class KernelCatalog
{
    public static readonly Delegate AttentionForward = AttentionKernels.Forward;
    public static readonly Delegate AttentionBackwardDq = AttentionKernels.BackwardDq;
    public static readonly Delegate AttentionBackwardDkDv = AttentionKernels.BackwardDkDv;
    public static readonly Delegate Rotary = AttentionKernels.Rotary;
}
