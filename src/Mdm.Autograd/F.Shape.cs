using Mdm.Kernels;

namespace Mdm.Autograd;

public static partial class F
{
    internal sealed record PoolAttr(int S);
    internal sealed record ConcatAttr(int Axis, int[] Sizes);
    internal sealed record NarrowAttr(int Axis, int Start, int Length, int Total);
    internal sealed record PermuteAttr(int[] Dims);

    /// <summary>GELU, exact erf form (torch default).</summary>
    public static Variable Gelu(Variable x) => Record.Op("gelu", Ops.Gelu(x.Data), [x]);

    /// <summary>FiLM: x·(1 + a) + b with a, b [N, C] broadcast over the spatial axes of x [N, C, ...].</summary>
    public static Variable ScaleShift(Variable x, Variable a, Variable b) =>
        Record.Op("scale_shift", Ops.ScaleShift(x.Data, a.Data, b.Data), [x, a, b]);

    public static Variable UpsampleNearest2x(Variable x) => Record.Op("upsample2x", Ops.UpsampleNearest2x(x.Data), [x]);

    /// <summary>Average pooling with kernel = stride = s (NCHW).</summary>
    public static Variable AvgPool2d(Variable x, int s) => Record.Op("avgpool", Ops.AvgPool2d(x.Data, s), [x], new PoolAttr(s));

    /// <summary>torch.cat along an axis.</summary>
    public static Variable Concat(IReadOnlyList<Variable> xs, int axis)
    {
        if (xs.Count == 0) throw new ArgumentException("Concat: no tensors");
        int ax = axis < 0 ? axis + xs[0].Data.Rank : axis;
        var y = Ops.Concat(xs.Select(v => v.Data).ToList(), axis);
        return Record.Op("concat", y, xs.ToArray(), new ConcatAttr(ax, xs.Select(v => v.Data.Dim(ax)).ToArray()));
    }

    /// <summary>torch.narrow: elements [start, start + length) along an axis, as a new tensor.</summary>
    public static Variable Narrow(Variable x, int axis, int start, int length)
    {
        int ax = axis < 0 ? axis + x.Data.Rank : axis;
        int total = ax >= 0 && ax < x.Data.Rank ? x.Data.Dim(ax) : 0;
        if (ax < 0 || ax >= x.Data.Rank || start < 0 || length < 0 || start + length > total)
            throw new ArgumentException($"Narrow: [{start}, {start + length}) along axis {axis} is outside {x.Data.ShapeString}");
        var parts = Ops.Split(x.Data, [start, length, total - start - length], ax);
        parts[0].Dispose(); parts[2].Dispose();
        return Record.Op("narrow", parts[1], [x], new NarrowAttr(ax, start, length, total));
    }

    /// <summary>Split into consecutive pieces along an axis (each piece its own differentiable narrow).</summary>
    public static Variable[] Split(Variable x, int[] sizes, int axis)
    {
        var r = new Variable[sizes.Length];
        int start = 0;
        for (int i = 0; i < sizes.Length; i++) { r[i] = Narrow(x, axis, start, sizes[i]); start += sizes[i]; }
        if (start != x.Data.Dim(axis)) throw new ArgumentException($"Split: sizes [{string.Join(",", sizes)}] do not sum to {x.Data.Dim(axis)} along axis {axis} of {x.Data.ShapeString}");
        return r;
    }

    /// <summary>torch.permute, producing a contiguous tensor.</summary>
    public static Variable Permute(Variable x, params int[] dims) =>
        Record.Op("permute", Ops.Permute(x.Data, dims), [x], new PermuteAttr(dims));
}

internal static partial class BackwardRules
{
    static partial void ApplyShape(Node n, Tensor g, ref Tensor?[]? result)
    {
        var x = n.Inputs;
        switch (n.Op)
        {
            case "gelu": result = [Ops.GeluBackward(x[0].Data, g)]; break;
            case "scale_shift":
            {
                var (dx, da, db) = Ops.ScaleShiftBackward(x[0].Data, x[1].Data, g);
                result = [dx, da, db];
                break;
            }
            case "upsample2x": result = [Ops.UpsampleNearest2xBackward(g)]; break;
            case "avgpool": result = [Ops.AvgPool2dBackward(g, ((F.PoolAttr)n.Attributes!).S)]; break;
            case "concat":
            {
                var a = (F.ConcatAttr)n.Attributes!;
                result = Ops.Split(g, a.Sizes, a.Axis);
                break;
            }
            case "narrow":
            {
                // Zeros around the gradient along the axis.
                var a = (F.NarrowAttr)n.Attributes!;
                var before = g.Shape; before[a.Axis] = a.Start;
                var after = g.Shape; after[a.Axis] = a.Total - a.Start - a.Length;
                using var z0 = g.Backend.Zeros(before);
                using var z1 = g.Backend.Zeros(after);
                result = [Ops.Concat([z0, g, z1], a.Axis)];
                break;
            }
            case "permute": result = [Ops.PermuteBackward(g, ((F.PermuteAttr)n.Attributes!).Dims)]; break;
        }
    }
}
