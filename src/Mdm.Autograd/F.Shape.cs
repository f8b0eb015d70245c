using Mdm.Kernels;
using Mdm.Kernels.Reference;

namespace Mdm.Autograd;

public sealed record PoolAttributes(int Size);
public sealed record AxisAttributes(int Axis);
/// <summary>Elements [Start, Start + Length) along Axis.</summary>
public sealed record NarrowAttributes(int Axis, int Start, int Length);
public sealed record PermuteAttributes(int[] Dims);

public static partial class F
{
    /// <summary>GELU, exact erf form (torch default). A BF16 x (autocast's bf16 storage) gives a BF16 output, computed in
    /// f32 and rounded once, as torch's GELU of a bf16 tensor; the node keeps the BF16 x, and the gradient is rounded to
    /// bf16 values on entry to the backward (torch's gradient of a bf16 output is bf16; the rounded autocast rounds it at
    /// the next operand cast instead, so both storages agree).</summary>
    public static OpDefinition<NoAttributes> GeluOp { get; } = OpDefinition.Register(new OpDefinition<NoAttributes>("gelu",
        (x, _) => (Ops.Gelu(x[0]), []),
        (c, g) => WithBf16OutputGradient(c.Input(0).DType == DType.BF16, g, gr => [Ops.GeluBackward(c.Input(0), gr)]))
    {
        Reference = (x, _, _) => Ref.Map(x[0], Ref.Gelu),
        CheckShapes = [[3, 5]], BenchShapes = [[64, 4096]],
    });

    /// <summary>FiLM: x·(1 + a) + b with a, b [N, C] broadcast over the spatial axes of x [N, C, ...].</summary>
    public static OpDefinition<NoAttributes> ScaleShiftOp { get; } = OpDefinition.Register(new OpDefinition<NoAttributes>("scale_shift",
        (x, _) => (Ops.ScaleShift(x[0], x[1], x[2]), []), (c, g) =>
        {
            var (dx, da, db) = Ops.ScaleShiftBackward(c.Input(0), c.Input(1), g);
            return [dx, da, db];
        })
    {
        Reference = (x, s, _) => Ref.ScaleShift(x[0], s[0], x[1], x[2]),
        CheckShapes = [[2, 3, 4], [2, 3], [2, 3]], BenchShapes = [[16, 128, 32, 32], [16, 128], [16, 128]],
    });

    public static OpDefinition<NoAttributes> UpsampleNearest2xOp { get; } = OpDefinition.Register(new OpDefinition<NoAttributes>("upsample2x",
        (x, _) => (Ops.UpsampleNearest2x(x[0]), []), (_, g) => [Ops.UpsampleNearest2xBackward(g)])
    {
        Reference = (x, s, _) => Ref.UpsampleNearest2x(x[0], s[0]),
        CheckShapes = [[1, 2, 3, 3]], BenchShapes = [[16, 128, 32, 32]],
    });

    /// <summary>Average pooling with kernel = stride = Size (NCHW).</summary>
    public static OpDefinition<PoolAttributes> AvgPool2dOp { get; } = OpDefinition.Register(new OpDefinition<PoolAttributes>("avgpool",
        (x, a) => (Ops.AvgPool2d(x[0], a.Size), []), (c, g) => [Ops.AvgPool2dBackward(g, c.Attributes.Size)])
    {
        Reference = (x, s, a) => Ref.AvgPool2d(x[0], s[0], a.Size, out _),
        CheckShapes = [[1, 2, 4, 6]], BenchShapes = [[16, 128, 64, 64]], CheckAttributes = new(2),
    });

    /// <summary>torch.cat along an axis (any number of inputs).</summary>
    public static OpDefinition<AxisAttributes> ConcatOp { get; } = OpDefinition.Register(new OpDefinition<AxisAttributes>("concat",
        (x, a) => (Ops.Concat(x, a.Axis), []), (c, g) =>
        {
            int axis = c.Attributes.Axis < 0 ? c.Attributes.Axis + g.Rank : c.Attributes.Axis;
            return Ops.Split(g, Enumerable.Range(0, c.InputCount).Select(i => c.Input(i).Dim(axis)).ToArray(), axis);
        })
    {
        Reference = (x, s, a) => Ref.Concat(x, s, a.Axis, out _),
        CheckShapes = [[2, 2, 3], [2, 1, 3]], BenchShapes = [[16, 128, 32, 32], [16, 64, 32, 32]], CheckAttributes = new(1),
    });

    /// <summary>torch.narrow, as a new tensor.</summary>
    public static OpDefinition<NarrowAttributes> NarrowOp { get; } = OpDefinition.Register(new OpDefinition<NarrowAttributes>("narrow",
        (x, a) => (Ops.Narrow(x[0], a.Axis, a.Start, a.Length), []),
        (c, g) => [Ops.NarrowBackward(g, c.Input(0).Shape, c.Attributes.Axis, c.Attributes.Start)])
    {
        Reference = (x, s, a) => Ref.Split(x[0], s[0], [a.Start, a.Length, s[0][a.Axis] - a.Start - a.Length], a.Axis)[1],
        CheckShapes = [[2, 4, 3]], BenchShapes = [[16, 384, 1024]], CheckAttributes = new(1, 1, 2), BenchAttributes = new(1, 128, 128),
    });

    /// <summary>torch.permute, producing a contiguous tensor.</summary>
    public static OpDefinition<PermuteAttributes> PermuteOp { get; } = OpDefinition.Register(new OpDefinition<PermuteAttributes>("permute",
        (x, a) => (Ops.Permute(x[0], a.Dims), []), (c, g) => [Ops.PermuteBackward(g, c.Attributes.Dims)])
    {
        Reference = (x, s, a) => Ref.Permute(x[0], s[0], a.Dims),
        CheckShapes = [[2, 3, 4]], BenchShapes = [[16, 128, 1024]], CheckAttributes = new([2, 0, 1]),
    });

    public static Variable Gelu(Variable x) => GeluOp.Apply(default, x);
    public static Variable ScaleShift(Variable x, Variable a, Variable b) => ScaleShiftOp.Apply(default, x, a, b);
    public static Variable UpsampleNearest2x(Variable x) => UpsampleNearest2xOp.Apply(default, x);
    public static Variable AvgPool2d(Variable x, int s) => AvgPool2dOp.Apply(new(s), x);

    public static Variable Concat(IReadOnlyList<Variable> xs, int axis)
    {
        if (xs.Count == 0) throw new ArgumentException("Concat: no tensors");
        return ConcatOp.Apply(new(axis), xs.ToArray());
    }

    public static Variable Narrow(Variable x, int axis, int start, int length) => NarrowOp.Apply(new(axis, start, length), x);

    /// <summary>Split into consecutive pieces along an axis (each piece its own differentiable narrow).</summary>
    public static Variable[] Split(Variable x, int[] sizes, int axis)
    {
        var r = new Variable[sizes.Length];
        int start = 0;
        for (int i = 0; i < sizes.Length; i++) { r[i] = Narrow(x, axis, start, sizes[i]); start += sizes[i]; }
        if (start != x.Data.Dim(axis)) throw new ArgumentException($"Split: sizes [{string.Join(",", sizes)}] do not sum to {x.Data.Dim(axis)} along axis {axis} of {x.Data.ShapeString}");
        return r;
    }

    public static Variable Permute(Variable x, params int[] dims) => PermuteOp.Apply(new(dims), x);
}
