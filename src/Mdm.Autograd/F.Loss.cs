using Mdm.Kernels;
using Mdm.Kernels.Reference;

namespace Mdm.Autograd;

public static partial class F
{
    /// <summary>mean((x − y)²) as a scalar [] tensor (torch.nn.functional.mse_loss).</summary>
    public static OpDefinition<NoAttributes> MseLossOp { get; } = OpDefinition.Register(new OpDefinition<NoAttributes>("mse",
        (x, _) => (Ops.MseLoss(x[0], x[1]), []), (c, g) => MseBackward(c, Ops.MseLossBackward(c.Input(0), c.Input(1), g)))
    {
        Reference = (x, _, _) => [Ref.MseRows(x[0], x[1], 1)[0]],
        CheckShapes = [[3, 5], [3, 5]], BenchShapes = [[16, 3, 64, 64], [16, 3, 64, 64]],
    });

    /// <summary>Per-sample mean((x − y)²) over all axes but the first → [N].</summary>
    public static OpDefinition<NoAttributes> MseLossPerSampleOp { get; } = OpDefinition.Register(new OpDefinition<NoAttributes>("mse_per_sample",
        (x, _) => (Ops.MseLossPerSample(x[0], x[1]), []), (c, g) => MseBackward(c, Ops.MseLossPerSampleBackward(c.Input(0), c.Input(1), g)))
    {
        Reference = (x, s, _) => Ref.MseRows(x[0], x[1], s[0][0]),
        CheckShapes = [[3, 5], [3, 5]], BenchShapes = [[16, 3, 64, 64], [16, 3, 64, 64]],
    });

    public static Variable MseLoss(Variable x, Variable y) => MseLossOp.Apply(default, x, y);
    public static Variable MseLossPerSample(Variable x, Variable y) => MseLossPerSampleOp.Apply(default, x, y);

    static Tensor?[] MseBackward(OpContext<NoAttributes> c, Tensor dx)
    {
        Tensor? dy = null;
        if (c.NeedsGrad(1)) dy = Ops.Scale(dx, -1f);   // d/dy (x − y)² = −d/dx
        if (!c.NeedsGrad(0)) { dx.Dispose(); return [null, dy]; }
        return [dx, dy];
    }
}
