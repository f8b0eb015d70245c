using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

// Shape family launchers.
public sealed partial class IlgpuBackend
{


    protected internal override void GeluForward(Tensor x, Tensor y)
    {
        if (x.DType == DType.BF16) Run(ShapeKernels.GeluForward<ushort, BF16Widen, BF16Narrow>, Launch(y.Numel), U16(x), U16(y));
        else Run(ShapeKernels.GeluForward<float, F32Widen, F32Narrow>, Launch(y.Numel), F32(x), F32(y));
    }

    protected internal override void GeluBackward(Tensor x, Tensor dy, Tensor dx)
    {
        if (x.DType == DType.BF16) Run(ShapeKernels.GeluBackward<ushort, BF16Widen>, Launch(dx.Numel), U16(x), F32(dy), F32(dx));
        else Run(ShapeKernels.GeluBackward<float, F32Widen>, Launch(dx.Numel), F32(x), F32(dy), F32(dx));
    }

    protected internal override void ScaleShiftForward(Tensor x, Tensor a, Tensor b, Tensor y, int rows, int inner) =>
        Run(ShapeKernels.ScaleShiftForward, Launch(y.Numel), F32(x), F32(a), F32(b), F32(y), inner);

    protected internal override void ScaleShiftBackward(Tensor x, Tensor a, Tensor dy, Tensor dx, Tensor da, Tensor db, int rows, int inner) =>
        Run(ShapeKernels.ScaleShiftBackward, new KernelConfig(Math.Clamp(rows, 1, maxGroups), groupSize), F32(x), F32(a), F32(dy), F32(dx), F32(da), F32(db), rows, inner);

    protected internal override void UpsampleNearest2x(Tensor x, Tensor y, int planes, int h, int w) =>
        Run(ShapeKernels.UpsampleNearest2x, Launch(y.Numel), F32(x), F32(y), h, w);

    protected internal override void UpsampleNearest2xBackward(Tensor dy, Tensor dx, int planes, int h, int w) =>
        Run(ShapeKernels.UpsampleNearest2xBackward, Launch(dx.Numel), F32(dy), F32(dx), h, w);

    protected internal override void AvgPool2d(Tensor x, Tensor y, int planes, int oh, int ow, int s) =>
        Run(ShapeKernels.AvgPool2d, Launch(y.Numel), F32(x), F32(y), oh, ow, s);

    protected internal override void AvgPool2dBackward(Tensor dy, Tensor dx, int planes, int oh, int ow, int s) =>
        Run(ShapeKernels.AvgPool2dBackward, Launch(dx.Numel), F32(dy), F32(dx), oh, ow, s);

    protected internal override void CopyBlocks(Tensor src, int srcStride, int srcOffset, Tensor dst, int dstStride, int dstOffset, int outer, int chunk)
    {
        var launch = Launch((long)outer * chunk);
        if (src.DType == DType.BF16) Run(ShapeKernels.CopyBlocks<ushort>, launch, U16(src), U16(dst), outer, chunk, srcStride, srcOffset, dstStride, dstOffset);
        else Run(ShapeKernels.CopyBlocks<float>, launch, F32(src), F32(dst), outer, chunk, srcStride, srcOffset, dstStride, dstOffset);
    }

    protected internal override void Permute(Tensor x, Tensor y, in PermutePlan plan)
    {
        if (x.DType == DType.BF16) Run(ShapeKernels.Permute<ushort>, Launch(y.Numel), U16(x), U16(y), plan);
        else Run(ShapeKernels.Permute<float>, Launch(y.Numel), F32(x), F32(y), plan);
    }
}
