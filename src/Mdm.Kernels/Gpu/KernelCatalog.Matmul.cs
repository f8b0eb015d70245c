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

// bf16 tensor-core GEMM (CUDA only; see MatmulTensorCoreKernels), one kernel per transpose combination.
public static partial class KernelCatalog
{
    const int TensorCoreGemmRegisters = 128;   // two groups of 256 threads per multiprocessor

    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = MatmulTensorCoreKernels.Threads, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreNN = MatmulTensorCoreKernels.Gemm<OrientNN>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = MatmulTensorCoreKernels.Threads, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreNT = MatmulTensorCoreKernels.Gemm<OrientNT>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = MatmulTensorCoreKernels.Threads, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreTN = MatmulTensorCoreKernels.Gemm<OrientTN>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = MatmulTensorCoreKernels.Threads, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreTT = MatmulTensorCoreKernels.Gemm<OrientTT>;
}
