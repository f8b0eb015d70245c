using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model.Nn;

/// <summary>
/// y = x / std(x) per sample, std unbiased over all axes but the first (torch: <c>x / x.std((1, 2, 3), keepdim=True)</c>),
/// the input normalisation of a NestedUNet level. A custom op built from existing kernels, so it runs on every backend:
/// the forward takes the biased rstd of GroupNorm(groups 1, eps 0) and rescales it by √((n−1)/n). With inv = 1/std,
/// m the mean and s = Σ g·x per sample, the backward is dx = g·inv − (x − m)·s·inv³/(n − 1).
/// A constant sample (std 0) gives inf/NaN, as in torch.
/// </summary>
public static class StdNormalize
{
    public static OpDefinition<NoAttributes> Op { get; } = OpDefinition.Register(new OpDefinition<NoAttributes>("std_normalize", Forward, Backward)
    {
        Reference = Reference,
        CheckShapes = [[2, 3, 5, 4]],
        BenchShapes = [[16, 3, 64, 64]],
    });

    public static Variable Apply(Variable x) => Op.Apply(default, x);

    static (Tensor, Tensor[]) Forward(Tensor[] inputs, NoAttributes attributes)
    {
        var x = inputs[0];
        if (x.Rank < 2 || x.Numel / Math.Max(1, x.Dim(0)) < 2)
            throw new ArgumentException($"std_normalize: x {x.ShapeString} needs a batch axis and at least 2 values per sample");
        int n = x.Dim(0);
        long per = x.Numel / n;
        var flat = x.Reshape(n, 1, (int)per);
        using var ones = x.Backend.Full(1f, 1);
        using var zeros = x.Backend.Zeros(1);
        var (y0, mean, rstd) = Ops.GroupNorm(flat, 1, ones, zeros, eps: 0f);
        y0.Dispose();
        var inv = Ops.Scale(rstd, (float)Math.Sqrt((per - 1.0) / per));
        rstd.Dispose();
        var y = Ops.Mul(x, inv.Reshape(BroadcastShape(x)));
        return (y, [mean, inv]);
    }

    static Tensor?[] Backward(OpContext<NoAttributes> ctx, Tensor g)
    {
        var x = ctx.Input(0);
        var shape = BroadcastShape(x);
        var (mean, inv) = (ctx.Saved[0].Reshape(shape), ctx.Saved[1].Reshape(shape));
        long per = x.Numel / x.Dim(0);
        var axes = Enumerable.Range(1, x.Rank - 1).ToArray();
        using var gx = Ops.Mul(g, x);
        using var s = Ops.Sum(gx, axes, keepDims: true);
        using var inv2 = Ops.Mul(inv, inv);
        using var inv3 = Ops.Mul(inv2, inv);
        using var coef = Ops.Mul(s, inv3);
        Ops.Scale(coef, (float)(1.0 / (per - 1)), coef);
        using var centred = Ops.Sub(x, mean);
        using var correction = Ops.Mul(centred, coef);
        using var direct = Ops.Mul(g, inv);
        return [Ops.Sub(direct, correction)];
    }

    static int[] BroadcastShape(Tensor x)
    {
        var s = new int[x.Rank];
        Array.Fill(s, 1);
        s[0] = x.Dim(0);
        return s;
    }

    /// <summary>Float64 reference: per sample, x / √(Σ(x − m)²/(n − 1)).</summary>
    static double[] Reference(double[][] inputs, int[][] shapes, NoAttributes attributes)
    {
        var x = inputs[0];
        int n = shapes[0][0], per = x.Length / n;
        var y = new double[x.Length];
        for (int b = 0; b < n; b++)
        {
            double m = 0, v = 0;
            for (int i = 0; i < per; i++) m += x[b * per + i];
            m /= per;
            for (int i = 0; i < per; i++) v += (x[b * per + i] - m) * (x[b * per + i] - m);
            double sd = Math.Sqrt(v / (per - 1));
            for (int i = 0; i < per; i++) y[b * per + i] = x[b * per + i] / sd;
        }
        return y;
    }
}
