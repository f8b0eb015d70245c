using Mdm.Kernels.Reference;

namespace Mdm.Tests.Video;

/// <summary>
/// Float64 TemporalAttentionBlock (§6.3) from the plain-loop references: x [n = B·F, C, H, W] →
/// x + up_conv(crop(up2x(mlp(attn(rearrange(down_conv(x))))))). Weights by parameter name.
/// </summary>
public static class TemporalBlockReference
{
    public static double[] Forward(double[] x, int n, int c, int height, int width, int frames, int heads, bool rotary, Func<string, double[]> w)
    {
        int b = n / frames, d = c / heads;
        var h = Ref.Conv2d(x, [n, c, height, width], w("down_conv.weight"), [c, c, 3, 3], w("down_conv.bias"), 2, 2, 1, 1, out var hs, out _);
        int hh = hs[2], hw = hs[3], rows = b * hh * hw;
        var seq = Ref.Permute(h, [b, frames, c, hh * hw], [0, 3, 1, 2]);          // [B, hw, F, C]

        var ln = Ref.LayerNorm(seq, c, w("attn.norm.weight"), w("attn.norm.bias"), 1e-5, out _, out _, out _);
        var qkv = Ref.Linear(ln, w("attn.qkv.weight"), 3 * c, c, w("attn.qkv.bias"), out _);
        var t = Ref.Permute(qkv, [rows, frames, 3 * heads, d], [0, 2, 1, 3]);
        var parts = Ref.Split(t, [rows, 3 * heads, frames, d], [heads, heads, heads], 1);
        var (q, k, v) = (parts[0], parts[1], parts[2]);
        if (rotary) { q = InterleavedRotary(q, frames, d); k = InterleavedRotary(k, frames, d); }
        var o = Ref.Attention(q, k, v, null, rows, heads, frames, frames, d, out _, out _);
        var merged = Ref.Permute(o, [rows, heads, frames, d], [0, 2, 1, 3]);
        seq = Add(seq, Ref.Linear(merged, w("attn.proj_out.weight"), c, c, w("attn.proj_out.bias"), out _));

        var ln2 = Ref.LayerNorm(seq, c, w("mlp.main.0.weight"), w("mlp.main.0.bias"), 1e-5, out _, out _, out _);
        var hidden = Ref.Map(Ref.Linear(ln2, w("mlp.main.1.weight"), 4 * c, c, w("mlp.main.1.bias"), out _), Ref.Gelu);
        seq = Add(seq, Ref.Linear(hidden, w("mlp.main.3.weight"), c, 4 * c, w("mlp.main.3.bias"), out _));

        var back = Ref.Permute(seq, [b, hh * hw, frames, c], [0, 2, 3, 1]);        // [B, F, C, hw]
        var up = Ref.UpsampleNearest2x(back, [n, c, hh, hw]);
        var cropped = new double[n * c * height * width];
        for (int i = 0; i < n * c; i++)
            for (int y = 0; y < height; y++)
                for (int xx = 0; xx < width; xx++)
                    cropped[(i * height + y) * width + xx] = up[(i * 2 * hh + y) * 2 * hw + xx];
        var conv = Ref.Conv2d(cropped, [n, c, height, width], w("up_conv.weight"), [c, c, 3, 3], w("up_conv.bias"), 1, 1, 1, 1, out _, out _);
        return Add(x, conv);
    }

    static double[] Add(double[] a, double[] b) => a.Select((v, i) => v + b[i]).ToArray();

    /// <summary>rotary_embedding_torch's encoding of x [rows, N, D] along N: channels (2i, 2i+1) rotate by
    /// n·10000^(−2i/D), (a, b) → (a cos − b sin, b cos + a sin).</summary>
    public static double[] InterleavedRotary(double[] x, int n, int d)
    {
        var y = new double[x.Length];
        for (int r = 0; r < x.Length / (n * d); r++)
            for (int p = 0; p < n; p++)
                for (int i = 0; i < d / 2; i++)
                {
                    double angle = p * Math.Pow(10000, -2.0 * i / d), cos = Math.Cos(angle), sin = Math.Sin(angle);
                    int at = (r * n + p) * d + 2 * i;
                    y[at] = x[at] * cos - x[at + 1] * sin;
                    y[at + 1] = x[at + 1] * cos + x[at] * sin;
                }
        return y;
    }
}
