namespace Mdm.Kernels.Reference;

/// <summary>
/// Float64 reference ops: plain loops a reader can check by eye. No shared code with the backends: indices are
/// computed from scratch here, so a bug in the engine's broadcast plan or reduction cannot hide in both.
/// </summary>
public static partial class Ref
{
    public static long Numel(int[] s) { long n = 1; foreach (var d in s) n *= d; return n; }

    /// <summary>Multi-index of flat position i in a row-major shape.</summary>
    public static int[] Unflatten(long i, int[] shape)
    {
        var idx = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = (int)(i % shape[d]); i /= shape[d]; }
        return idx;
    }

    public static long Flatten(int[] idx, int[] shape)
    {
        long f = 0;
        for (int d = 0; d < shape.Length; d++) f = f * shape[d] + idx[d];
        return f;
    }

    /// <summary>NumPy broadcast result shape.</summary>
    public static int[] BroadcastShape(int[] a, int[] b)
    {
        int r = Math.Max(a.Length, b.Length);
        var o = new int[r];
        for (int i = 0; i < r; i++)
        {
            int da = i - (r - a.Length) >= 0 ? a[i - (r - a.Length)] : 1;
            int db = i - (r - b.Length) >= 0 ? b[i - (r - b.Length)] : 1;
            o[i] = Math.Max(da, db);
        }
        return o;
    }

    /// <summary>Flat index into src (shape s) for output multi-index idx (right-aligned; size-1 axes read index 0).</summary>
    public static long BroadcastIndex(int[] idx, int[] s)
    {
        int off = idx.Length - s.Length;
        long f = 0;
        for (int d = 0; d < s.Length; d++) f = f * s[d] + (s[d] == 1 ? 0 : idx[d + off]);
        return f;
    }

    public static double[] Binary(double[] a, int[] sa, double[] b, int[] sb, Func<double, double, double> op, out int[] outShape)
    {
        outShape = BroadcastShape(sa, sb);
        var y = new double[Numel(outShape)];
        for (long i = 0; i < y.Length; i++)
        {
            var idx = Unflatten(i, outShape);
            y[i] = op(a[BroadcastIndex(idx, sa)], b[BroadcastIndex(idx, sb)]);
        }
        return y;
    }

    /// <summary>Sum of g over the positions that broadcast to each element of <paramref name="target"/>.</summary>
    public static double[] SumTo(double[] g, int[] gShape, int[] target)
    {
        var r = new double[Numel(target)];
        for (long i = 0; i < g.Length; i++) r[BroadcastIndex(Unflatten(i, gShape), target)] += g[i];
        return r;
    }

    public static double Sigmoid(double x) => 1.0 / (1.0 + Math.Exp(-x));
    public static double Silu(double x) => x * Sigmoid(x);
    public static double SiluGrad(double x) { double s = Sigmoid(x); return s * (1 + x * (1 - s)); }

    public static double[] Map(double[] x, Func<double, double> f) => Array.ConvertAll(x, v => f(v));

    /// <summary>Sum over the given axes (keepdims shape returned); also Σ|x| per output, the scale for the error budget.</summary>
    public static double[] Sum(double[] x, int[] shape, int[] axes, out int[] keepShape, out double[] absSum)
    {
        var reduce = new bool[shape.Length];
        if (axes.Length == 0) Array.Fill(reduce, true);
        foreach (var a in axes) reduce[a < 0 ? a + shape.Length : a] = true;
        keepShape = shape.Select((d, i) => reduce[i] ? 1 : d).ToArray();
        var y = new double[Numel(keepShape)];
        absSum = new double[y.Length];
        for (long i = 0; i < x.Length; i++)
        {
            var idx = Unflatten(i, shape);
            for (int d = 0; d < idx.Length; d++) if (reduce[d]) idx[d] = 0;
            long o = Flatten(idx, keepShape);
            y[o] += x[i];
            absSum[o] += Math.Abs(x[i]);
        }
        return y;
    }
}
