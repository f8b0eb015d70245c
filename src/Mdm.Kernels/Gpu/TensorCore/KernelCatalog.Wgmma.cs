using ILGPU;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.TensorCore;

namespace Mdm.Kernels.Gpu;

// The Hopper GEMM (wgmma through the sm_90a patch), one kernel per transpose form; loaded on sm_90 only. ptxas 12.4
// for sm_90a: 96-102 registers, no stack, four HGMMA per K slice.
public static partial class KernelCatalog
{
    [KernelBudget(MaxRegisters = 128, RequireHgmma = true, PromoteDepots = true, TargetSm90a = true, MaxThreadsPerGroup = WgmmaGemmKernels.Threads)]
    public static readonly Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, WgmmaGemmArgs>
        MatmulBF16WgmmaNN = WgmmaGemmKernels.Gemm<OrientNN>;
    [KernelBudget(MaxRegisters = 128, RequireHgmma = true, PromoteDepots = true, TargetSm90a = true, MaxThreadsPerGroup = WgmmaGemmKernels.Threads)]
    public static readonly Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, WgmmaGemmArgs>
        MatmulBF16WgmmaNT = WgmmaGemmKernels.Gemm<OrientNT>;
    [KernelBudget(MaxRegisters = 128, RequireHgmma = true, PromoteDepots = true, TargetSm90a = true, MaxThreadsPerGroup = WgmmaGemmKernels.Threads)]
    public static readonly Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, WgmmaGemmArgs>
        MatmulBF16WgmmaTN = WgmmaGemmKernels.Gemm<OrientTN>;
    [KernelBudget(MaxRegisters = 128, RequireHgmma = true, PromoteDepots = true, TargetSm90a = true, MaxThreadsPerGroup = WgmmaGemmKernels.Threads)]
    public static readonly Action<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, WgmmaGemmArgs>
        MatmulBF16WgmmaTT = WgmmaGemmKernels.Gemm<OrientTT>;
}
