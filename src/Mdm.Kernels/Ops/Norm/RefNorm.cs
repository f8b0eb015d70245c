namespace Mdm.Kernels.Reference;

/// <summary>Gradients of a normalisation, each with the Σ|terms| scale its error budget follows. Da/Db only with FiLM.</summary>
public sealed class NormGrads
{
    public required double[] Dx, Dgamma, Dbeta, DxScale, DgammaScale, DbetaScale;
    public double[]? Da, Db, DaScale, DbScale;
}

/// <summary>
/// Float64 GroupNorm / fused GroupNorm + FiLM + SiLU / LayerNorm with PyTorch semantics: biased variance over the
/// group (row), eps inside the square root. Plain loops; statistics are recomputed from x here, never taken from the engine.
/// </summary>
public static partial class Ref
{
    /// <summary>
    /// x [N, C, *spatial]; per (n, g): xhat = (x − mean)/sqrt(var + eps); u = xhat·gamma_c + beta_c;
    /// z = u·(1 + a[n,c]) + b[n,c] when a, b are given, else z = u; y = SiLU(z) when <paramref name="silu"/>, else z.
    /// mean and rstd are [N, groups]. yScale bounds the magnitudes that feed each y (for the error budget).
    /// </summary>
    public static double[] GroupNorm(double[] x, int[] shape, int groups, double[] gamma, double[] beta, double[]? a, double[]? b,
        bool silu, double eps, out double[] mean, out double[] rstd, out double[] yScale)
    {
        int n = shape[0], c = shape[1];
        int s = (int)(Numel(shape) / (n * c));
        int cpg = c / groups;
        int m = cpg * s;
        var y = new double[x.Length];
        yScale = new double[x.Length];
        mean = new double[n * groups];
        rstd = new double[n * groups];
        for (int nn = 0; nn < n; nn++)
            for (int g = 0; g < groups; g++)
            {
                double sum = 0;
                for (int ci = 0; ci < cpg; ci++)
                    for (int si = 0; si < s; si++)
                        sum += x[(nn * c + g * cpg + ci) * s + si];
                double mu = sum / m;
                double sq = 0;
                for (int ci = 0; ci < cpg; ci++)
                    for (int si = 0; si < s; si++)
                    {
                        double d = x[(nn * c + g * cpg + ci) * s + si] - mu;
                        sq += d * d;
                    }
                double rs = 1.0 / Math.Sqrt(sq / m + eps);
                mean[nn * groups + g] = mu;
                rstd[nn * groups + g] = rs;
                for (int ci = 0; ci < cpg; ci++)
                    for (int si = 0; si < s; si++)
                    {
                        int ch = g * cpg + ci;
                        int i = (nn * c + ch) * s + si;
                        double xhat = (x[i] - mu) * rs;
                        double u = xhat * gamma[ch] + beta[ch];
                        double fa = a is null ? 1 : 1 + a[nn * c + ch];
                        double z = a is null ? u : u * fa + b![nn * c + ch];
                        y[i] = silu ? Silu(z) : z;
                        // xhat carries an error of about ε·(1 + |xhat|) from the float statistics.
                        yScale[i] = Math.Abs(gamma[ch] * fa) * (1 + Math.Abs(xhat)) + Math.Abs(beta[ch] * fa) + (b is null ? 0 : Math.Abs(b[nn * c + ch]));
                    }
            }
        return y;
    }

    /// <summary>
    /// Backward of <see cref="GroupNorm"/>. With dz = dy·SiLU'(z) (or dy), fa = 1 + a (or 1), u = xhat·gamma + beta:
    /// db[n,c] = Σ_s dz, da[n,c] = Σ_s dz·u, dgamma_c = Σ_{n,s} dz·fa·xhat, dbeta_c = Σ_{n,s} dz·fa, and with dxhat = dz·fa·gamma
    /// dx = rstd·(dxhat − mean_group(dxhat) − xhat·mean_group(dxhat·xhat)).
    /// </summary>
    public static NormGrads GroupNormBackward(double[] dy, double[] x, int[] shape, int groups, double[] gamma, double[] beta,
        double[]? a, double[]? b, bool silu, double eps)
    {
        int n = shape[0], c = shape[1];
        int s = (int)(Numel(shape) / (n * c));
        int cpg = c / groups;
        int m = cpg * s;
        GroupNorm(x, shape, groups, gamma, beta, a, b, silu, eps, out var mean, out var rstd, out _);
        var r = new NormGrads
        {
            Dx = new double[x.Length], DxScale = new double[x.Length],
            Dgamma = new double[c], DgammaScale = new double[c], Dbeta = new double[c], DbetaScale = new double[c],
        };
        if (a is not null)
        {
            r.Da = new double[n * c]; r.DaScale = new double[n * c];
            r.Db = new double[n * c]; r.DbScale = new double[n * c];
        }
        var dxhat = new double[x.Length];
        for (int nn = 0; nn < n; nn++)
            for (int g = 0; g < groups; g++)
            {
                double mu = mean[nn * groups + g], rs = rstd[nn * groups + g];
                double sum1 = 0, sum2 = 0, abs1 = 0, abs2 = 0;
                for (int ci = 0; ci < cpg; ci++)
                    for (int si = 0; si < s; si++)
                    {
                        int ch = g * cpg + ci, nc = nn * c + ch;
                        int i = nc * s + si;
                        double xhat = (x[i] - mu) * rs;
                        double u = xhat * gamma[ch] + beta[ch];
                        double fa = a is null ? 1 : 1 + a[nc];
                        double z = a is null ? u : u * fa + b![nc];
                        double dz = silu ? dy[i] * SiluGrad(z) : dy[i];
                        if (a is not null)
                        {
                            r.Db![nc] += dz; r.DbScale![nc] += Math.Abs(dz);
                            r.Da![nc] += dz * u; r.DaScale![nc] += Math.Abs(dz * u);
                        }
                        r.Dgamma[ch] += dz * fa * xhat; r.DgammaScale[ch] += Math.Abs(dz * fa * xhat);
                        r.Dbeta[ch] += dz * fa; r.DbetaScale[ch] += Math.Abs(dz * fa);
                        dxhat[i] = dz * fa * gamma[ch];
                        sum1 += dxhat[i]; abs1 += Math.Abs(dxhat[i]);
                        sum2 += dxhat[i] * xhat; abs2 += Math.Abs(dxhat[i] * xhat);
                    }
                for (int ci = 0; ci < cpg; ci++)
                    for (int si = 0; si < s; si++)
                    {
                        int i = (nn * c + g * cpg + ci) * s + si;
                        double xhat = (x[i] - mu) * rs;
                        r.Dx[i] = rs * (dxhat[i] - sum1 / m - xhat * sum2 / m);
                        r.DxScale[i] = rs * (Math.Abs(dxhat[i]) + abs1 / m + (1 + Math.Abs(xhat)) * abs2 / m);
                    }
            }
        return r;
    }

    /// <summary>LayerNorm over the last axis of x viewed as [rows, d]; mean and rstd [rows].</summary>
    public static double[] LayerNorm(double[] x, int d, double[] gamma, double[] beta, double eps,
        out double[] mean, out double[] rstd, out double[] yScale)
    {
        int rows = x.Length / d;
        var y = new double[x.Length];
        yScale = new double[x.Length];
        mean = new double[rows];
        rstd = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double sum = 0;
            for (int j = 0; j < d; j++) sum += x[r * d + j];
            double mu = sum / d;
            double sq = 0;
            for (int j = 0; j < d; j++) sq += (x[r * d + j] - mu) * (x[r * d + j] - mu);
            double rs = 1.0 / Math.Sqrt(sq / d + eps);
            mean[r] = mu;
            rstd[r] = rs;
            for (int j = 0; j < d; j++)
            {
                double xhat = (x[r * d + j] - mu) * rs;
                y[r * d + j] = xhat * gamma[j] + beta[j];
                yScale[r * d + j] = Math.Abs(gamma[j]) * (1 + Math.Abs(xhat)) + Math.Abs(beta[j]);
            }
        }
        return y;
    }

    /// <summary>
    /// Backward of <see cref="LayerNorm"/>: dgamma_j = Σ_rows dy·xhat, dbeta_j = Σ_rows dy, and with dxhat = dy·gamma
    /// dx = rstd·(dxhat − mean_row(dxhat) − xhat·mean_row(dxhat·xhat)).
    /// </summary>
    public static NormGrads LayerNormBackward(double[] dy, double[] x, int d, double[] gamma, double eps)
    {
        int rows = x.Length / d;
        LayerNorm(x, d, gamma, new double[d], eps, out var mean, out var rstd, out _);
        var r = new NormGrads
        {
            Dx = new double[x.Length], DxScale = new double[x.Length],
            Dgamma = new double[d], DgammaScale = new double[d], Dbeta = new double[d], DbetaScale = new double[d],
        };
        for (int row = 0; row < rows; row++)
        {
            double mu = mean[row], rs = rstd[row];
            double sum1 = 0, sum2 = 0, abs1 = 0, abs2 = 0;
            for (int j = 0; j < d; j++)
            {
                int i = row * d + j;
                double xhat = (x[i] - mu) * rs;
                double dxhat = dy[i] * gamma[j];
                sum1 += dxhat; abs1 += Math.Abs(dxhat);
                sum2 += dxhat * xhat; abs2 += Math.Abs(dxhat * xhat);
                r.Dgamma[j] += dy[i] * xhat; r.DgammaScale[j] += Math.Abs(dy[i] * xhat);
                r.Dbeta[j] += dy[i]; r.DbetaScale[j] += Math.Abs(dy[i]);
            }
            for (int j = 0; j < d; j++)
            {
                int i = row * d + j;
                double xhat = (x[i] - mu) * rs;
                double dxhat = dy[i] * gamma[j];
                r.Dx[i] = rs * (dxhat - sum1 / d - xhat * sum2 / d);
                r.DxScale[i] = rs * (Math.Abs(dxhat) + abs1 / d + (1 + Math.Abs(xhat)) * abs2 / d);
            }
        }
        return r;
    }
}
