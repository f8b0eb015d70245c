using ILGPU;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.TensorCore;

namespace Mdm.Kernels.Gpu;

// bf16 tensor-core GEMM (CUDA only; see MatmulTensorCoreKernels), one kernel per transpose combination and warp layout.
public static partial class KernelCatalog
{
    const int TensorCoreGemmRegisters = 128;   // 8 warps: two groups of 256 threads per multiprocessor
    const int WideGemmRegisters = 255;         // 4 warps of 64×64 (128 accumulators): two groups of 128 threads

    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreNN = MatmulTensorCoreKernels.Gemm<OrientNN, EightWarps64x32, Tile128x128K64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreNT = MatmulTensorCoreKernels.Gemm<OrientNT, EightWarps64x32, Tile128x128K64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreTN = MatmulTensorCoreKernels.Gemm<OrientTN, EightWarps64x32, Tile128x128K64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreTT = MatmulTensorCoreKernels.Gemm<OrientTT, EightWarps64x32, Tile128x128K64, PtxWarpMma>;

    [KernelBudget(MaxRegisters = WideGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreWideNN = MatmulTensorCoreKernels.Gemm<OrientNN, FourWarps64x64, Tile128x128K64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = WideGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreWideNT = MatmulTensorCoreKernels.Gemm<OrientNT, FourWarps64x64, Tile128x128K64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = WideGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreWideTN = MatmulTensorCoreKernels.Gemm<OrientTN, FourWarps64x64, Tile128x128K64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = WideGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Delegate MatmulBF16TensorCoreWideTT = MatmulTensorCoreKernels.Gemm<OrientTT, FourWarps64x64, Tile128x128K64, PtxWarpMma>;

    // bf16 C (the same main loop; the epilogue rounds, stages the tile in shared memory and stores 16 bytes at a time).
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreBF16OutNN = MatmulTensorCoreKernels.GemmBF16Out<OrientNN, EightWarps64x32, Tile128x128K64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreBF16OutNT = MatmulTensorCoreKernels.GemmBF16Out<OrientNT, EightWarps64x32, Tile128x128K64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreBF16OutTN = MatmulTensorCoreKernels.GemmBF16Out<OrientTN, EightWarps64x32, Tile128x128K64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = TensorCoreGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 256, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreBF16OutTT = MatmulTensorCoreKernels.GemmBF16Out<OrientTT, EightWarps64x32, Tile128x128K64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = WideGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreWideBF16OutNN = MatmulTensorCoreKernels.GemmBF16Out<OrientNN, FourWarps64x64, Tile128x128K64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = WideGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreWideBF16OutNT = MatmulTensorCoreKernels.GemmBF16Out<OrientNT, FourWarps64x64, Tile128x128K64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = WideGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreWideBF16OutTN = MatmulTensorCoreKernels.GemmBF16Out<OrientTN, FourWarps64x64, Tile128x128K64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = WideGemmRegisters, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128, MinGroupsPerMultiprocessor = 2)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, TensorCoreGemmArgs> MatmulBF16TensorCoreWideBF16OutTT = MatmulTensorCoreKernels.GemmBF16Out<OrientTT, FourWarps64x64, Tile128x128K64, PtxWarpMma>;
}
