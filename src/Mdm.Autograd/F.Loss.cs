using Mdm.Kernels;

namespace Mdm.Autograd;

public static partial class F
{
    /// <summary>mean((x − y)²) as a scalar [] tensor (torch.nn.functional.mse_loss).</summary>
    public static Variable MseLoss(Variable x, Variable y) =>
        Record.Op("mse", Ops.MseLoss(x.Data, y.Data), [x, y], (n, g) => MseBackward(n, Ops.MseLossBackward(n.Input(0), n.Input(1), g)));

    /// <summary>Per-sample mean((x − y)²) over all axes but the first → [N].</summary>
    public static Variable MseLossPerSample(Variable x, Variable y) =>
        Record.Op("mse", Ops.MseLossPerSample(x.Data, y.Data), [x, y],
            (n, g) => MseBackward(n, Ops.MseLossPerSampleBackward(n.Input(0), n.Input(1), g)));

    static Tensor?[] MseBackward(Node n, Tensor dx)
    {
        Tensor? dy = null;
        if (n.NeedsGrad(1)) dy = Ops.Scale(dx, -1f);   // d/dy (x − y)² = −d/dx
        if (!n.NeedsGrad(0)) { dx.Dispose(); return [null, dy]; }
        return [dx, dy];
    }
}
