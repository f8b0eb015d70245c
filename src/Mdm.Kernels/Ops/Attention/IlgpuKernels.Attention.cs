using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

public sealed partial class IlgpuBackend
{
    static AttentionShape AttentionShapeOf(Tensor q, Tensor k, Tensor? mask, float scale) => new()
    {
        BH = q.Dim(0) * q.Dim(1), Heads = q.Dim(1), Nq = q.Dim(2), Nk = k.Dim(2), D = q.Dim(3),
        HasMask = mask is null ? 0 : 1, Scale = scale,
    };

    /// <summary>One group per tile (grid-stride when there are more tiles than <c>maxGroups</c>).</summary>
    KernelConfig TileLaunch(long tiles) => new((int)Math.Clamp(tiles, 1, maxGroups), groupSize);

    protected internal override void AttentionForward(Tensor q, Tensor k, Tensor v, Tensor? mask, Tensor o, Tensor lse, float scale)
    {
        if (TryTensorCoreAttention(q, k, v, mask, o, lse, scale)) return;
        var s = AttentionShapeOf(q, k, mask, scale);
        long tiles = (long)s.BH * ((s.Nq + AttentionKernels.TileQ - 1) / AttentionKernels.TileQ);
        LaunchLog.CountFlops(4.0 * s.BH * s.Nq * s.Nk * q.Dim(3));
        var m = mask is null ? F32(lse) : F32(mask);   // a placeholder view without a mask (never read)
        if (o.DType == DType.BF16) Run(AttentionKernels.Forward<ushort, BF16Widen, ushort, BF16Narrow>, TileLaunch(tiles), U16(q), U16(k), U16(v), m, U16(o), F32(lse), s);
        else if (q.DType == DType.BF16) Run(AttentionKernels.Forward<ushort, BF16Widen, float, F32Narrow>, TileLaunch(tiles), U16(q), U16(k), U16(v), m, F32(o), F32(lse), s);
        else Run(AttentionKernels.Forward<float, F32Widen, float, F32Narrow>, TileLaunch(tiles), F32(q), F32(k), F32(v), m, F32(o), F32(lse), s);
    }

    protected internal override void AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, Tensor dO, Tensor? mask,
        Tensor dq, Tensor dk, Tensor dv, float scale)
    {
        if (TryTensorCoreAttentionBackward(q, k, v, o, lse, dO, mask, dq, dk, dv, scale)) return;
        var s = AttentionShapeOf(q, k, mask, scale);
        var m = mask is null ? F32(lse) : F32(mask);
        // Δ = rowsum(dO∘O) is written by the dq kernel and read by the dk/dv kernel (same stream, so in order).
        using var delta = Empty(s.BH, s.Nq);
        long qTiles = (long)s.BH * ((s.Nq + AttentionKernels.TileQ - 1) / AttentionKernels.TileQ);
        long kTiles = (long)s.BH * ((s.Nk + AttentionKernels.TileK - 1) / AttentionKernels.TileK);
        LaunchLog.CountFlops(6.0 * s.BH * s.Nq * s.Nk * q.Dim(3));   // S again, dP, dQ
        if (o.DType == DType.BF16)
            Run(AttentionKernels.BackwardDq<ushort, BF16Widen, ushort, BF16Widen>, TileLaunch(qTiles), U16(q), U16(k), U16(v), U16(o), F32(dO), F32(lse), m, F32(dq), F32(delta), s);
        else if (q.DType == DType.BF16)
            Run(AttentionKernels.BackwardDq<ushort, BF16Widen, float, F32Widen>, TileLaunch(qTiles), U16(q), U16(k), U16(v), F32(o), F32(dO), F32(lse), m, F32(dq), F32(delta), s);
        else Run(AttentionKernels.BackwardDq<float, F32Widen, float, F32Widen>, TileLaunch(qTiles), F32(q), F32(k), F32(v), F32(o), F32(dO), F32(lse), m, F32(dq), F32(delta), s);
        LaunchLog.CountFlops(8.0 * s.BH * s.Nq * s.Nk * q.Dim(3));   // S and dP again, dV, dK
        if (q.DType == DType.BF16)
            Run(AttentionKernels.BackwardDkDv<ushort, BF16Widen>, TileLaunch(kTiles), U16(q), U16(k), U16(v), F32(dO), F32(lse), F32(delta), m, F32(dk), F32(dv), s);
        else Run(AttentionKernels.BackwardDkDv<float, F32Widen>, TileLaunch(kTiles), F32(q), F32(k), F32(v), F32(dO), F32(lse), F32(delta), m, F32(dk), F32(dv), s);
    }

    protected internal override void Rotary(Tensor x, Tensor y, float theta, int offset, bool inverse) =>
        Run(AttentionKernels.Rotary, Launch(x.Numel / 2), F32(x), F32(y), x.Dim(2), x.Dim(3), offset, Math.Pow(theta, -2.0 / x.Dim(3)), inverse ? -1f : 1f);
}
