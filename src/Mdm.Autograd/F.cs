using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>
/// Differentiable ops on Variables (the functional API). Each forward runs the kernel through <see cref="Ops"/> and
/// records a node with its backward rule beside it (a closure over the op's own typed parameters).
/// </summary>
public static partial class F
{
    public static Variable Add(Variable a, Variable b)
    {
        int[] shapeA = a.Shape, shapeB = b.Shape;
        return Record.Op("add", Ops.Add(a.Data, b.Data), [a, b], (n, g) =>
        {
            var (da, db) = Ops.AddBackward(g, shapeA, shapeB, n.NeedsGrad(0), n.NeedsGrad(1));
            return [da, db];
        });
    }

    public static Variable Sub(Variable a, Variable b)
    {
        int[] shapeA = a.Shape, shapeB = b.Shape;
        return Record.Op("sub", Ops.Sub(a.Data, b.Data), [a, b], (n, g) =>
        {
            var (da, db) = Ops.AddBackward(g, shapeA, shapeB, n.NeedsGrad(0), n.NeedsGrad(1));
            if (db is not null) Ops.Scale(db, -1f, db);
            return [da, db];
        });
    }

    public static Variable Mul(Variable a, Variable b) =>
        Record.Op("mul", Ops.Mul(a.Data, b.Data), [a, b], (n, g) =>
        {
            var (da, db) = Ops.MulBackward(g, n.Input(0), n.Input(1), n.NeedsGrad(0), n.NeedsGrad(1));
            return [da, db];
        });

    public static Variable Scale(Variable x, float alpha) =>
        Record.Op("scale", Ops.Scale(x.Data, alpha), [x], (_, g) => [Ops.Scale(g, alpha)]);

    public static Variable Silu(Variable x) =>
        Record.Op("silu", Ops.Silu(x.Data), [x], (n, g) => [Ops.SiluBackward(n.Input(0), g)]);

    public static Variable Sum(Variable x, int[]? axes = null, bool keepDims = false) =>
        RecordSum(x, Ops.Sum(x.Data, axes ?? [], keepDims), axes ?? [], keepDims, 1f);

    public static Variable Mean(Variable x, int[]? axes = null, bool keepDims = false)
    {
        var y = Ops.Mean(x.Data, axes ?? [], keepDims);
        float scale = y.Numel == 0 ? 1f : (float)y.Numel / x.Data.Numel;
        return RecordSum(x, y, axes ?? [], keepDims, scale);
    }

    /// <summary>Sum and mean share one rule: broadcast the gradient back, times the mean's 1/count.</summary>
    static Variable RecordSum(Variable x, Tensor y, int[] axes, bool keepDims, float scale)
    {
        var inputShape = x.Shape;
        return Record.Op("sum", y, [x], (_, g) =>
        {
            var dx = Ops.SumBackward(g, inputShape, axes, keepDims);
            if (scale != 1f) Ops.Scale(dx, scale, dx);
            return [dx];
        });
    }

    /// <summary>Same values, another shape (a copy, so the graph never aliases buffers it frees separately).</summary>
    public static Variable Reshape(Variable x, params int[] shape)
    {
        var view = x.Data.Reshape(shape);
        var inputShape = x.Shape;
        return Record.Op("reshape", Ops.Copy(view), [x], (_, g) => [Ops.Copy(g.Reshape(inputShape))]);
    }
}
