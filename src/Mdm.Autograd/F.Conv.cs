using Mdm.Kernels;
using Mdm.Kernels.Reference;

namespace Mdm.Autograd;

/// <summary>Bf16Operands: x and w already hold bf16 values (autocast); on a backend with tensor cores the forward runs
/// on bf16 copies (exact), and so does the backward (dy rounded to bf16, as under torch.autocast). BF16 x and w (autocast's
/// bf16 storage) go to the bf16 kernels as they are and are what the node keeps for the backward; off tensor cores the
/// backward widens them and keeps dy f32, as the rounded autocast does, so both storages give the same gradients.
/// Bf16Output: the output is bf16, as torch.autocast's conv output is: a BF16 tensor written by the convolution with
/// BF16 operands, else the f32 output rounded in place (the rounded autocast's emulation). Its gradient is F32 holding
/// bf16 values (rounded on entry to the backward, as torch's gradient of a bf16 tensor is bf16), so both storages agree.</summary>
public sealed record ConvAttributes(int Stride, int Padding, bool Bf16Operands = false, bool Bf16Output = false);

public static partial class F
{
    /// <summary>torch.nn.functional.conv2d (NCHW): inputs x, weight [Cout, Cin, kh, kw] and optionally bias [Cout].</summary>
    public static OpDefinition<ConvAttributes> Conv2dOp { get; } = OpDefinition.Register(new OpDefinition<ConvAttributes>("conv2d",
        (x, a) =>
        {
            var bias = x.Length > 2 ? x[2] : null;
            if (a.Bf16Output && x[0].DType == DType.BF16) return (Ops.Conv2d(x[0], x[1], bias, a.Stride, a.Padding, outDType: DType.BF16), []);
            if (x[0].DType == DType.BF16 || !OnTensorCores(x[0], a)) return (RoundedIf(a.Bf16Output, Ops.Conv2d(x[0], x[1], bias, a.Stride, a.Padding)), []);
            using var xb = Ops.ToBF16(x[0]);
            using var wb = Ops.ToBF16(x[1]);
            return (RoundedIf(a.Bf16Output, Ops.Conv2d(xb, wb, bias, a.Stride, a.Padding)), []);
        }, (c, g) => WithBf16OutputGradient(c.Attributes.Bf16Output, g, gr => Conv2dBackward(c, gr)))
    {
        Reference = (x, s, a) => Ref.Conv2d(x[0], s[0], x[1], s[1], x.Length > 2 ? x[2] : null, a.Stride, a.Stride, a.Padding, a.Padding, out _, out _),
        CheckShapes = [[2, 3, 5, 5], [4, 3, 3, 3], [4]], BenchShapes = [[16, 128, 32, 32], [128, 128, 3, 3], [128]],
        CheckAttributes = new(2, 1), BenchAttributes = new(1, 1),
    });

    /// <summary>torch.nn.functional.conv1d (NCL): inputs x, weight [Cout, Cin, k] and optionally bias [Cout].</summary>
    public static OpDefinition<ConvAttributes> Conv1dOp { get; } = OpDefinition.Register(new OpDefinition<ConvAttributes>("conv1d",
        (x, a) => (Ops.Conv1d(x[0], x[1], x.Length > 2 ? x[2] : null, a.Stride, a.Padding), []), (c, g) =>
        {
            var (stride, padding) = (c.Attributes.Stride, c.Attributes.Padding);
            return ConvBackward(c, g,
                (gy, weightValue) => Ops.Conv1dBackwardInput(gy, weightValue, c.Input(0).Shape, stride, padding),
                (gy, inputValue) => Ops.Conv1dBackwardWeight(gy, inputValue, c.Input(1).Shape, stride, padding),
                gy => Ops.Conv1dBackwardBias(gy));
        })
    {
        Reference = (x, s, a) => Ref.Conv1d(x[0], s[0], x[1], s[1], x.Length > 2 ? x[2] : null, a.Stride, a.Padding, out _, out _),
        CheckShapes = [[2, 3, 9], [2, 3, 3], [2]], BenchShapes = [[16 * 256, 128, 16], [128, 128, 3], [128]],
        CheckAttributes = new(2, 1), BenchAttributes = new(1, 1),
    });

    public static Variable Conv2d(Variable x, Variable w, Variable? bias = null, int stride = 1, int padding = 0) =>
        Conv2dOp.Apply(new(stride, padding), bias is null ? [x, w] : [x, w, bias]);

    /// <summary>Conv2d whose x and w already hold bf16 values (autocast), with a bf16 output when
    /// <paramref name="bf16Output"/>; see <see cref="ConvAttributes"/>.</summary>
    public static Variable Conv2d(Variable x, Variable w, Variable? bias, int stride, int padding, bool bf16Operands, bool bf16Output = false) =>
        Conv2dOp.Apply(new(stride, padding, bf16Operands, bf16Output), bias is null ? [x, w] : [x, w, bias]);

    /// <summary>The backward of an op whose output autocast keeps in bf16: its gradient rounded to bf16 values first.</summary>
    static Tensor?[] WithBf16OutputGradient(bool bf16Output, Tensor g, Func<Tensor, Tensor?[]> backward)
    {
        if (!bf16Output) return backward(g);
        using var rounded = Ops.RoundToBF16(g);
        return backward(rounded);
    }

    /// <summary>y itself, rounded to bf16 values in place when <paramref name="round"/> (an f32 output autocast keeps in bf16).</summary>
    static Tensor RoundedIf(bool round, Tensor y) => round ? Ops.RoundToBF16(y, y) : y;

    public static Variable Conv1d(Variable x, Variable w, Variable? bias = null, int stride = 1, int padding = 0) =>
        Conv1dOp.Apply(new(stride, padding), bias is null ? [x, w] : [x, w, bias]);

    static bool OnTensorCores(Tensor x, ConvAttributes a) => a.Bf16Operands && x.Backend.HasTensorCores;

    static Tensor?[] Conv2dBackward(OpContext<ConvAttributes> c, Tensor g)
    {
        var (stride, padding) = (c.Attributes.Stride, c.Attributes.Padding);
        // Off tensor cores dy stays f32, as under the rounded autocast: BF16 operands are widened for the f32 kernels.
        if (!OnTensorCores(g, c.Attributes))
            return ConvBackward(c, g,
                (gy, weightValue) => WithF32(weightValue, w => Ops.Conv2dBackwardInput(gy, w, c.Input(0).Shape, stride, padding)),
                (gy, inputValue) => WithF32(inputValue, x => Ops.Conv2dBackwardWeight(gy, x, c.Input(1).Shape, stride, padding)),
                gy => Ops.Conv2dBackwardBias(gy));
        using var gb = Ops.ToBF16(g);
        return ConvBackward(c, g,
            (_, weightValue) => WithBF16(weightValue, w => Ops.Conv2dBackwardInput(gb, w, c.Input(0).Shape, stride, padding)),
            (_, inputValue) => WithBF16(inputValue, x => Ops.Conv2dBackwardWeight(gb, x, c.Input(1).Shape, stride, padding)),
            gy => Ops.Conv2dBackwardBias(gy));
    }

    /// <summary>f applied to t as a BF16 tensor: t itself when it is one, else a temporary copy.</summary>
    static Tensor WithBF16(Tensor t, Func<Tensor, Tensor> f) => WithDType(t, DType.BF16, f);

    /// <summary>f applied to t as an F32 tensor: t itself when it is one, else a temporary (exact) widening.</summary>
    static Tensor WithF32(Tensor t, Func<Tensor, Tensor> f) => WithDType(t, DType.F32, f);

    static Tensor WithDType(Tensor t, DType type, Func<Tensor, Tensor> f)
    {
        if (t.DType == type) return f(t);
        using var copy = type == DType.BF16 ? Ops.ToBF16(t) : Ops.ToF32(t);
        return f(copy);
    }

    /// <summary>The gradients a convolution node needs: input from (dy, w), weight from (dy, x), bias from dy.</summary>
    static Tensor?[] ConvBackward(OpContext<ConvAttributes> c, Tensor g, Func<Tensor, Tensor, Tensor> input, Func<Tensor, Tensor, Tensor> weight,
        Func<Tensor, Tensor> bias)
    {
        Tensor? dx = c.NeedsGrad(0) ? input(g, c.Input(1)) : null;
        Tensor? dw = c.NeedsGrad(1) ? weight(g, c.Input(0)) : null;
        if (c.InputCount == 2) return [dx, dw];
        return [dx, dw, c.NeedsGrad(2) ? bias(g) : null];
    }
}
