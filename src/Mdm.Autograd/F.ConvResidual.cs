using Mdm.Kernels;
using Mdm.Kernels.Reference;

namespace Mdm.Autograd;

public static partial class F
{
    /// <summary>
    /// conv2d(x, weight) + bias + residual with the residual added in the convolution's epilogue (the ResNet block's
    /// conv2 and skip: one output tensor and one pass instead of a convolution and an add). Inputs x, weight [Cout, Cin,
    /// kh, kw], bias [Cout], residual [N, Cout, Ho, Wo]; the backward is the convolution's, and the residual's gradient is
    /// the output gradient passed through.
    /// </summary>
    public static OpDefinition<ConvAttributes> Conv2dResidualOp { get; } = OpDefinition.Register(new OpDefinition<ConvAttributes>("conv2d_residual",
        (x, a) =>
        {
            if (x[0].DType == DType.BF16 || !OnTensorCores(x[0], a)) return (Ops.Conv2dResidual(x[0], x[1], x[2], x[3], a.Stride, a.Padding), []);
            using var xb = Ops.ToBF16(x[0]);
            using var wb = Ops.ToBF16(x[1]);
            return (Ops.Conv2dResidual(xb, wb, x[2], x[3], a.Stride, a.Padding), []);
        },
        (c, g) => [.. Conv2dBackward(c, g), c.NeedsGrad(3) ? Ops.Copy(g) : null])
    {
        Reference = (x, s, a) =>
        {
            var y = Ref.Conv2d(x[0], s[0], x[1], s[1], x[2], a.Stride, a.Stride, a.Padding, a.Padding, out _, out _);
            for (int i = 0; i < y.Length; i++) y[i] += x[3][i];
            return y;
        },
        CheckShapes = [[2, 3, 5, 5], [4, 3, 3, 3], [4], [2, 4, 3, 3]], BenchShapes = [[16, 128, 32, 32], [128, 128, 3, 3], [128], [16, 128, 32, 32]],
        CheckAttributes = new(2, 1), BenchAttributes = new(1, 1),
    });

    /// <summary>Conv2d(x, w, bias) + residual in one op (see <see cref="Conv2dResidualOp"/>); x and w hold bf16 values
    /// when <paramref name="bf16Operands"/> (autocast).</summary>
    public static Variable Conv2dResidual(Variable x, Variable w, Variable bias, Variable residual, int stride, int padding, bool bf16Operands = false) =>
        Conv2dResidualOp.Apply(new(stride, padding, bf16Operands), x, w, bias, residual);
}
