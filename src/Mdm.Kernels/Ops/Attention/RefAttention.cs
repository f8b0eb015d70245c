namespace Mdm.Kernels.Reference;

/// <summary>Float64 multi-head attention and rotary encoding, plain loops over [B,H,N,D] row-major arrays.</summary>
public static partial class Ref
{
    static int At(int b, int h, int i, int d, int H, int N, int D) => ((b * H + h) * N + i) * D + d;

    /// <summary>
    /// Probabilities of query row (b, h, i) over the Nk keys: s_j = Σ_d (q·D^-1/4)(k·D^-1/4), masked keys (mask 0)
    /// left out, softmax over the rest. Returns false (and p all 0, lse = +∞) when every key is masked.
    /// </summary>
    static bool AttentionRow(double[] q, double[] k, double[]? mask, int b, int h, int i, int H, int Nq, int Nk, int D, double[] p, out double lse)
    {
        double c = Math.Pow(D, -0.25);
        double max = double.NegativeInfinity;
        for (int j = 0; j < Nk; j++)
        {
            if (mask is not null && mask[b * Nk + j] == 0) { p[j] = double.NegativeInfinity; continue; }
            double s = 0;
            for (int d = 0; d < D; d++) s += (q[At(b, h, i, d, H, Nq, D)] * c) * (k[At(b, h, j, d, H, Nk, D)] * c);
            p[j] = s;
            max = Math.Max(max, s);
        }
        if (double.IsNegativeInfinity(max)) { Array.Clear(p); lse = double.PositiveInfinity; return false; }
        double sum = 0;
        for (int j = 0; j < Nk; j++) { p[j] = double.IsNegativeInfinity(p[j]) ? 0 : Math.Exp(p[j] - max); sum += p[j]; }
        for (int j = 0; j < Nk; j++) p[j] /= sum;
        lse = max + Math.Log(sum);
        return true;
    }

    /// <summary>
    /// o = softmax(s)·v per query row; lse [B,H,Nq]; oScale = Σ_j p_j·|v_jd| (the error-budget scale of o).
    /// A fully masked row gives o = 0, lse = +∞.
    /// </summary>
    public static double[] Attention(double[] q, double[] k, double[] v, double[]? mask, int B, int H, int Nq, int Nk, int D,
        out double[] lse, out double[] oScale)
    {
        var o = new double[B * H * Nq * D];
        oScale = new double[o.Length];
        lse = new double[B * H * Nq];
        var p = new double[Nk];
        for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
        for (int i = 0; i < Nq; i++)
        {
            AttentionRow(q, k, mask, b, h, i, H, Nq, Nk, D, p, out lse[(b * H + h) * Nq + i]);
            for (int d = 0; d < D; d++)
            for (int j = 0; j < Nk; j++)
            {
                o[At(b, h, i, d, H, Nq, D)] += p[j] * v[At(b, h, j, d, H, Nk, D)];
                oScale[At(b, h, i, d, H, Nq, D)] += p[j] * Math.Abs(v[At(b, h, j, d, H, Nk, D)]);
            }
        }
        return o;
    }

    /// <summary>
    /// Gradients of L = Σ dO·o through the softmax Jacobian: dP_ij = dO_i·v_j, dS_ij = p_ij·(dP_ij − Σ_l p_il·dP_il),
    /// dq_i = D^-1/4·D^-1/4·Σ_j dS_ij·k_j, dk_j = D^-1/4·D^-1/4·Σ_i dS_ij·q_i, dv_j = Σ_i p_ij·dO_i.
    /// The scales are the same sums over absolute values of the terms (with |dP| + |Σ p·dP| in place of the difference).
    /// </summary>
    public static (double[] dq, double[] dk, double[] dv) AttentionBackward(double[] q, double[] k, double[] v, double[]? mask, double[] dO,
        int B, int H, int Nq, int Nk, int D, out (double[] dq, double[] dk, double[] dv) scale)
    {
        double c2 = Math.Pow(D, -0.25) * Math.Pow(D, -0.25);
        var dq = new double[q.Length]; var dk = new double[k.Length]; var dv = new double[v.Length];
        scale = (new double[q.Length], new double[k.Length], new double[v.Length]);
        var p = new double[Nk];
        var dp = new double[Nk];
        for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
        for (int i = 0; i < Nq; i++)
        {
            if (!AttentionRow(q, k, mask, b, h, i, H, Nq, Nk, D, p, out _)) continue;   // fully masked: no gradient
            double pdp = 0;
            for (int j = 0; j < Nk; j++)
            {
                dp[j] = 0;
                for (int d = 0; d < D; d++) dp[j] += dO[At(b, h, i, d, H, Nq, D)] * v[At(b, h, j, d, H, Nk, D)];
                pdp += p[j] * dp[j];
            }
            for (int j = 0; j < Nk; j++)
            {
                double ds = p[j] * (dp[j] - pdp), dsAbs = p[j] * (Math.Abs(dp[j]) + Math.Abs(pdp));
                for (int d = 0; d < D; d++)
                {
                    int qi = At(b, h, i, d, H, Nq, D), kj = At(b, h, j, d, H, Nk, D);
                    dq[qi] += c2 * ds * k[kj];
                    dk[kj] += c2 * ds * q[qi];
                    dv[kj] += p[j] * dO[qi];
                    scale.dq[qi] += c2 * dsAbs * Math.Abs(k[kj]);
                    scale.dk[kj] += c2 * dsAbs * Math.Abs(q[qi]);
                    scale.dv[kj] += p[j] * Math.Abs(dO[qi]);
                }
            }
        }
        return (dq, dk, dv);
    }

    /// <summary>
    /// Rotary encoding of x [rows, N, D] along N, rotate-half pairs (i, i + D/2), θ_i = (offset + n)·theta^(−2i/D);
    /// inverse rotates by −θ_i (the backward, since the rotation is orthogonal).
    /// </summary>
    public static double[] Rotary(double[] x, int N, int D, double theta, int offset, bool inverse)
    {
        var y = new double[x.Length];
        int rows = x.Length / D, half = D / 2;
        for (int r = 0; r < rows; r++)
        {
            int n = r % N;
            for (int i = 0; i < half; i++)
            {
                double angle = (offset + n) * Math.Pow(theta, -2.0 * i / D);
                if (inverse) angle = -angle;
                double x1 = x[r * D + i], x2 = x[r * D + i + half];
                y[r * D + i] = x1 * Math.Cos(angle) - x2 * Math.Sin(angle);
                y[r * D + i + half] = x2 * Math.Cos(angle) + x1 * Math.Sin(angle);
            }
        }
        return y;
    }
}
