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

    /// <summary>
    /// One resolution's diffusion loss term in one pass (<see cref="Ops.DiffusionLoss"/>): inputs p (prediction),
    /// x (noisy input), t (target) [N, ...] and coef [N, 3] = (a, k, w); Σ_n w_n·mean((a_n·p + k_n·x − t)²) as a
    /// scalar. The backward makes the prediction's gradient (and x's, t's where needed) in one pass.
    /// </summary>
    public static OpDefinition<DiffusionLossAttributes> DiffusionLossOp { get; } = OpDefinition.Register(new OpDefinition<DiffusionLossAttributes>("diffusion_loss",
        (x, a) => (Ops.DiffusionLoss(x[0], x[1], x[2], x[3], a.PerSample), []), DiffusionLossBackward)
    {
        Reference = (x, _, _) => [Ref.DiffusionLoss(x[0], x[1], x[2], x[3]).Loss],
        CheckAttributes = new DiffusionLossAttributes(null),
        CheckShapes = [[3, 2, 5, 5], [3, 2, 5, 5], [3, 2, 5, 5], [3, 3]],
        BenchShapes = [[16, 3, 64, 64], [16, 3, 64, 64], [16, 3, 64, 64], [16, 3]],
    });

    /// <summary>The fused loss term; <paramref name="perSample"/> [N], when given, receives mean(e²) per sample.</summary>
    public static Variable DiffusionLoss(Variable prediction, Variable noisy, Variable target, Variable coefficients, Tensor? perSample = null) =>
        DiffusionLossOp.Apply(new DiffusionLossAttributes(perSample), prediction, noisy, target, coefficients);

    static Tensor?[] DiffusionLossBackward(OpContext<DiffusionLossAttributes> c, Tensor g)
    {
        var (p, x, t, coef) = (c.Input(0), c.Input(1), c.Input(2), c.Input(3));
        Tensor? Wanted(int i) => c.NeedsGrad(i) ? p.Backend.Empty(p.Shape) : null;
        Tensor? dp = Wanted(0), dx = Wanted(1), dt = Wanted(2);
        Ops.DiffusionLossBackward(p, x, t, coef, g, dp, dx, dt);
        return [dp, dx, dt, c.NeedsGrad(3) ? Ops.DiffusionLossCoefBackward(p, x, t, coef, g) : null];
    }

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

/// <summary>The fused diffusion loss's attribute: the tensor [N] that receives the per-sample losses, or null.</summary>
public readonly record struct DiffusionLossAttributes(Tensor? PerSample);
