using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public static partial class KernelCatalog
{
    public static readonly Delegate MatmulF32 = MatmulKernels.Gemm<float, F32Widen>;
    public static readonly Delegate MatmulBF16 = MatmulKernels.Gemm<ushort, BF16Widen>;
}

// bf16 tensor-core GEMM (CUDA only; see MatmulTensorCoreKernels), one kernel per transpose combination and warp layout.
public static partial class KernelCatalog
{
    const int TensorCoreGemmRegisters = 128;   // 8 warps: two groups of 256 threads per multiprocessor
    const int WideGemmRegisters = 255;         // 4 warps of 64×64 (128 accumulators): two groups of 128 threads

    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreNN = MatmulTensorCoreKernels.Gemm<OrientNN, EightWarps64x32>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreNT = MatmulTensorCoreKernels.Gemm<OrientNT, EightWarps64x32>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreTN = MatmulTensorCoreKernels.Gemm<OrientTN, EightWarps64x32>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreTT = MatmulTensorCoreKernels.Gemm<OrientTT, EightWarps64x32>;

    [KernelBudget(MaxRegisters = WideGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreWideNN = MatmulTensorCoreKernels.Gemm<OrientNN, FourWarps64x64>;
    [KernelBudget(MaxRegisters = WideGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreWideNT = MatmulTensorCoreKernels.Gemm<OrientNT, FourWarps64x64>;
    [KernelBudget(MaxRegisters = WideGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreWideTN = MatmulTensorCoreKernels.Gemm<OrientTN, FourWarps64x64>;
    [KernelBudget(MaxRegisters = WideGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreWideTT = MatmulTensorCoreKernels.Gemm<OrientTT, FourWarps64x64>;
}
