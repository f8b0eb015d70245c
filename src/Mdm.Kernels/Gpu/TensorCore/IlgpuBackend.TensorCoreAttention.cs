using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels.Gpu.TensorCore;

namespace Mdm.Kernels.Gpu;

// The attention op's tensor-core forward and backward on CUDA, chosen by UseTensorCoreAttention or the tuning table.
public sealed partial class IlgpuBackend
{
    /// <summary>Tensor-core attention kernels per head dimension (32, 64, 96, 128), present where launchable (CUDA).</summary>
    readonly Dictionary<int, Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>> attentionTensorCore = new();
    /// <summary>The forward writing a bf16 o (rounded in its store), per head dimension.</summary>
    readonly Dictionary<int, Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>> attentionBF16OutTensorCore = new();
    readonly Dictionary<int, Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>> attentionDqTensorCore = new();
    /// <summary>dQ and Δ reading a bf16 o as it is, per head dimension.</summary>
    readonly Dictionary<int, Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>> attentionDqBF16OutTensorCore = new();
    readonly Dictionary<int, Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>> attentionDkDvTensorCore = new();

    /// <summary>On = the attention forward and backward run on tensor cores on CUDA (q, k, v rounded to bf16 unless they
    /// are BF16 already; softmax and
    /// accumulation in f32) for head dimensions 32, 64, 96 and 128; off = SIMT; null (the default) = the
    /// <see cref="Tuning"/> table's entry for this GPU and shape, else SIMT.</summary>
    public bool? UseTensorCoreAttention { get; set; }

    /// <summary>How many attention forwards and backwards took the tensor-core path.</summary>
    public long TensorCoreAttentions => Interlocked.Read(ref tensorCoreAttentions);
    long tensorCoreAttentions;

    partial void LoadTensorCoreKernels(Loader loader)
    {
        LoadConvTensorCoreKernels(loader);
        foreach (var d in new[] { 32, 64, 96, 128 })
        {
            string name = $"AttentionTensorCoreD{d}", dqName = $"AttentionTensorCoreDqD{d}", dkdvName = $"AttentionTensorCoreDkDvD{d}";
            var forward = (Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>)KernelCatalog.All.Single(k => k.Name == name).Kernel;
            var dq = (Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>)KernelCatalog.All.Single(k => k.Name == dqName).Kernel;
            var dkdv = (Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>)KernelCatalog.All.Single(k => k.Name == dkdvName).Kernel;
            if (LoadTensorCoreKernel(loader, name, forward, AttentionTensorCoreKernels.SharedBytes(d))) attentionTensorCore[d] = forward;
            int shared = AttentionBackwardTensorCoreKernels.SharedBytes(d);
            if (LoadTensorCoreKernel(loader, dqName, dq, shared)) attentionDqTensorCore[d] = dq;
            string bf16Name = $"AttentionTensorCoreBF16OutD{d}", dqBf16Name = $"AttentionTensorCoreDqBF16OutD{d}";
            var forwardBf16 = (Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>)KernelCatalog.All.Single(k => k.Name == bf16Name).Kernel;
            var dqBf16 = (Action<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, TensorCoreAttentionArgs>)KernelCatalog.All.Single(k => k.Name == dqBf16Name).Kernel;
            if (LoadTensorCoreKernel(loader, bf16Name, forwardBf16, AttentionTensorCoreKernels.SharedBytes(d))) attentionBF16OutTensorCore[d] = forwardBf16;
            if (LoadTensorCoreKernel(loader, dqBf16Name, dqBf16, shared)) attentionDqBF16OutTensorCore[d] = dqBf16;
            if (LoadTensorCoreKernel(loader, dkdvName, dkdv, shared)) attentionDkDvTensorCore[d] = dkdv;
        }
    }

    /// <summary>The tensor-core forward when it is switched on, loaded and can take the shape.</summary>
    bool TryTensorCoreAttention(Tensor q, Tensor k, Tensor v, Tensor? mask, Tensor o, Tensor lse, float scale)
    {
        int bh = q.Dim(0) * q.Dim(1), nq = q.Dim(2), nk = k.Dim(2), d = q.Dim(3);
        bool bf16Out = o.DType == DType.BF16;
        if (!(UseTensorCoreAttention ?? Tuning.AttentionOnTensorCores(GpuArchitecture, false, nk, d)) || bh > 65535
            || !(bf16Out ? attentionBF16OutTensorCore.ContainsKey(d) : attentionTensorCore.ContainsKey(d))) return false;
        using var qb = Bf16Copy(q, out long pq);
        using var kb = Bf16Copy(k, out long pk);
        using var vb = Bf16Copy(v, out long pv);
        if ((pq | pk | pv) % 16 != 0) return false;
        var p = new TensorCoreAttentionArgs
        {
            Q = pq, K = pk, V = pv, Nq = nq, Nk = nk, Heads = q.Dim(1), HasMask = mask is null ? 0 : 1,
            Scale = scale, ScaleLog2 = scale * 1.4426950408889634f,
        };
        var cfg = new KernelConfig(new Index2D((nq + AttentionTensorCoreKernels.BlockQ - 1) / AttentionTensorCoreKernels.BlockQ, bh),
            new Index2D(AttentionTensorCoreKernels.Threads, 1), SharedMemoryConfig.RequestDynamic<byte>(AttentionTensorCoreKernels.SharedBytes(d)));
        LaunchLog.CountFlops(4.0 * bh * nq * nk * d);
        var m = mask is null ? F32(lse) : F32(mask);
        if (bf16Out) Run(attentionBF16OutTensorCore[d], cfg, U16(o), F32(lse), m, p);   // autocast's o, rounded in the store
        else Run(attentionTensorCore[d], cfg, F32(o), F32(lse), m, p);
        Interlocked.Increment(ref tensorCoreAttentions);
        return true;
    }

    /// <summary>The tensor-core backward (dQ and Δ, then dK and dV) when it is switched on, loaded and can take the shape.</summary>
    bool TryTensorCoreAttentionBackward(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, Tensor dO, Tensor? mask,
        Tensor dq, Tensor dk, Tensor dv, float scale)
    {
        int bh = q.Dim(0) * q.Dim(1), nq = q.Dim(2), nk = k.Dim(2), d = q.Dim(3);
        bool bf16O = o.DType == DType.BF16;
        if (!(UseTensorCoreAttention ?? Tuning.AttentionOnTensorCores(GpuArchitecture, true, nk, d)) || bh > 65535
            || !(bf16O ? attentionDqBF16OutTensorCore.ContainsKey(d) : attentionDqTensorCore.ContainsKey(d))) return false;
        var dkdvKernel = attentionDkDvTensorCore[d];
        using var qb = Bf16Copy(q, out long pq);
        using var kb = Bf16Copy(k, out long pk);
        using var vb = Bf16Copy(v, out long pv);
        using var dob = Bf16Copy(dO, out long pdo);
        if ((pq | pk | pv | pdo) % 16 != 0) return false;
        var p = new TensorCoreAttentionArgs
        {
            Q = pq, K = pk, V = pv, DO = pdo, Nq = nq, Nk = nk, Heads = q.Dim(1), HasMask = mask is null ? 0 : 1,
            Scale = scale, ScaleLog2 = scale * 1.4426950408889634f,
        };
        using var delta = Empty(bh, nq);
        var group = new Index2D(AttentionTensorCoreKernels.Threads, 1);
        var shared = SharedMemoryConfig.RequestDynamic<byte>(AttentionBackwardTensorCoreKernels.SharedBytes(d));
        var m = mask is null ? F32(lse) : F32(mask);
        // Same stream: the dK/dV kernel sees the Δ the dQ kernel wrote.
        LaunchLog.CountFlops(6.0 * bh * nq * nk * d);   // S = QKᵀ again, dP = dO·Vᵀ, dQ = dS·K
        var dqCfg = new KernelConfig(new Index2D((nq + 63) / 64, bh), group, shared);
        if (bf16O) Run(attentionDqBF16OutTensorCore[d], dqCfg, U16(o), F32(dO), F32(lse), m, F32(dq), F32(delta), p);   // Δ widens o as it reads it
        else Run(attentionDqTensorCore[d], dqCfg, F32(o), F32(dO), F32(lse), m, F32(dq), F32(delta), p);
        LaunchLog.CountFlops(8.0 * bh * nq * nk * d);   // S, dP, dV = Pᵀ·dO, dK = dSᵀ·Q
        Run(dkdvKernel, new KernelConfig(new Index2D((nk + 63) / 64 * AttentionBackwardTensorCoreKernels.ColumnSplits(d), bh), group, shared), F32(lse), F32(delta), m, F32(dk), F32(dv), p);
        Interlocked.Increment(ref tensorCoreAttentions);
        return true;
    }

    /// <summary>x's bf16 values and their device address (cp.async reads it): a BF16 x itself (null: nothing to free),
    /// else x rounded into a fresh tensor.</summary>
    Tensor? Bf16Copy(Tensor x, out long address)
    {
        if (x.DType == DType.BF16) { address = DeviceAddress(x); return null; }
        var y = Empty(DType.BF16, x.Shape);
        ConvertToBF16(x, y);
        address = DeviceAddress(y);
        return y;
    }
}
