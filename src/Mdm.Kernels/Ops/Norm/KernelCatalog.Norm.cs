using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public static partial class KernelCatalog
{
    public static readonly Delegate GroupNormForward = NormKernels.GroupNormForward;
    public static readonly Delegate GroupNormBackwardChannels = NormKernels.GroupNormBackwardChannels;
    public static readonly Delegate GroupNormBackwardInput = NormKernels.GroupNormBackwardInput;
    public static readonly Delegate LayerNormForward = NormKernels.LayerNormForward;
    public static readonly Delegate LayerNormBackwardInput = NormKernels.LayerNormBackwardInput;
    public static readonly Delegate LayerNormBackwardParams = NormKernels.LayerNormBackwardParams;
}
