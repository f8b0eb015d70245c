using Mdm.Tests.Reference;

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
        if (rotary) { q = Ref.Rotary(q, frames, d, 10000, 0, false); k = Ref.Rotary(k, frames, d, 10000, 0, false); }
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
}
