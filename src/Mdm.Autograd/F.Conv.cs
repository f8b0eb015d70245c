using Mdm.Kernels;

namespace Mdm.Autograd;

public static partial class F
{
    /// <summary>Bf16: the forward ran on bf16 copies (tensor cores), so the backward does too, with dy rounded to bf16
    /// as torch's autocast does for a bf16 convolution.</summary>
    internal sealed record ConvAttr(int Stride, int Padding, bool OneD, bool Bf16 = false);

    /// <summary>torch.nn.functional.conv2d (NCHW, weight [Cout, Cin, kh, kw], optional bias).</summary>
    public static Variable Conv2d(Variable x, Variable w, Variable? bias = null, int stride = 1, int padding = 0) =>
        Record.Op("conv", Ops.Conv2d(x.Data, w.Data, bias?.Data, stride, padding), bias is null ? [x, w] : [x, w, bias],
            new ConvAttr(stride, padding, false));

    /// <summary>Conv2d whose x and w already hold bf16 values (autocast): on a backend with tensor cores the forward
    /// runs on bf16 copies (exact), and so does the backward (dy rounded to bf16, as under torch.autocast).</summary>
    public static Variable Conv2d(Variable x, Variable w, Variable? bias, int stride, int padding, bool bf16Operands)
    {
        if (!bf16Operands || !x.Data.Backend.HasTensorCores) return Conv2d(x, w, bias, stride, padding);
        using var xb = Ops.ToBF16(x.Data);
        using var wb = Ops.ToBF16(w.Data);
        return Record.Op("conv", Ops.Conv2d(xb, wb, bias?.Data, stride, padding), bias is null ? [x, w] : [x, w, bias],
            new ConvAttr(stride, padding, false, Bf16: true));
    }

    /// <summary>torch.nn.functional.conv1d (NCL, weight [Cout, Cin, k], optional bias).</summary>
    public static Variable Conv1d(Variable x, Variable w, Variable? bias = null, int stride = 1, int padding = 0) =>
        Record.Op("conv", Ops.Conv1d(x.Data, w.Data, bias?.Data, stride, padding), bias is null ? [x, w] : [x, w, bias],
            new ConvAttr(stride, padding, true));
}

internal static partial class BackwardRules
{
    static partial void ApplyConv(Node n, Tensor g, ref Tensor?[]? result)
    {
        if (n.Op != "conv") return;
        var a = (F.ConvAttr)n.Attributes!;
        var (x, w) = (n.Inputs[0].Data, n.Inputs[1].Data);
        Tensor? dx = null, dw = null, db = null;
        if (a.OneD)
        {
            if (n.NeedsGrad(0)) dx = Ops.Conv1dBackwardInput(g, w, x.Shape, a.Stride, a.Padding);
            if (n.NeedsGrad(1)) dw = Ops.Conv1dBackwardWeight(g, x, w.Shape, a.Stride, a.Padding);
            if (n.Inputs.Length == 3 && n.NeedsGrad(2)) db = Ops.Conv1dBackwardBias(g);
        }
        else if (a.Bf16)
        {
            using var gb = Ops.ToBF16(g);
            if (n.NeedsGrad(0)) { using var wb = Ops.ToBF16(w); dx = Ops.Conv2dBackwardInput(gb, wb, x.Shape, a.Stride, a.Padding); }
            if (n.NeedsGrad(1)) { using var xb = Ops.ToBF16(x); dw = Ops.Conv2dBackwardWeight(gb, xb, w.Shape, a.Stride, a.Padding); }
            if (n.Inputs.Length == 3 && n.NeedsGrad(2)) db = Ops.Conv2dBackwardBias(g);
        }
        else
        {
            if (n.NeedsGrad(0)) dx = Ops.Conv2dBackwardInput(g, w, x.Shape, a.Stride, a.Padding);
            if (n.NeedsGrad(1)) dw = Ops.Conv2dBackwardWeight(g, x, w.Shape, a.Stride, a.Padding);
            if (n.Inputs.Length == 3 && n.NeedsGrad(2)) db = Ops.Conv2dBackwardBias(g);
        }
        result = n.Inputs.Length == 3 ? [dx, dw, db] : [dx, dw];
    }
}
