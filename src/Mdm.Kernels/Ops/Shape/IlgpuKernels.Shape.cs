using ILGPU;
using ILGPU.Runtime;

namespace Mdm.Kernels.Gpu;

// Shape family launchers.
public sealed partial class IlgpuBackend
{
    Action<KernelConfig, ArrayView<float>, ArrayView<float>> geluForward = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>> geluBackward = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> scaleShiftForward = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> scaleShiftBackward = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int> upsample2x = null!, upsample2xBackward = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int> avgPool2d = null!, avgPool2dBackward = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int> copyBlocks = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, PermutePlan> permute = null!;

    partial void LoadShapeKernels(Loader loader)
    {
        var a = accelerator;
        geluForward = loader.Load(nameof(KernelCatalog.GeluForward), () => a.LoadStreamKernel(KernelCatalog.GeluForward));
        geluBackward = loader.Load(nameof(KernelCatalog.GeluBackward), () => a.LoadStreamKernel(KernelCatalog.GeluBackward));
        scaleShiftForward = loader.Load(nameof(KernelCatalog.ScaleShiftForward), () => a.LoadStreamKernel(KernelCatalog.ScaleShiftForward));
        scaleShiftBackward = loader.Load(nameof(KernelCatalog.ScaleShiftBackward), () => a.LoadStreamKernel(KernelCatalog.ScaleShiftBackward));
        upsample2x = loader.Load(nameof(KernelCatalog.UpsampleNearest2x), () => a.LoadStreamKernel(KernelCatalog.UpsampleNearest2x));
        upsample2xBackward = loader.Load(nameof(KernelCatalog.UpsampleNearest2xBackward), () => a.LoadStreamKernel(KernelCatalog.UpsampleNearest2xBackward));
        avgPool2d = loader.Load(nameof(KernelCatalog.AvgPool2d), () => a.LoadStreamKernel(KernelCatalog.AvgPool2d));
        avgPool2dBackward = loader.Load(nameof(KernelCatalog.AvgPool2dBackward), () => a.LoadStreamKernel(KernelCatalog.AvgPool2dBackward));
        copyBlocks = loader.Load(nameof(KernelCatalog.CopyBlocks), () => a.LoadStreamKernel(KernelCatalog.CopyBlocks));
        permute = loader.Load(nameof(KernelCatalog.Permute), () => a.LoadStreamKernel(KernelCatalog.Permute));
    }

    protected internal override void GeluForward(Tensor x, Tensor y) => geluForward(Launch(y.Numel), F32(x), F32(y));
    protected internal override void GeluBackward(Tensor x, Tensor dy, Tensor dx) => geluBackward(Launch(dx.Numel), F32(x), F32(dy), F32(dx));

    protected internal override void ScaleShiftForward(Tensor x, Tensor a, Tensor b, Tensor y, int rows, int inner) =>
        scaleShiftForward(Launch(y.Numel), F32(x), F32(a), F32(b), F32(y), inner);

    protected internal override void ScaleShiftBackward(Tensor x, Tensor a, Tensor dy, Tensor dx, Tensor da, Tensor db, int rows, int inner) =>
        scaleShiftBackward(new KernelConfig(Math.Clamp(rows, 1, maxGroups), groupSize), F32(x), F32(a), F32(dy), F32(dx), F32(da), F32(db), rows, inner);

    protected internal override void UpsampleNearest2x(Tensor x, Tensor y, int planes, int h, int w) =>
        upsample2x(Launch(y.Numel), F32(x), F32(y), h, w);

    protected internal override void UpsampleNearest2xBackward(Tensor dy, Tensor dx, int planes, int h, int w) =>
        upsample2xBackward(Launch(dx.Numel), F32(dy), F32(dx), h, w);

    protected internal override void AvgPool2d(Tensor x, Tensor y, int planes, int oh, int ow, int s) =>
        avgPool2d(Launch(y.Numel), F32(x), F32(y), oh, ow, s);

    protected internal override void AvgPool2dBackward(Tensor dy, Tensor dx, int planes, int oh, int ow, int s) =>
        avgPool2dBackward(Launch(dx.Numel), F32(dy), F32(dx), oh, ow, s);

    protected internal override void CopyBlocks(Tensor src, int srcStride, int srcOffset, Tensor dst, int dstStride, int dstOffset, int outer, int chunk) =>
        copyBlocks(Launch((long)outer * chunk), F32(src), F32(dst), outer, chunk, srcStride, srcOffset, dstStride, dstOffset);

    protected internal override void Permute(Tensor x, Tensor y, in PermutePlan plan) => permute(Launch(y.Numel), F32(x), F32(y), plan);
}
