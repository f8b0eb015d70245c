using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.TensorCore;

namespace Mdm.Kernels.Gpu;

// Implicit-GEMM convolution on tensor cores (CUDA; the same kernels run on the CPU accelerator through
// EmulatedWarpMma in the tests): forward, input gradient and weight gradient, each in the GEMM's two warp layouts.
// Launch bounds as the GEMM's: two groups per multiprocessor.
public static partial class KernelCatalog
{
    const int ConvNarrowRegisters = 128, ConvWideRegisters = 255;

    [KernelBudget(MaxRegisters = ConvNarrowRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate ConvTensorCoreForward = ConvTensorCoreKernels.Conv<ConvForward, EightWarps64x32>;
    [KernelBudget(MaxRegisters = ConvNarrowRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate ConvTensorCoreDgrad = ConvTensorCoreKernels.Conv<ConvDgrad, EightWarps64x32>;
    [KernelBudget(MaxRegisters = ConvNarrowRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate ConvTensorCoreWgrad = ConvTensorCoreKernels.Conv<ConvWgrad, EightWarps64x32>;

    [KernelBudget(MaxRegisters = ConvWideRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate ConvTensorCoreWideForward = ConvTensorCoreKernels.Conv<ConvForward, FourWarps64x64>;

    // The forward with a bf16 output rounded in the epilogue's store (autocast's conv output).
    [KernelBudget(MaxRegisters = ConvNarrowRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate ConvTensorCoreForwardBF16Out = ConvTensorCoreKernels.ConvBF16Out<ConvForward, EightWarps64x32>;
    [KernelBudget(MaxRegisters = ConvWideRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate ConvTensorCoreWideForwardBF16Out = ConvTensorCoreKernels.ConvBF16Out<ConvForward, FourWarps64x64>;
    [KernelBudget(MaxRegisters = ConvWideRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate ConvTensorCoreWideDgrad = ConvTensorCoreKernels.Conv<ConvDgrad, FourWarps64x64>;
    [KernelBudget(MaxRegisters = ConvWideRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate ConvTensorCoreWideWgrad = ConvTensorCoreKernels.Conv<ConvWgrad, FourWarps64x64>;
}
