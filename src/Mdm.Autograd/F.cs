using Mdm.Kernels;
using Mdm.Kernels.Reference;

namespace Mdm.Autograd;

public sealed record ScaleAttributes(float Alpha);
/// <summary>Axes to reduce (empty: all) and whether they stay as size-1 axes.</summary>
public sealed record ReduceAttributes(int[] Axes, bool KeepDims);
public sealed record ReshapeAttributes(int[] Shape);

/// <summary>
/// Differentiable ops on Variables (the functional API). Each op is one <see cref="OpDefinition{TAttributes}"/> —
/// forward, typed backward, float64 reference, check and bench shapes — and the F method is its typed call.
/// </summary>
public static partial class F
{
    /// <summary>a + b; F32 operands broadcast, a BF16 operand (autocast's bf16 storage) takes torch's type promotion
    /// (see <see cref="Ops.Add"/>): BF16 + BF16 is BF16, BF16 + F32 is F32. Gradients are F32.</summary>
    public static OpDefinition<NoAttributes> AddOp { get; } = OpDefinition.Register(new OpDefinition<NoAttributes>("add",
        (x, _) => (Ops.Add(x[0], x[1]), []), (c, g) => AddBackward(c, g, negateB: false))
    {
        Reference = (x, s, none) => Ref.Binary(x[0], s[0], x[1], s[1], (a, b) => a + b, out _),
        CheckShapes = [[3, 4], [4]], BenchShapes = [[64, 4096], [64, 4096]],
    });

    public static OpDefinition<NoAttributes> SubOp { get; } = OpDefinition.Register(new OpDefinition<NoAttributes>("sub",
        (x, _) => (Ops.Sub(x[0], x[1]), []), (c, g) => AddBackward(c, g, negateB: true))
    {
        Reference = (x, s, none) => Ref.Binary(x[0], s[0], x[1], s[1], (a, b) => a - b, out _),
        CheckShapes = [[3, 1], [2, 1, 4]], BenchShapes = [[64, 4096], [64, 4096]],
    });

    public static OpDefinition<NoAttributes> MulOp { get; } = OpDefinition.Register(new OpDefinition<NoAttributes>("mul",
        (x, _) => (Ops.Mul(x[0], x[1]), []), (c, g) =>
        {
            var (da, db) = Ops.MulBackward(g, c.Input(0), c.Input(1), c.NeedsGrad(0), c.NeedsGrad(1));
            return [da, db];
        })
    {
        Reference = (x, s, none) => Ref.Binary(x[0], s[0], x[1], s[1], (a, b) => a * b, out _),
        CheckShapes = [[3, 4], [3, 1]], BenchShapes = [[64, 4096], [64, 4096]],
    });

    public static OpDefinition<ScaleAttributes> ScaleOp { get; } = OpDefinition.Register(new OpDefinition<ScaleAttributes>("scale",
        (x, a) => (Ops.Scale(x[0], a.Alpha), []), (c, g) => [Ops.Scale(g, c.Attributes.Alpha)])
    {
        Reference = (x, _, a) => Ref.Map(x[0], v => v * a.Alpha),
        CheckShapes = [[3, 5]], BenchShapes = [[64, 4096]], CheckAttributes = new(-0.75f),
    });

    public static OpDefinition<NoAttributes> SiluOp { get; } = OpDefinition.Register(new OpDefinition<NoAttributes>("silu",
        (x, _) => (Ops.Silu(x[0]), []), (c, g) => [Ops.SiluBackward(c.Input(0), g)])
    {
        Reference = (x, _, _) => Ref.Map(x[0], Ref.Silu),
        CheckShapes = [[3, 5]], BenchShapes = [[64, 4096]],
    });

    public static OpDefinition<ReduceAttributes> SumOp { get; } = OpDefinition.Register(new OpDefinition<ReduceAttributes>("sum",
        (x, a) => (Ops.Sum(x[0], a.Axes, a.KeepDims), []), (c, g) => ReduceBackward(c, g, mean: false))
    {
        Reference = (x, s, a) => Ref.Sum(x[0], s[0], a.Axes, out _, out _),
        CheckShapes = [[3, 4, 5]], BenchShapes = [[16, 128, 1024]], CheckAttributes = new([1], false),
    });

    public static OpDefinition<ReduceAttributes> MeanOp { get; } = OpDefinition.Register(new OpDefinition<ReduceAttributes>("mean",
        (x, a) => (Ops.Mean(x[0], a.Axes, a.KeepDims), []), (c, g) => ReduceBackward(c, g, mean: true))
    {
        Reference = (x, s, a) =>
        {
            var sum = Ref.Sum(x[0], s[0], a.Axes, out _, out _);
            return Ref.Map(sum, v => v * sum.Length / x[0].Length);
        },
        CheckShapes = [[3, 4, 5]], BenchShapes = [[16, 128, 1024]], CheckAttributes = new([0, 2], true),
    });

    /// <summary>A copy, so the graph never aliases buffers it frees separately.</summary>
    public static OpDefinition<ReshapeAttributes> ReshapeOp { get; } = OpDefinition.Register(new OpDefinition<ReshapeAttributes>("reshape",
        (x, a) => (Ops.Copy(x[0].Reshape(a.Shape)), []), (c, g) => [Ops.Copy(g.Reshape(c.Input(0).Shape))])
    {
        Reference = (x, _, _) => (double[])x[0].Clone(),
        CheckShapes = [[3, 4]], BenchShapes = [[64, 4096]], CheckAttributes = new([2, 6]), BenchAttributes = new([4096, 64]),
    });

    public static Variable Add(Variable a, Variable b) => AddOp.Apply(default, a, b);
    public static Variable Sub(Variable a, Variable b) => SubOp.Apply(default, a, b);
    public static Variable Mul(Variable a, Variable b) => MulOp.Apply(default, a, b);
    public static Variable Scale(Variable x, float alpha) => ScaleOp.Apply(new(alpha), x);
    public static Variable Silu(Variable x) => SiluOp.Apply(default, x);
    public static Variable Sum(Variable x, int[]? axes = null, bool keepDims = false) => SumOp.Apply(new(axes ?? [], keepDims), x);
    public static Variable Mean(Variable x, int[]? axes = null, bool keepDims = false) => MeanOp.Apply(new(axes ?? [], keepDims), x);
    /// <summary>Same values, another shape.</summary>
    public static Variable Reshape(Variable x, params int[] shape) => ReshapeOp.Apply(new(shape), x);

    static Tensor?[] AddBackward(OpContext<NoAttributes> c, Tensor g, bool negateB)
    {
        // BF16 + BF16 is a BF16 sum (autocast's bf16 storage): its gradient is rounded to bf16 values, as torch's is
        if (!negateB && c.Input(0).DType == DType.BF16 && c.Input(1).DType == DType.BF16)
            return WithBf16OutputGradient(true, g, gr => AddGradients(c, gr, negateB: false));
        return AddGradients(c, g, negateB);
    }

    static Tensor?[] AddGradients(OpContext<NoAttributes> c, Tensor g, bool negateB)
    {
        var (da, db) = Ops.AddBackward(g, c.Input(0).Shape, c.Input(1).Shape, c.NeedsGrad(0), c.NeedsGrad(1));
        if (negateB && db is not null) Ops.Scale(db, -1f, db);
        return [da, db];
    }

    /// <summary>Sum and mean share one rule: broadcast the gradient back, times the mean's 1/count.</summary>
    static Tensor?[] ReduceBackward(OpContext<ReduceAttributes> c, Tensor g, bool mean)
    {
        var x = c.Input(0);
        var dx = Ops.SumBackward(g, x.Shape, c.Attributes.Axes, c.Attributes.KeepDims);
        float scale = mean && g.Numel > 0 ? (float)g.Numel / x.Numel : 1f;
        if (scale != 1f) Ops.Scale(dx, scale, dx);
        return [dx];
    }
}
