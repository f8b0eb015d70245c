using Mdm.Kernels;

namespace Mdm.Autograd;

public static partial class F
{
    internal sealed record MseAttr(bool PerSample);

    /// <summary>mean((x − y)²) as a scalar [] tensor (torch.nn.functional.mse_loss).</summary>
    public static Variable MseLoss(Variable x, Variable y) =>
        Record.Op("mse", Ops.MseLoss(x.Data, y.Data), [x, y], new MseAttr(false));

    /// <summary>Per-sample mean((x − y)²) over all axes but the first → [N].</summary>
    public static Variable MseLossPerSample(Variable x, Variable y) =>
        Record.Op("mse", Ops.MseLossPerSample(x.Data, y.Data), [x, y], new MseAttr(true));
}

internal static partial class BackwardRules
{
    static partial void ApplyLoss(Node n, Tensor g, ref Tensor?[]? result)
    {
        if (n.Op != "mse") return;
        var a = (F.MseAttr)n.Attributes!;
        var (x, y) = (n.Inputs[0].Data, n.Inputs[1].Data);
        var dx = a.PerSample ? Ops.MseLossPerSampleBackward(x, y, g) : Ops.MseLossBackward(x, y, g);
        Tensor? dy = null;
        if (n.NeedsGrad(1)) dy = Ops.Scale(dx, -1f);   // d/dy (x − y)² = −d/dx
        if (!n.NeedsGrad(0)) { dx.Dispose(); dx = null!; }
        result = [dx, dy];
    }
}
