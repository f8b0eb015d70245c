using ILGPU;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.TensorCore;

namespace Mdm.Kernels.Gpu;

// The short-K tiles of the bf16 tensor-core GEMM (8 warps of 64×32 on 128×128×32, 4 warps of 64×32 on 64×128×32;
// 4-stage pipelines), every transpose form, f32 and bf16 C. Both keep the narrow kernel's 128 registers: two groups
// of 256 threads, or four of 128, per multiprocessor.
public static partial class KernelCatalog
{
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreBK32NN = MatmulTensorCoreKernels.Gemm<OrientNN, EightWarps64x32, Tile128x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreBK32NT = MatmulTensorCoreKernels.Gemm<OrientNT, EightWarps64x32, Tile128x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreBK32TN = MatmulTensorCoreKernels.Gemm<OrientTN, EightWarps64x32, Tile128x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreBK32TT = MatmulTensorCoreKernels.Gemm<OrientTT, EightWarps64x32, Tile128x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreBK32BF16OutNN = MatmulTensorCoreKernels.GemmBF16Out<OrientNN, EightWarps64x32, Tile128x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreBK32BF16OutNT = MatmulTensorCoreKernels.GemmBF16Out<OrientNT, EightWarps64x32, Tile128x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreBK32BF16OutTN = MatmulTensorCoreKernels.GemmBF16Out<OrientTN, EightWarps64x32, Tile128x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreBK32BF16OutTT = MatmulTensorCoreKernels.GemmBF16Out<OrientTT, EightWarps64x32, Tile128x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 4)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreM64NN = MatmulTensorCoreKernels.Gemm<OrientNN, EightWarps64x32, Tile64x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 4)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreM64NT = MatmulTensorCoreKernels.Gemm<OrientNT, EightWarps64x32, Tile64x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 4)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreM64TN = MatmulTensorCoreKernels.Gemm<OrientTN, EightWarps64x32, Tile64x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 4)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreM64TT = MatmulTensorCoreKernels.Gemm<OrientTT, EightWarps64x32, Tile64x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 4)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreM64BF16OutNN = MatmulTensorCoreKernels.GemmBF16Out<OrientNN, EightWarps64x32, Tile64x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 4)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreM64BF16OutNT = MatmulTensorCoreKernels.GemmBF16Out<OrientNT, EightWarps64x32, Tile64x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 4)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreM64BF16OutTN = MatmulTensorCoreKernels.GemmBF16Out<OrientTN, EightWarps64x32, Tile64x128K32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 4)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreM64BF16OutTT = MatmulTensorCoreKernels.GemmBF16Out<OrientTT, EightWarps64x32, Tile64x128K32, PtxWarpMma>;
}
