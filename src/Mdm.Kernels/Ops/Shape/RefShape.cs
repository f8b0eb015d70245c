namespace Mdm.Kernels.Reference;

// Shape family references: erf / GELU, FiLM scale-shift, nearest ×2 upsample, average pooling, concat / split,
// permute. Plain float64 loops with explicit index arithmetic.
public static partial class Ref
{
    // ---- erf in float64 -----------------------------------------------------------------------------------------
    /// <summary>
    /// erf(x): for |x| &lt; 2 the everywhere-positive series erf(x) = (2/√π)·e^{−x²}·Σ 2ⁿx^{2n+1}/(1·3·…·(2n+1));
    /// beyond, 1 − erfc(x) from the continued fraction. Both are accurate to ~1e-15.
    /// </summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        if (x < 0) return -Erf(-x);
        if (x < 2) return ErfSeries(x);
        return 1 - ErfcFraction(x);
    }

    /// <summary>erfc(x) = 1 − erf(x), with relative accuracy for large positive x.</summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        if (x < 2) return 1 - Erf(x);
        return ErfcFraction(x);
    }

    static double ErfSeries(double x)
    {
        double term = x, sum = x, x2 = x * x;
        for (int n = 0; n < 1000 && term > 1e-18 * sum; n++)
        {
            term *= 2 * x2 / (2 * n + 3);
            sum += term;
        }
        return 2 / Math.Sqrt(Math.PI) * Math.Exp(-x2) * sum;
    }

    /// <summary>erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))), x ≥ 2, evaluated from the tail.</summary>
    static double ErfcFraction(double x)
    {
        double f = x;
        for (int k = 400; k >= 1; k--) f = x + (k / 2.0) / f;
        return Math.Exp(-x * x) / (Math.Sqrt(Math.PI) * f);
    }

    /// <summary>Φ(x) = ½·erfc(−x/√2).</summary>
    public static double NormalCdf(double x) => 0.5 * Erfc(-x / Math.Sqrt(2));
    public static double Gelu(double x) => x * NormalCdf(x);
    public static double GeluGrad(double x) => NormalCdf(x) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);

    // ---- FiLM scale-shift: y = x·(1 + a) + b, x [N, C, *spatial], a and b [N, C] ----------------------------------
    public static double[] ScaleShift(double[] x, int[] xShape, double[] a, double[] b)
    {
        int n = xShape[0], c = xShape[1];
        long inner = Numel(xShape) / (n * c);
        var y = new double[x.Length];
        for (int ni = 0; ni < n; ni++)
            for (int ci = 0; ci < c; ci++)
                for (long s = 0; s < inner; s++)
                {
                    long i = (ni * c + ci) * inner + s;
                    y[i] = x[i] * (1 + a[ni * c + ci]) + b[ni * c + ci];
                }
        return y;
    }

    /// <summary>dx = dy·(1 + a); da = Σ_s dy·x; db = Σ_s dy; with Σ|dy·x| and Σ|dy| as the error scales of da and db.</summary>
    public static (double[] dx, double[] da, double[] db, double[] daScale, double[] dbScale) ScaleShiftBackward(
        double[] x, int[] xShape, double[] a, double[] dy)
    {
        int n = xShape[0], c = xShape[1];
        long inner = Numel(xShape) / (n * c);
        var dx = new double[x.Length];
        double[] da = new double[n * c], db = new double[n * c], daScale = new double[n * c], dbScale = new double[n * c];
        for (int ni = 0; ni < n; ni++)
            for (int ci = 0; ci < c; ci++)
                for (long s = 0; s < inner; s++)
                {
                    int r = ni * c + ci;
                    long i = r * inner + s;
                    dx[i] = dy[i] * (1 + a[r]);
                    da[r] += dy[i] * x[i];
                    db[r] += dy[i];
                    daScale[r] += Math.Abs(dy[i] * x[i]);
                    dbScale[r] += Math.Abs(dy[i]);
                }
        return (dx, da, db, daScale, dbScale);
    }

    // ---- nearest ×2 upsample (NCHW) ---------------------------------------------------------------------------
    public static double[] UpsampleNearest2x(double[] x, int[] s)
    {
        int n = s[0], c = s[1], h = s[2], w = s[3];
        var y = new double[n * c * 2 * h * 2 * w];
        for (int ni = 0; ni < n; ni++)
            for (int ci = 0; ci < c; ci++)
                for (int i = 0; i < 2 * h; i++)
                    for (int j = 0; j < 2 * w; j++)
                        y[((ni * c + ci) * 2 * h + i) * 2 * w + j] = x[((ni * c + ci) * h + i / 2) * w + j / 2];
        return y;
    }

    /// <summary>dx [N,C,h,w] from dy [N,C,2h,2w]: each dy element added to the input it was copied from. absSum = Σ|dy|.</summary>
    public static double[] UpsampleNearest2xBackward(double[] dy, int[] inShape, out double[] absSum)
    {
        int n = inShape[0], c = inShape[1], h = inShape[2], w = inShape[3];
        var dx = new double[n * c * h * w];
        absSum = new double[dx.Length];
        for (int ni = 0; ni < n; ni++)
            for (int ci = 0; ci < c; ci++)
                for (int i = 0; i < 2 * h; i++)
                    for (int j = 0; j < 2 * w; j++)
                    {
                        double g = dy[((ni * c + ci) * 2 * h + i) * 2 * w + j];
                        int o = ((ni * c + ci) * h + i / 2) * w + j / 2;
                        dx[o] += g;
                        absSum[o] += Math.Abs(g);
                    }
        return dx;
    }

    // ---- average pooling, kernel = stride = k (NCHW) ------------------------------------------------------------
    /// <summary>y[n,c,i,j] = mean over the k×k block at (i·k, j·k); absMean = the mean of |x| over the block.</summary>
    public static double[] AvgPool2d(double[] x, int[] s, int k, out double[] absMean)
    {
        int n = s[0], c = s[1], h = s[2], w = s[3], oh = h / k, ow = w / k;
        var y = new double[n * c * oh * ow];
        absMean = new double[y.Length];
        for (int ni = 0; ni < n; ni++)
            for (int ci = 0; ci < c; ci++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++)
                    {
                        double sum = 0, abs = 0;
                        for (int di = 0; di < k; di++)
                            for (int dj = 0; dj < k; dj++)
                            {
                                double v = x[((ni * c + ci) * h + i * k + di) * w + j * k + dj];
                                sum += v; abs += Math.Abs(v);
                            }
                        int o = ((ni * c + ci) * oh + i) * ow + j;
                        y[o] = sum / (k * k);
                        absMean[o] = abs / (k * k);
                    }
        return y;
    }

    /// <summary>dx [N,C,H,W]: every element of a k×k block gets dy of that block / k².</summary>
    public static double[] AvgPool2dBackward(double[] dy, int[] inShape, int k)
    {
        int n = inShape[0], c = inShape[1], h = inShape[2], w = inShape[3], oh = h / k, ow = w / k;
        var dx = new double[n * c * h * w];
        for (int ni = 0; ni < n; ni++)
            for (int ci = 0; ci < c; ci++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++)
                        for (int di = 0; di < k; di++)
                            for (int dj = 0; dj < k; dj++)
                                dx[((ni * c + ci) * h + i * k + di) * w + j * k + dj] += dy[((ni * c + ci) * oh + i) * ow + j] / (k * k);
        return dx;
    }

    // ---- concat / split -------------------------------------------------------------------------------------
    public static double[] Concat(double[][] xs, int[][] shapes, int axis, out int[] outShape)
    {
        outShape = (int[])shapes[0].Clone();
        outShape[axis] = shapes.Sum(s => s[axis]);
        var y = new double[Numel(outShape)];
        int offset = 0;
        for (int k = 0; k < xs.Length; k++)
        {
            for (long i = 0; i < xs[k].Length; i++)
            {
                var idx = Unflatten(i, shapes[k]);
                idx[axis] += offset;
                y[Flatten(idx, outShape)] = xs[k][i];
            }
            offset += shapes[k][axis];
        }
        return y;
    }

    /// <summary>Pieces of x along the axis with the given sizes (torch.split); also the backward of Concat.</summary>
    public static double[][] Split(double[] x, int[] shape, int[] sizes, int axis)
    {
        var parts = new double[sizes.Length][];
        int offset = 0;
        for (int k = 0; k < sizes.Length; k++)
        {
            var ps = (int[])shape.Clone();
            ps[axis] = sizes[k];
            parts[k] = new double[Numel(ps)];
            for (long i = 0; i < parts[k].Length; i++)
            {
                var idx = Unflatten(i, ps);
                idx[axis] += offset;
                parts[k][i] = x[Flatten(idx, shape)];
            }
            offset += sizes[k];
        }
        return parts;
    }

    // ---- permute ----------------------------------------------------------------------------------------------
    public static int[] PermutedShape(int[] shape, int[] dims) => dims.Select(d => shape[d]).ToArray();

    /// <summary>y[j_0..j_{r-1}] = x[i] with i[dims[k]] = j[k].</summary>
    public static double[] Permute(double[] x, int[] shape, int[] dims)
    {
        var outShape = PermutedShape(shape, dims);
        var y = new double[x.Length];
        for (long j = 0; j < y.Length; j++)
        {
            var jdx = Unflatten(j, outShape);
            var idx = new int[shape.Length];
            for (int k = 0; k < dims.Length; k++) idx[dims[k]] = jdx[k];
            y[j] = x[Flatten(idx, shape)];
        }
        return y;
    }

    /// <summary>Backward of Permute written as a scatter: dx[i] += dy[j] for the i that produced output j.</summary>
    public static double[] PermuteBackward(double[] dy, int[] inShape, int[] dims)
    {
        var outShape = PermutedShape(inShape, dims);
        var dx = new double[dy.Length];
        for (long j = 0; j < dy.Length; j++)
        {
            var jdx = Unflatten(j, outShape);
            var idx = new int[inShape.Length];
            for (int k = 0; k < dims.Length; k++) idx[dims[k]] = jdx[k];
            dx[Flatten(idx, inShape)] += dy[j];
        }
        return dx;
    }
}
