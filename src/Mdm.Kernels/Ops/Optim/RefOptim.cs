namespace Mdm.Kernels.Reference;

/// <summary>Float64 references for the losses, the per-sample quantile and the optimiser (torch's formulas, plain loops).</summary>
public static partial class Ref
{
    /// <summary>x, y as [rows, rowLen]: per-row mean of (x − y)², and (as scale for the error budget) the same value,
    /// since every term is non-negative.</summary>
    public static double[] MseRows(double[] x, double[] y, int rows)
    {
        int rowLen = x.Length / rows;
        var r = new double[rows];
        for (int n = 0; n < rows; n++)
        {
            double s = 0;
            for (int j = 0; j < rowLen; j++)
            {
                double d = x[n * rowLen + j] - y[n * rowLen + j];
                s += d * d;
            }
            r[n] = s / rowLen;
        }
        return r;
    }

    /// <summary>Gradient of Σ_n dy[n]·MseRows(x, y)[n] with respect to x: 2(x − y)/rowLen · dy[n].</summary>
    public static double[] MseRowsBackward(double[] x, double[] y, double[] dy)
    {
        int rows = dy.Length, rowLen = x.Length / rows;
        var dx = new double[x.Length];
        for (int n = 0; n < rows; n++)
            for (int j = 0; j < rowLen; j++)
            {
                int i = n * rowLen + j;
                dx[i] = 2 * (x[i] - y[i]) / rowLen * dy[n];
            }
        return dx;
    }

    /// <summary>
    /// torch.quantile(x[n].abs().flatten(), p) per row, 'linear' interpolation: sort, rank = p·(len − 1) (computed in
    /// float32 as torch does for a float32 input), result = v[floor] + (rank − floor)·(v[ceil] − v[floor]);
    /// NaN when the row holds a NaN.
    /// </summary>
    public static double[] QuantileAbs(double[] x, int rows, double p)
    {
        int rowLen = x.Length / rows;
        var q = new double[rows];
        for (int n = 0; n < rows; n++)
        {
            var v = new double[rowLen];
            bool nan = false;
            for (int j = 0; j < rowLen; j++)
            {
                v[j] = Math.Abs(x[n * rowLen + j]);
                if (double.IsNaN(v[j])) nan = true;
            }
            if (nan) { q[n] = double.NaN; continue; }
            Array.Sort(v);
            double rank = (float)p * (float)(rowLen - 1);
            int lo = (int)Math.Floor(rank), hi = (int)Math.Ceiling(rank);
            q[n] = v[lo] + (rank - lo) * (v[hi] - v[lo]);
        }
        return q;
    }

    /// <summary>√(Σ over all tensors of Σ x²).</summary>
    public static double GlobalNorm(IEnumerable<double[]> tensors)
    {
        double s = 0;
        foreach (var t in tensors)
            foreach (var v in t) s += v * v;
        return Math.Sqrt(s);
    }

    /// <summary>
    /// One step of torch.optim.Adam (decoupled false) / AdamW (true) on every tensor, after
    /// clip_grad_norm_(maxNorm) when maxNorm is given: clip = min(1, maxNorm / (‖g‖ + 1e-6)) over all gradients.
    /// p, m, v are updated in place; mAbs accumulates |terms| of m (the error-budget scale of m).
    /// </summary>
    public static void AdamStep(double[][] p, double[][] g, double[][] m, double[][] v, double[][] mAbs,
        double lr, double beta1, double beta2, double eps, double weightDecay, bool decoupled, int step, double? maxNorm)
    {
        double clip = 1;
        if (maxNorm is double mx) clip = Math.Min(1, mx / (GlobalNorm(g) + 1e-6));
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        for (int t = 0; t < p.Length; t++)
            for (int i = 0; i < p[t].Length; i++)
            {
                double gi = g[t][i] * clip;
                if (decoupled) p[t][i] *= 1 - lr * weightDecay;
                else gi += weightDecay * p[t][i];
                m[t][i] = beta1 * m[t][i] + (1 - beta1) * gi;
                mAbs[t][i] = beta1 * mAbs[t][i] + (1 - beta1) * Math.Abs(gi);
                v[t][i] = beta2 * v[t][i] + (1 - beta2) * gi * gi;
                double mHat = m[t][i] / bc1, vHat = v[t][i] / bc2;
                p[t][i] -= lr * mHat / (Math.Sqrt(vHat) + eps);
            }
    }

    /// <summary>ema ← decay·ema + (1 − decay)·param, in place.</summary>
    public static void Ema(double[] ema, double[] param, double decay)
    {
        for (int i = 0; i < ema.Length; i++) ema[i] = decay * ema[i] + (1 - decay) * param[i];
    }
}
