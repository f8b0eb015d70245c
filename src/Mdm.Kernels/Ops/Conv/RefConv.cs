namespace Mdm.Kernels.Reference;

/// <summary>
/// Float64 convolutions as PyTorch defines them (torch.nn.functional.conv2d / conv1d: cross-correlation, zero padding):
/// y[n, co, oh, ow] = b[co] + Σ_{ci, kh, kw} x[n, ci, oh·sh − ph + kh, ow·sw − pw + kw] · w[co, ci, kh, kw].
/// Every function walks the same loop nest over (n, co, oh, ow, ci, kh, kw), skips taps that fall in the padding, and
/// also returns Σ|terms| per output element (the error scale for the float32 comparison). The backward passes scatter
/// along that nest, so they share no index algebra with the engine's gather (GPU) or im2col (CPU) forms.
/// </summary>
public static partial class Ref
{
    /// <summary>floor((size + 2·pad − k) / stride) + 1, computed in float64 as PyTorch documents it.</summary>
    public static int ConvOutSize(int size, int k, int stride, int pad) => (int)Math.Floor((size + 2.0 * pad - k) / stride) + 1;

    /// <summary>x [N, Cin, H, W], w [Cout, Cin, KH, KW], b [Cout] or null → y [N, Cout, Ho, Wo].</summary>
    public static double[] Conv2d(double[] x, int[] xs, double[] w, int[] ws, double[]? b, int sh, int sw, int ph, int pw,
        out int[] ys, out double[] absSum)
    {
        int n = xs[0], cin = xs[1], h = xs[2], wd = xs[3], cout = ws[0], kh = ws[2], kw = ws[3];
        int ho = ConvOutSize(h, kh, sh, ph), wo = ConvOutSize(wd, kw, sw, pw);
        ys = [n, cout, ho, wo];
        var y = new double[n * cout * ho * wo];
        absSum = new double[y.Length];
        for (int s = 0; s < n; s++)
            for (int co = 0; co < cout; co++)
                for (int oh = 0; oh < ho; oh++)
                    for (int ow = 0; ow < wo; ow++)
                    {
                        int o = ((s * cout + co) * ho + oh) * wo + ow;
                        double acc = b is null ? 0 : b[co], abs = b is null ? 0 : Math.Abs(b[co]);
                        for (int ci = 0; ci < cin; ci++)
                            for (int i = 0; i < kh; i++)
                                for (int j = 0; j < kw; j++)
                                {
                                    int ih = oh * sh - ph + i, iw = ow * sw - pw + j;
                                    if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                                    double t = x[((s * cin + ci) * h + ih) * wd + iw] * w[((co * cin + ci) * kh + i) * kw + j];
                                    acc += t; abs += Math.Abs(t);
                                }
                        y[o] = acc; absSum[o] = abs;
                    }
        return y;
    }

    /// <summary>dx [N, Cin, H, W] from dy [N, Cout, Ho, Wo]: each dy element scatters dy·w back to the x taps it read.</summary>
    public static double[] Conv2dBackwardInput(double[] dy, double[] w, int[] ws, int[] xs, int sh, int sw, int ph, int pw, out double[] absSum)
    {
        var dx = new double[xs[0] * xs[1] * xs[2] * xs[3]];
        var abs = new double[dx.Length];
        ForEachTap(xs, ws, sh, sw, ph, pw, (xi, wi, yi) =>
        {
            double t = dy[yi] * w[wi];
            dx[xi] += t; abs[xi] += Math.Abs(t);
        });
        absSum = abs;
        return dx;
    }

    /// <summary>dw [Cout, Cin, KH, KW] = Σ over samples and output positions of dy · (the x tap that met w).</summary>
    public static double[] Conv2dBackwardWeight(double[] x, int[] xs, double[] dy, int[] ws, int sh, int sw, int ph, int pw, out double[] absSum)
    {
        var dw = new double[ws[0] * ws[1] * ws[2] * ws[3]];
        var abs = new double[dw.Length];
        ForEachTap(xs, ws, sh, sw, ph, pw, (xi, wi, yi) =>
        {
            double t = dy[yi] * x[xi];
            dw[wi] += t; abs[wi] += Math.Abs(t);
        });
        absSum = abs;
        return dw;
    }

    /// <summary>Every (x index, w index, y index) triple where an output position reads an input tap inside the image.</summary>
    static void ForEachTap(int[] xs, int[] ws, int sh, int sw, int ph, int pw, Action<int, int, int> tap)
    {
        int n = xs[0], cin = xs[1], h = xs[2], wd = xs[3], cout = ws[0], kh = ws[2], kw = ws[3];
        int ho = ConvOutSize(h, kh, sh, ph), wo = ConvOutSize(wd, kw, sw, pw);
        for (int s = 0; s < n; s++)
            for (int co = 0; co < cout; co++)
                for (int oh = 0; oh < ho; oh++)
                    for (int ow = 0; ow < wo; ow++)
                        for (int ci = 0; ci < cin; ci++)
                            for (int i = 0; i < kh; i++)
                                for (int j = 0; j < kw; j++)
                                {
                                    int ih = oh * sh - ph + i, iw = ow * sw - pw + j;
                                    if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                                    tap(((s * cin + ci) * h + ih) * wd + iw, ((co * cin + ci) * kh + i) * kw + j, ((s * cout + co) * ho + oh) * wo + ow);
                                }
    }

    /// <summary>db [C] = Σ over n and the trailing (spatial) positions of dy [N, C, ...].</summary>
    public static double[] ConvBackwardBias(double[] dy, int[] ys, out double[] absSum)
    {
        int n = ys[0], c = ys[1], p = 1;
        for (int d = 2; d < ys.Length; d++) p *= ys[d];
        var db = new double[c];
        absSum = new double[c];
        for (int s = 0; s < n; s++)
            for (int co = 0; co < c; co++)
                for (int q = 0; q < p; q++)
                {
                    double g = dy[(s * c + co) * p + q];
                    db[co] += g; absSum[co] += Math.Abs(g);
                }
        return db;
    }

    /// <summary>x [N, Cin, L], w [Cout, Cin, K], b [Cout] or null → y [N, Cout, Lo]; written out in 1-D, not through Conv2d.</summary>
    public static double[] Conv1d(double[] x, int[] xs, double[] w, int[] ws, double[]? b, int stride, int pad, out int[] ys, out double[] absSum)
    {
        int n = xs[0], cin = xs[1], l = xs[2], cout = ws[0], k = ws[2];
        int lo = ConvOutSize(l, k, stride, pad);
        ys = [n, cout, lo];
        var y = new double[n * cout * lo];
        absSum = new double[y.Length];
        for (int s = 0; s < n; s++)
            for (int co = 0; co < cout; co++)
                for (int o = 0; o < lo; o++)
                {
                    double acc = b is null ? 0 : b[co], abs = b is null ? 0 : Math.Abs(b[co]);
                    for (int ci = 0; ci < cin; ci++)
                        for (int j = 0; j < k; j++)
                        {
                            int i = o * stride - pad + j;
                            if (i < 0 || i >= l) continue;
                            double t = x[(s * cin + ci) * l + i] * w[(co * cin + ci) * k + j];
                            acc += t; abs += Math.Abs(t);
                        }
                    y[(s * cout + co) * lo + o] = acc; absSum[(s * cout + co) * lo + o] = abs;
                }
        return y;
    }

    /// <summary>The 1-D input gradient is the 2-D one with H = KH = 1.</summary>
    public static double[] Conv1dBackwardInput(double[] dy, double[] w, int[] ws, int[] xs, int stride, int pad, out double[] absSum) =>
        Conv2dBackwardInput(dy, w, [ws[0], ws[1], 1, ws[2]], [xs[0], xs[1], 1, xs[2]], 1, stride, 0, pad, out absSum);

    /// <summary>The 1-D weight gradient is the 2-D one with H = KH = 1.</summary>
    public static double[] Conv1dBackwardWeight(double[] x, int[] xs, double[] dy, int[] ws, int stride, int pad, out double[] absSum) =>
        Conv2dBackwardWeight(x, [xs[0], xs[1], 1, xs[2]], dy, [ws[0], ws[1], 1, ws[2]], 1, stride, 0, pad, out absSum);
}
