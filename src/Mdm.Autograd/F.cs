using Mdm.Kernels;

namespace Mdm.Autograd;

/// <summary>
/// Differentiable ops on Variables (the functional API). Each forward runs the kernel through <see cref="Ops"/> and
/// records a node; its backward rule lives in <see cref="BackwardRules"/> under the same op name.
/// </summary>
public static partial class F
{
    internal sealed record ShapesAttr(int[] A, int[] B);
    internal sealed record ScaleAttr(float Alpha);
    internal sealed record SumAttr(int[] InputShape, int[] Axes, bool KeepDims, float Scale);
    internal sealed record ReshapeAttr(int[] InputShape);

    public static Variable Add(Variable a, Variable b) =>
        Record.Op("add", Ops.Add(a.Data, b.Data), [a, b], new ShapesAttr(a.Shape, b.Shape));

    public static Variable Sub(Variable a, Variable b) =>
        Record.Op("sub", Ops.Sub(a.Data, b.Data), [a, b], new ShapesAttr(a.Shape, b.Shape));

    public static Variable Mul(Variable a, Variable b) =>
        Record.Op("mul", Ops.Mul(a.Data, b.Data), [a, b], new ShapesAttr(a.Shape, b.Shape));

    public static Variable Scale(Variable x, float alpha) =>
        Record.Op("scale", Ops.Scale(x.Data, alpha), [x], new ScaleAttr(alpha));

    public static Variable Silu(Variable x) => Record.Op("silu", Ops.Silu(x.Data), [x]);

    public static Variable Sum(Variable x, int[]? axes = null, bool keepDims = false) =>
        Record.Op("sum", Ops.Sum(x.Data, axes ?? [], keepDims), [x], new SumAttr(x.Shape, axes ?? [], keepDims, 1f));

    public static Variable Mean(Variable x, int[]? axes = null, bool keepDims = false)
    {
        var y = Ops.Mean(x.Data, axes ?? [], keepDims);
        float scale = y.Numel == 0 ? 1f : (float)y.Numel / x.Data.Numel;
        return Record.Op("sum", y, [x], new SumAttr(x.Shape, axes ?? [], keepDims, scale));
    }

    /// <summary>Same values, another shape (a copy, so the graph never aliases buffers it frees separately).</summary>
    public static Variable Reshape(Variable x, params int[] shape)
    {
        var view = x.Data.Reshape(shape);
        return Record.Op("reshape", Ops.Copy(view), [x], new ReshapeAttr(x.Shape));
    }
}
