namespace Mdm.Kernels.Reference;

public static partial class Ref
{
    /// <summary>The fused diffusion loss term in float64: e = a·p + k·x − t per row (coef rows (a, k, w)),
    /// L_r = mean_j e², loss = Σ_r w_r·L_r. Returns the loss and L.</summary>
    public static (double Loss, double[] PerSample) DiffusionLoss(double[] p, double[] x, double[] t, double[] coef)
    {
        int rows = coef.Length / 3, rowLen = p.Length / Math.Max(rows, 1);
        var perSample = new double[rows];
        double loss = 0;
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int j = 0; j < rowLen; j++)
            {
                int i = r * rowLen + j;
                double e = coef[3 * r] * p[i] + coef[3 * r + 1] * x[i] - t[i];
                s += e * e;
            }
            perSample[r] = s / rowLen;
            loss += coef[3 * r + 2] * perSample[r];
        }
        return (loss, perSample);
    }

    /// <summary>Gradients of g·<see cref="DiffusionLoss"/> with respect to p, x, t and coef.</summary>
    public static (double[] Dp, double[] Dx, double[] Dt, double[] Dcoef) DiffusionLossBackward(double[] p, double[] x, double[] t, double[] coef, double g)
    {
        int rows = coef.Length / 3, rowLen = p.Length / Math.Max(rows, 1);
        double[] dp = new double[p.Length], dx = new double[p.Length], dt = new double[p.Length], dcoef = new double[coef.Length];
        for (int r = 0; r < rows; r++)
        {
            double a = coef[3 * r], k = coef[3 * r + 1], w = coef[3 * r + 2], s = 2 * w * g / rowLen;
            for (int j = 0; j < rowLen; j++)
            {
                int i = r * rowLen + j;
                double e = a * p[i] + k * x[i] - t[i];
                dp[i] = s * a * e;
                dx[i] = s * k * e;
                dt[i] = -s * e;
                dcoef[3 * r] += s * e * p[i];
                dcoef[3 * r + 1] += s * e * x[i];
                dcoef[3 * r + 2] += g * e * e / rowLen;
            }
        }
        return (dp, dx, dt, dcoef);
    }
}
