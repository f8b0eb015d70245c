using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels.Gpu.TensorCore;

namespace Mdm.Kernels.Gpu;

// The attention op's tensor-core forward on CUDA (AttentionTensorCoreKernels), behind UseTensorCoreAttention.
public sealed partial class IlgpuBackend
{
    /// <summary>Tensor-core attention forward per head dimension (32, 64, 96, 128); null where not loaded (not CUDA).</summary>
    readonly Dictionary<int, Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>> attentionTensorCore = new();

    /// <summary>On = the attention forward runs on tensor cores on CUDA (q, k, v rounded to bf16; softmax and
    /// accumulation in f32) for head dimensions 32, 64, 96 and 128. Off by default until a GPU run confirms the
    /// kernels, which so far are checked only through the emulation on the CPU accelerator.</summary>
    public bool UseTensorCoreAttention { get; set; }

    /// <summary>How many attention forwards took the tensor-core path.</summary>
    public long TensorCoreAttentions => Interlocked.Read(ref tensorCoreAttentions);
    long tensorCoreAttentions;

    partial void LoadTensorCoreKernels(Loader loader)
    {
        (string Name, int D)[] kernels = [(nameof(KernelCatalog.AttentionTensorCoreD32), 32), (nameof(KernelCatalog.AttentionTensorCoreD64), 64),
                                          (nameof(KernelCatalog.AttentionTensorCoreD96), 96), (nameof(KernelCatalog.AttentionTensorCoreD128), 128)];
        foreach (var (name, d) in kernels)
        {
            var kernel = KernelCatalog.All.Single(k => k.Name == name).Kernel;
            // Inline PTX only runs on CUDA; the CPU accelerator still compiles the kernel (so the catalogue stays whole).
            if (Kind == BackendKind.Cuda)
                attentionTensorCore[d] = loader.Load(name, () => LoadWithPromotedDepots<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>>(
                    kernel, KernelCatalog.Budget(name).Specialization, AttentionTensorCoreKernels.SharedBytes(d)));
            else
                loader.Load(name, () => accelerator.LoadKernel((Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>)kernel));
        }
    }

    /// <summary>The tensor-core forward when it is switched on, loaded and can take the shape.</summary>
    bool TryTensorCoreAttention(Tensor q, Tensor k, Tensor v, Tensor? mask, Tensor o, Tensor lse, float scale)
    {
        int bh = q.Dim(0) * q.Dim(1), nq = q.Dim(2), nk = k.Dim(2), d = q.Dim(3);
        if (!UseTensorCoreAttention || !attentionTensorCore.TryGetValue(d, out var kernel) || bh > 65535) return false;
        using var qb = Empty(DType.BF16, q.Shape);
        using var kb = Empty(DType.BF16, k.Shape);
        using var vb = Empty(DType.BF16, v.Shape);
        ConvertToBF16(q, qb);
        ConvertToBF16(k, kb);
        ConvertToBF16(v, vb);
        long pq = DeviceAddress(qb), pk = DeviceAddress(kb), pv = DeviceAddress(vb);
        if (pq % 16 != 0 || pk % 16 != 0 || pv % 16 != 0) return false;
        var p = new TensorCoreAttentionArgs
        {
            Q = pq, K = pk, V = pv, Nq = nq, Nk = nk, Heads = q.Dim(1), HasMask = mask is null ? 0 : 1,
            ScaleLog2 = scale * 1.4426950408889634f,
        };
        var cfg = new KernelConfig(new Index2D((nq + AttentionTensorCoreKernels.BlockQ - 1) / AttentionTensorCoreKernels.BlockQ, bh),
            new Index2D(AttentionTensorCoreKernels.Threads, 1), SharedMemoryConfig.RequestDynamic<byte>(AttentionTensorCoreKernels.SharedBytes(d)));
        kernel(accelerator.DefaultStream, cfg, F32(o), F32(lse), mask is null ? F32(lse) : F32(mask), p);
        Interlocked.Increment(ref tensorCoreAttentions);
        return true;
    }
}
