using ILGPU;
using Mdm.Kernels.Gpu.Kernels;
using Mdm.Kernels.Gpu.TensorCore;

namespace Mdm.Kernels.Gpu;

// Tensor-core attention forward (CUDA; the same kernels run on the CPU accelerator through EmulatedWarpMma in the
// tests), one kernel per head dimension and output type. One group of 128 threads per 64 queries. Register budgets:
// ptxas 12.4 gives 96, 128, 159 and 167 (no stack) for f32 and bf16 o alike; at most 176 keeps three groups per
// multiprocessor.
public static partial class KernelCatalog
{
    [KernelBudget(MaxRegisters = 128, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreD32 = AttentionTensorCoreKernels.Forward<HeadDim32, PtxWarpMma, float, F32Narrow>;
    [KernelBudget(MaxRegisters = 128, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreD64 = AttentionTensorCoreKernels.Forward<HeadDim64, PtxWarpMma, float, F32Narrow>;
    [KernelBudget(MaxRegisters = 168, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreD96 = AttentionTensorCoreKernels.Forward<HeadDim96, PtxWarpMma, float, F32Narrow>;
    [KernelBudget(MaxRegisters = 176, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreD128 = AttentionTensorCoreKernels.Forward<HeadDim128, PtxWarpMma, float, F32Narrow>;

    // The same forward with a bf16 o (autocast's output), rounded to nearest even in the store.
    [KernelBudget(MaxRegisters = 128, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreBF16OutD32 = AttentionTensorCoreKernels.Forward<HeadDim32, PtxWarpMma, ushort, BF16Narrow>;
    [KernelBudget(MaxRegisters = 128, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreBF16OutD64 = AttentionTensorCoreKernels.Forward<HeadDim64, PtxWarpMma, ushort, BF16Narrow>;
    [KernelBudget(MaxRegisters = 168, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreBF16OutD96 = AttentionTensorCoreKernels.Forward<HeadDim96, PtxWarpMma, ushort, BF16Narrow>;
    [KernelBudget(MaxRegisters = 176, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreBF16OutD128 = AttentionTensorCoreKernels.Forward<HeadDim128, PtxWarpMma, ushort, BF16Narrow>;

    // Backward: dQ (and Δ) per 64 queries, then dK/dV per 64 keys.
    [KernelBudget(MaxRegisters = 255, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreDqD32 = AttentionBackwardTensorCoreKernels.Dq<HeadDim32, PtxWarpMma, float, F32Widen>;
    [KernelBudget(MaxRegisters = 255, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreDqD64 = AttentionBackwardTensorCoreKernels.Dq<HeadDim64, PtxWarpMma, float, F32Widen>;
    [KernelBudget(MaxRegisters = 255, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreDqD96 = AttentionBackwardTensorCoreKernels.Dq<HeadDim96, PtxWarpMma, float, F32Widen>;
    [KernelBudget(MaxRegisters = 255, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreDqD128 = AttentionBackwardTensorCoreKernels.Dq<HeadDim128, PtxWarpMma, float, F32Widen>;
    // dQ and Δ reading a bf16 o as it is.
    [KernelBudget(MaxRegisters = 255, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreDqBF16OutD32 = AttentionBackwardTensorCoreKernels.Dq<HeadDim32, PtxWarpMma, ushort, BF16Widen>;
    [KernelBudget(MaxRegisters = 255, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreDqBF16OutD64 = AttentionBackwardTensorCoreKernels.Dq<HeadDim64, PtxWarpMma, ushort, BF16Widen>;
    [KernelBudget(MaxRegisters = 255, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreDqBF16OutD96 = AttentionBackwardTensorCoreKernels.Dq<HeadDim96, PtxWarpMma, ushort, BF16Widen>;
    [KernelBudget(MaxRegisters = 255, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreDqBF16OutD128 = AttentionBackwardTensorCoreKernels.Dq<HeadDim128, PtxWarpMma, ushort, BF16Widen>;
    [KernelBudget(MaxRegisters = 255, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreDkDvD32 = AttentionBackwardTensorCoreKernels.DkDv<HeadDim32, PtxWarpMma>;
    [KernelBudget(MaxRegisters = 255, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreDkDvD64 = AttentionBackwardTensorCoreKernels.DkDv<HeadDim64, PtxWarpMma>;
    [KernelBudget(MaxRegisters = 255, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreDkDvD96 = AttentionBackwardTensorCoreKernels.DkDv<HeadDim96, PtxWarpMma>;
    [KernelBudget(MaxRegisters = 255, RequireHmma = true, RequireLdsm = true, PromoteDepots = true, MaxThreadsPerGroup = 128)]
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>
        AttentionTensorCoreDkDvD128 = AttentionBackwardTensorCoreKernels.DkDv<HeadDim128, PtxWarpMma>;
}
