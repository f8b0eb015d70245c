using Mdm.Kernels;

namespace Mdm.Autograd;

public static partial class F
{
    /// <summary>torch.nn.functional.conv2d (NCHW, weight [Cout, Cin, kh, kw], optional bias).</summary>
    public static Variable Conv2d(Variable x, Variable w, Variable? bias = null, int stride = 1, int padding = 0) =>
        Record.Op("conv", Ops.Conv2d(x.Data, w.Data, bias?.Data, stride, padding), bias is null ? [x, w] : [x, w, bias],
            (n, g) => ConvBackward(n, g,
                (gy, weightValue) => Ops.Conv2dBackwardInput(gy, weightValue, n.Input(0).Shape, stride, padding),
                (gy, inputValue) => Ops.Conv2dBackwardWeight(gy, inputValue, n.Input(1).Shape, stride, padding),
                gy => Ops.Conv2dBackwardBias(gy)));

    /// <summary>Conv2d whose x and w already hold bf16 values (autocast): on a backend with tensor cores the forward
    /// runs on bf16 copies (exact), and so does the backward (dy rounded to bf16, as under torch.autocast).</summary>
    public static Variable Conv2d(Variable x, Variable w, Variable? bias, int stride, int padding, bool bf16Operands)
    {
        if (!bf16Operands || !x.Data.Backend.HasTensorCores) return Conv2d(x, w, bias, stride, padding);
        using var xb = Ops.ToBF16(x.Data);
        using var wb = Ops.ToBF16(w.Data);
        return Record.Op("conv", Ops.Conv2d(xb, wb, bias?.Data, stride, padding), bias is null ? [x, w] : [x, w, bias], (n, g) =>
        {
            using var gb = Ops.ToBF16(g);
            return ConvBackward(n, g,
                (_, weightValue) => { using var weightBf16 = Ops.ToBF16(weightValue); return Ops.Conv2dBackwardInput(gb, weightBf16, n.Input(0).Shape, stride, padding); },
                (_, inputValue) => { using var inputBf16 = Ops.ToBF16(inputValue); return Ops.Conv2dBackwardWeight(gb, inputBf16, n.Input(1).Shape, stride, padding); },
                gy => Ops.Conv2dBackwardBias(gy));
        });
    }

    /// <summary>torch.nn.functional.conv1d (NCL, weight [Cout, Cin, k], optional bias).</summary>
    public static Variable Conv1d(Variable x, Variable w, Variable? bias = null, int stride = 1, int padding = 0) =>
        Record.Op("conv", Ops.Conv1d(x.Data, w.Data, bias?.Data, stride, padding), bias is null ? [x, w] : [x, w, bias],
            (n, g) => ConvBackward(n, g,
                (gy, weightValue) => Ops.Conv1dBackwardInput(gy, weightValue, n.Input(0).Shape, stride, padding),
                (gy, inputValue) => Ops.Conv1dBackwardWeight(gy, inputValue, n.Input(1).Shape, stride, padding),
                gy => Ops.Conv1dBackwardBias(gy)));

    /// <summary>The gradients a convolution node needs: input from (dy, w), weight from (dy, x), bias from dy.</summary>
    static Tensor?[] ConvBackward(Node n, Tensor g, Func<Tensor, Tensor, Tensor> input, Func<Tensor, Tensor, Tensor> weight,
        Func<Tensor, Tensor> bias)
    {
        Tensor? dx = n.NeedsGrad(0) ? input(g, n.Input(1)) : null;
        Tensor? dw = n.NeedsGrad(1) ? weight(g, n.Input(0)) : null;
        if (n.Inputs.Length == 2) return [dx, dw];
        return [dx, dw, n.NeedsGrad(2) ? bias(g) : null];
    }
}
