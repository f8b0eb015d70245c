namespace Mdm.Kernels;

public static partial class Ops
{
    /// <summary>Sum over <paramref name="axes"/> (negative axes count from the end; empty = all axes).</summary>
    public static Tensor Sum(Tensor x, int[] axes, bool keepDims = false, Tensor? y = null)
    {
        SameBackend("Sum", x, y); RequireF32("Sum", x);
        var reduced = NormalizeAxes("Sum", x, axes);
        var keepShape = x.Shape;
        foreach (int ax in reduced) keepShape[ax] = 1;
        var outShape = keepDims ? keepShape : x.Shape.Where((_, i) => !reduced.Contains(i)).ToArray();
        y = Output("Sum", x, y, outShape);
        if (y.Numel == 0) return y;
        if (x.Numel == 0) { y.Backend.Fill(y, 0f); return y; }

        // Contiguous runs of reduced axes, reduced one run at a time from the innermost outwards.
        var runs = new List<(int start, int end)>();
        for (int i = 0; i < x.Rank; i++)
        {
            if (!reduced.Contains(i)) continue;
            if (runs.Count > 0 && runs[^1].end == i) runs[^1] = (runs[^1].start, i + 1); else runs.Add((i, i + 1));
        }
        if (runs.Count == 0) { x.Backend.Copy(x, y.Reshape(x.Shape)); return y; }

        var cur = x;
        var curShape = x.Shape;
        try
        {
            for (int k = runs.Count - 1; k >= 0; k--)
            {
                var (s, e) = runs[k];
                int outer = Prod(curShape, 0, s), reduce = Prod(curShape, s, e), inner = Prod(curShape, e, curShape.Length);
                for (int i = s; i < e; i++) curShape[i] = 1;
                Tensor next = k == 0 ? y.Reshape(curShape) : x.Backend.Empty(curShape);
                x.Backend.SumAxis(cur, next, outer, reduce, inner);
                if (!ReferenceEquals(cur, x)) cur.Dispose();
                cur = next;
            }
        }
        catch
        {
            if (!ReferenceEquals(cur, x)) cur.Dispose();
            throw;
        }
        return y;
    }

    public static Tensor SumAll(Tensor x, Tensor? y = null) => Sum(x, [], keepDims: false, y);

    public static Tensor Mean(Tensor x, int[] axes, bool keepDims = false, Tensor? y = null)
    {
        y = Sum(x, axes, keepDims, y);
        long count = y.Numel == 0 ? 1 : x.Numel / y.Numel;
        if (y.Numel > 0) y.Backend.Scale(y, 1f / Math.Max(count, 1), y);
        return y;
    }

    /// <summary>Backward of Sum: dy broadcast back over the reduced axes.</summary>
    public static Tensor SumBackward(Tensor dy, int[] inputShape, int[] axes, bool keepDims = false, Tensor? dx = null)
    {
        SameBackend("SumBackward", dy, dx); RequireF32("SumBackward", dy);
        var probe = inputShape;
        var reduced = NormalizeAxes("SumBackward", probe, axes);
        var keepShape = (int[])inputShape.Clone();
        foreach (int ax in reduced) keepShape[ax] = 1;
        if (Shape.Numel(keepShape) != dy.Numel)
            throw new ArgumentException($"SumBackward: gradient {dy.ShapeString} does not match a sum of {Shape.Format(inputShape)} over [{string.Join(",", axes)}]");
        using var view = dy.Reshape(keepShape);
        return BroadcastTo(view, inputShape, dx);
    }

    /// <summary>Sum x down to <paramref name="shape"/>, a shape that broadcasts to x's (the backward of broadcasting).</summary>
    public static Tensor SumTo(Tensor x, int[] shape, Tensor? y = null)
    {
        SameBackend("SumTo", x, y); RequireF32("SumTo", x);
        var b = Shape.Broadcast(shape, x.Dims);
        if (b is null || !Shape.Equal(b, x.Dims))
            throw new ArgumentException($"SumTo: {Shape.Format(shape)} does not broadcast to {x.ShapeString}");
        int lead = x.Rank - shape.Length;
        var axes = new List<int>();
        for (int i = 0; i < x.Rank; i++)
            if (i < lead || (shape[i - lead] == 1 && x.Dim(i) != 1)) axes.Add(i);
        y = Output("SumTo", x, y, shape);
        var keepShape = x.Shape;
        foreach (int ax in axes) keepShape[ax] = 1;
        using var view = y.Reshape(keepShape);
        if (axes.Count == 0) { if (x.Numel > 0) x.Backend.Copy(x, view); return y; }
        Sum(x, axes.ToArray(), keepDims: true, view);
        return y;
    }

    static HashSet<int> NormalizeAxes(string op, Tensor x, int[] axes) => NormalizeAxes(op, x.Shape, axes);

    static HashSet<int> NormalizeAxes(string op, int[] shape, int[] axes)
    {
        var set = new HashSet<int>();
        if (axes.Length == 0) { for (int i = 0; i < shape.Length; i++) set.Add(i); return set; }
        foreach (int a in axes)
        {
            int ax = a < 0 ? a + shape.Length : a;
            if (ax < 0 || ax >= shape.Length)
                throw new ArgumentException($"{op}: axis {a} out of range for shape {Shape.Format(shape)}");
            if (!set.Add(ax)) throw new ArgumentException($"{op}: axis {a} given twice for shape {Shape.Format(shape)}");
        }
        return set;
    }

    static int Prod(int[] s, int from, int to)
    {
        long p = 1;
        for (int i = from; i < to; i++) p *= s[i];
        return (int)p;
    }
}
