using Mdm.Kernels;

namespace Mdm.Autograd;

public static partial class F
{
    /// <summary>GELU, exact erf form (torch default).</summary>
    public static Variable Gelu(Variable x) => Record.Op("gelu", Ops.Gelu(x.Data), [x], (n, g) => [Ops.GeluBackward(n.Input(0), g)]);

    /// <summary>FiLM: x·(1 + a) + b with a, b [N, C] broadcast over the spatial axes of x [N, C, ...].</summary>
    public static Variable ScaleShift(Variable x, Variable a, Variable b) =>
        Record.Op("scale_shift", Ops.ScaleShift(x.Data, a.Data, b.Data), [x, a, b], (n, g) =>
        {
            var (dx, da, db) = Ops.ScaleShiftBackward(n.Input(0), n.Input(1), g);
            return [dx, da, db];
        });

    public static Variable UpsampleNearest2x(Variable x) => Record.Op("upsample2x", Ops.UpsampleNearest2x(x.Data), [x], (_, g) => [Ops.UpsampleNearest2xBackward(g)]);

    /// <summary>Average pooling with kernel = stride = s (NCHW).</summary>
    public static Variable AvgPool2d(Variable x, int s) => Record.Op("avgpool", Ops.AvgPool2d(x.Data, s), [x], (_, g) => [Ops.AvgPool2dBackward(g, s)]);

    /// <summary>torch.cat along an axis.</summary>
    public static Variable Concat(IReadOnlyList<Variable> xs, int axis)
    {
        if (xs.Count == 0) throw new ArgumentException("Concat: no tensors");
        int ax = axis < 0 ? axis + xs[0].Data.Rank : axis;
        var y = Ops.Concat(xs.Select(v => v.Data).ToList(), axis);
        var sizes = xs.Select(v => v.Data.Dim(ax)).ToArray();
        return Record.Op("concat", y, xs.ToArray(), (_, g) => Ops.Split(g, sizes, ax));
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
        return Record.Op("narrow", parts[1], [x], (_, g) =>
        {
            // Zeros around the gradient along the axis.
            var before = g.Shape; before[ax] = start;
            var after = g.Shape; after[ax] = total - start - length;
            using var z0 = g.Backend.Zeros(before);
            using var z1 = g.Backend.Zeros(after);
            return [Ops.Concat([z0, g, z1], ax)];
        });
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
        Record.Op("permute", Ops.Permute(x.Data, dims), [x], (_, g) => [Ops.PermuteBackward(g, dims)]);
}
