using ILGPU;
using ILGPU.Runtime;

namespace Mdm.Kernels.Gpu;

// Convolution launchers (kernels in Kernels/ConvKernels.cs).
public sealed partial class IlgpuBackend
{
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, ArrayView<float>, Conv2dGeometry> conv2dForward = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, Conv2dGeometry> conv2dBackwardInput = null!, conv2dBackwardWeight = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int> conv2dBackwardBias = null!;

    partial void LoadConvKernels(Loader loader)
    {
        var a = accelerator;
        conv2dForward = loader.Load(nameof(KernelCatalog.Conv2dForward), () => a.LoadStreamKernel(KernelCatalog.Conv2dForward));
        conv2dBackwardInput = loader.Load(nameof(KernelCatalog.Conv2dBackwardInput), () => a.LoadStreamKernel(KernelCatalog.Conv2dBackwardInput));
        conv2dBackwardWeight = loader.Load(nameof(KernelCatalog.Conv2dBackwardWeight), () => a.LoadStreamKernel(KernelCatalog.Conv2dBackwardWeight));
        conv2dBackwardBias = loader.Load(nameof(KernelCatalog.Conv2dBackwardBias), () => a.LoadStreamKernel(KernelCatalog.Conv2dBackwardBias));
    }

    protected internal override void Conv2dForward(Tensor x, Tensor weight, Tensor? bias, Tensor y, in Conv2dGeometry g) =>
        // Without a bias the kernel never reads its bias view; the weight stands in for it.
        conv2dForward(Launch(y.Numel), F32(x), F32(weight), bias is null ? F32(weight) : F32(bias), bias is null ? 0 : 1, F32(y), g);

    protected internal override void Conv2dBackwardInput(Tensor dy, Tensor weight, Tensor dx, in Conv2dGeometry g) =>
        conv2dBackwardInput(Launch(dx.Numel), F32(dy), F32(weight), F32(dx), g);

    protected internal override void Conv2dBackwardWeight(Tensor x, Tensor dy, Tensor dweight, in Conv2dGeometry g) =>
        conv2dBackwardWeight(new KernelConfig((int)Math.Clamp(dweight.Numel, 1, maxGroups), groupSize), F32(x), F32(dy), F32(dweight), g);

    protected internal override void Conv2dBackwardBias(Tensor dy, Tensor dbias, in Conv2dGeometry g) =>
        conv2dBackwardBias(new KernelConfig(Math.Clamp(g.Cout, 1, maxGroups), groupSize), F32(dy), F32(dbias), g.N, g.Cout, g.Ho * g.Wo);
}
