using Mdm.Model;
using Mdm.Model.Config;
using Mdm.Kernels.Reference;

namespace Mdm.Tests.Model;

/// <summary>
/// A float64 NestedUNet / UNet forward written from ml-mdm's description (mdm-reference §1–2) on the Ref.* loops, sharing
/// no code with the engine: it walks the config itself, reads weights by their ml-mdm names, lays attention heads out
/// by index arithmetic (no reshape/permute/split), and keeps the skip list as ml-mdm does. Images are NCHW double arrays.
/// </summary>
public sealed class ReferenceMdm(ModelConfig config, Func<string, double[]> weight, Func<string, int[]> shape)
{
    const int Heads = 8;

    /// <summary>Text conditioning inputs: raw tokens [B, S, textDim], mask [B, S] (null = none).</summary>
    public sealed record Text(double[] Tokens, int Length, double[]? Mask);

    sealed record Cond(double[]? Emb, double[]? Tokens, int S, int Width, double[]? Mask);

    /// <summary>v-predictions for every stream (high → low); <paramref name="streams"/>[r] is [B_r, C, R_r, R_r].</summary>
    public double[][] Forward(double[][] streams, int[] batches, int[] t, Text? text, int[]? labels)
    {
        var res = config.Resolutions;
        int bl = batches[^1];
        var cond = Conditioning(config.Nested is null ? "" : InnerPrefix(), text, labels, bl);
        var outs = new List<double[]>();
        if (config.Nested is { } n) NestedLevel(n, "", streams, batches, 0, res, null, t, cond, outs);
        else outs.Add(UNetLevel(config.Unet!, "", streams[0], batches[0], res[0], null, t, cond, innermost: true, normalise: false, out _));
        return outs.ToArray();
    }

    string InnerPrefix()
    {
        string p = "";
        for (var n = config.Nested; n is not null; n = n.InnerNested) p += "inner_unet.";
        return p;
    }

    Cond Conditioning(string p, Text? text, int[]? labels, int b)
    {
        var inner = config.Innermost;
        double[]? emb = null, tok = null, crossMask = null;
        int s = 0, width = 0;
        if (text is not null)
        {
            s = text.Length;
            width = inner.ConditioningFeatureDim;
            tok = text.Tokens;
            if (inner.ConditioningFeatureProjDim > 0)
            {
                tok = Ref.Linear(tok, weight(p + "lm_proj.weight"), inner.ConditioningFeatureProjDim, width, weight(p + "lm_proj.bias"), out _);
                width = inner.ConditioningFeatureProjDim;
            }
            var pooled = new double[b * width];
            for (int i = 0; i < b; i++)
            {
                double total = 0;
                for (int j = 0; j < s; j++) total += text.Mask?[i * s + j] ?? 1;
                for (int j = 0; j < s; j++)
                    for (int d = 0; d < width; d++)
                        pooled[i * width + d] += (text.Mask?[i * s + j] ?? 1) * tok[(i * s + j) * width + d] / total;
            }
            emb = Ref.Linear(pooled, weight(p + "cond_emb.weight"), inner.Temporal, width, null, out _);
            crossMask = inner.MaskedCrossAttention ? text.Mask : null;
        }
        if (labels is not null)
        {
            int k = inner.NumClasses + 1, tdim = inner.Temporal;
            var w = weight(p + "class_emb.weight");   // [T, K]
            var e = new double[b * tdim];
            for (int i = 0; i < b; i++)
            {
                int col = labels[i] == Mdm.Model.Conditioning.NullClass ? inner.NumClasses : labels[i];
                for (int o = 0; o < tdim; o++) e[i * tdim + o] = w[o * k + col];
            }
            emb = emb is null ? e : Add(emb, e);
        }
        return new Cond(emb, tok, s, width, crossMask);
    }

    void NestedLevel(NestedUNetConfig n, string p, double[][] streams, int[] batches, int index, IReadOnlyList<int> res,
        double[]? features, int[] t, Cond cond, List<double[]> outs)
    {
        var o = n.Outer;
        int bh = batches[index], bl = batches[index + 1], size = res[index];
        var tb = t.Take(bh).ToArray();
        var temb = TimeEmbedding(o, p, tb, cond.Emb, bh);
        var x = streams[index];
        if (!n.SkipNormalization) x = StdNormalise(x, bh);
        int c0 = o.ResolutionChannels[0];
        x = Conv(p + "conv_in", x, [bh, config.ImageChannels, size, size], 1, out var xs);
        if (features is not null) x = Add(x, features);
        var skips = new List<(double[] V, int[] S)> { (x, xs) };
        (x, xs) = Down(o, p, x, xs, temb, cond, bh, skips);

        double[]? toInner = null;
        if (!n.SkipInnerUnetInput)
        {
            toInner = Conv(p + "in_adapter", x, xs, 1, out var ins);
            if (bh < bl) toInner = [.. toInner, .. new double[(bl - bh) * ins[1] * ins[2] * ins[3]]];
        }
        double[] innerFeatures;
        int innerC, innerSize = res[index + 1];
        var lowOuts = new List<double[]>();
        if (n.InnerNested is { } nn)
        {
            NestedLevel(nn, p + "inner_unet.", streams, batches, index + 1, res, toInner, t, cond, lowOuts);
            innerFeatures = lastFeatures!;
            innerC = nn.Outer.ResolutionChannels[0];
        }
        else
        {
            lowOuts.Add(UNetLevel(n.InnerUnet!, p + "inner_unet.", streams[index + 1], bl, innerSize, toInner, t, cond, innermost: true, normalise: false, out innerFeatures));
            innerC = n.InnerUnet!.ResolutionChannels[0];
        }
        var back = Conv(p + "out_adapter", innerFeatures, [bl, innerC, innerSize, innerSize], 1, out _);
        x = Add(x, back.Take(x.Length).ToArray());
        (x, xs) = Up(o, p, x, xs, temb, cond, bh, skips);
        var outHi = Output(p, x, xs, o.Groups);
        lastFeatures = x;
        outs.Add(outHi);
        outs.AddRange(lowOuts);
    }

    double[]? lastFeatures;

    double[] UNetLevel(UNetConfig c, string p, double[] xt, int b, int size, double[]? features, int[] t, Cond cond,
        bool innermost, bool normalise, out double[] finalFeatures)
    {
        var temb = TimeEmbedding(c, p, t.Take(b).ToArray(), cond.Emb, b);
        var x = Conv(p + "conv_in", normalise ? StdNormalise(xt, b) : xt, [b, config.ImageChannels, size, size], 1, out var xs);
        if (features is not null) x = Add(x, features);
        var skips = new List<(double[] V, int[] S)> { (x, xs) };
        (x, xs) = Down(c, p, x, xs, temb, cond, b, skips);
        if (innermost && c.SkipMidBlocks != true)
        {
            (x, xs) = ResNet(p + "mid_blocks.0.resnets.0", x, xs, xs[1], temb, c.Groups);
            x = Attention(p + "mid_blocks.0.attn.0", x, xs, cond, c.AttentionGroups, cond.Tokens is not null && cond.Width > 0, c.UseAttentionFfn);
            (x, xs) = ResNet(p + "mid_blocks.1.resnets.0", x, xs, xs[1], temb, c.Groups);
        }
        (x, xs) = Up(c, p, x, xs, temb, cond, b, skips);
        finalFeatures = x;
        return Output(p, x, xs, c.Groups);
    }

    double[] Output(string p, double[] x, int[] xs, int groups)
    {
        var h = Ref.GroupNorm(x, xs, groups, weight(p + "norm_out.weight"), weight(p + "norm_out.bias"), null, null, true, 1e-5, out _, out _, out _);
        return Conv(p + "conv_out", h, xs, 1, out _);
    }

    (double[], int[]) Down(UNetConfig c, string p, double[] x, int[] xs, double[] temb, Cond cond, int b, List<(double[] V, int[] S)> skips)
    {
        for (int i = 0; i < c.Levels; i++)
        {
            int ch = c.ResolutionChannels[i], layers = c.AttentionLayersAt(i);
            for (int j = 0; j < c.ResnetsAt(i); j++)
            {
                (x, xs) = ResNet($"{p}down_blocks.{i}.resnets.{j}", x, xs, ch, temb, c.Groups);
                for (int k = 0; k < layers; k++)
                    x = Attention($"{p}down_blocks.{i}.attn.{j * layers + k}", x, xs, CondFor(cond, b), c.AttentionGroups, cond.Tokens is not null, c.UseAttentionFfn);
                skips.Add((x, xs));
            }
            if (i != c.Levels - 1)
            {
                x = Conv($"{p}down_blocks.{i}.resample", x, xs, 2, out xs);
                skips.Add((x, xs));
            }
        }
        return (x, xs);
    }

    (double[], int[]) Up(UNetConfig c, string p, double[] x, int[] xs, double[] temb, Cond cond, int b, List<(double[] V, int[] S)> skips)
    {
        for (int u = 0; u < c.Levels; u++)
        {
            int i = c.Levels - 1 - u, ch = c.ResolutionChannels[i], layers = c.AttentionLayersAt(i);
            for (int j = 0; j <= c.ResnetsAt(i); j++)
            {
                var (sv, ss) = skips[^1];
                skips.RemoveAt(skips.Count - 1);
                x = ConcatChannels(x, xs, sv, ss, out xs);
                (x, xs) = ResNet($"{p}up_blocks.{u}.resnets.{j}", x, xs, ch, temb, c.Groups);
                for (int k = 0; k < layers; k++)
                    x = Attention($"{p}up_blocks.{u}.attn.{j * layers + k}", x, xs, CondFor(cond, b), c.AttentionGroups, cond.Tokens is not null, c.UseAttentionFfn);
            }
            if (i != 0)
            {
                x = Ref.UpsampleNearest2x(x, xs);
                xs = [xs[0], xs[1], xs[2] * 2, xs[3] * 2];
                x = Conv($"{p}up_blocks.{u}.resample", x, xs, 1, out xs);
            }
        }
        return (x, xs);
    }

    static Cond CondFor(Cond c, int b) => c.Tokens is null ? c : c with
    {
        Tokens = c.Tokens.Take(b * c.S * c.Width).ToArray(),
        Mask = c.Mask?.Take(b * c.S).ToArray(),
    };

    double[] TimeEmbedding(UNetConfig c, string p, int[] t, double[]? condEmb, int b)
    {
        int tdim = c.Temporal;
        var temb = Mlp(p + "temb_layer1", p + "temb_layer2", t.Select(v => (double)v).ToArray(), tdim);
        if (condEmb is not null) temb = Add(temb, condEmb.Take(b * tdim).ToArray());
        double[]? micro = null;
        foreach (var (key, def) in c.MicroConditions("ref"))
        {
            var v = Enumerable.Repeat(key == "scale" ? def : def * 1000.0, b).ToArray();   // no values given: the defaults
            var e = Mlp($"{p}cond_layers.{key}.0", $"{p}cond_layers.{key}.1", v, tdim);
            micro = micro is null ? e : Add(micro, e);
        }
        return micro is null ? temb : Add(temb, micro);
    }

    double[] Mlp(string first, string second, double[] values, int tdim)
    {
        int half = tdim / 8, width = tdim / 4, b = values.Length;
        var raw = new double[b * width];
        for (int i = 0; i < b; i++)
            for (int k = 0; k < half; k++)
            {
                double f = Math.Exp(-Math.Log(10000) * k / half);
                raw[i * width + k] = Math.Sin(values[i] * f);
                raw[i * width + half + k] = Math.Cos(values[i] * f);
            }
        var h = Ref.Map(Ref.Linear(raw, weight(first + ".weight"), tdim, width, weight(first + ".bias"), out _), Ref.Silu);
        return Ref.Linear(h, weight(second + ".weight"), tdim, tdim, weight(second + ".bias"), out _);
    }

    (double[], int[]) ResNet(string p, double[] x, int[] xs, int cout, double[] temb, int groups)
    {
        int b = xs[0], cin = xs[1], tdim = temb.Length / b;
        var h = Ref.GroupNorm(x, xs, groups, weight(p + ".norm1.weight"), weight(p + ".norm1.bias"), null, null, true, 1e-5, out _, out _, out _);
        h = Conv(p + ".conv1", h, xs, 1, out var hs);
        var ab = Ref.Linear(Ref.Map(temb, Ref.Silu), weight(p + ".time_layer.weight"), 2 * cout, tdim, weight(p + ".time_layer.bias"), out _);
        var a = new double[b * cout];
        var sh = new double[b * cout];
        for (int i = 0; i < b; i++)
            for (int c = 0; c < cout; c++) { a[i * cout + c] = ab[i * 2 * cout + c]; sh[i * cout + c] = ab[i * 2 * cout + cout + c]; }
        h = Ref.GroupNorm(h, hs, groups, weight(p + ".norm2.weight"), weight(p + ".norm2.bias"), a, sh, true, 1e-5, out _, out _, out _);
        h = Conv(p + ".conv2", h, hs, 1, out hs);
        var skip = cin == cout ? x : Conv(p + ".conv3", x, xs, 1, out _);
        return (Add(h, skip), hs);
    }

    double[] Attention(string p, double[] x, int[] xs, Cond cond, int groups, bool cross, bool ffn)
    {
        int b = xs[0], c = xs[1], n = xs[2] * xs[3], d = c / Heads;
        var hn = Ref.GroupNorm(x, xs, groups, weight(p + ".norm.weight"), weight(p + ".norm.bias"), null, null, false, 1e-5, out _, out _, out _);
        var qkv = Conv(p + ".qkv", hn, xs, 1, out _);   // [B, 3C, N]
        double[] Head(int part) // [B, heads, N, d] from channel block `part` of qkv
        {
            var r = new double[b * c * n];
            for (int i = 0; i < b; i++)
                for (int h = 0; h < Heads; h++)
                    for (int j = 0; j < n; j++)
                        for (int e = 0; e < d; e++)
                            r[((i * Heads + h) * n + j) * d + e] = qkv[(i * 3 * c + part * c + h * d + e) * n + j];
            return r;
        }
        var q = Head(0);
        var o = Ref.Attention(q, Head(1), Head(2), null, b, Heads, n, n, d, out _, out _);
        if (cross)
        {
            int s = cond.S, w = cond.Width;
            var tn = Ref.LayerNorm(cond.Tokens!, w, weight(p + ".norm_cond.weight"), weight(p + ".norm_cond.bias"), 1e-5, out _, out _, out _);
            var kv = Ref.Linear(tn, weight(p + ".kv_cond.weight"), 2 * c, w, weight(p + ".kv_cond.bias"), out _);   // [B, S, 2C]
            var kc = new double[b * c * s];
            var vc = new double[b * c * s];
            for (int i = 0; i < b; i++)
                for (int h = 0; h < Heads; h++)
                    for (int j = 0; j < s; j++)
                        for (int e = 0; e < d; e++)
                        {
                            kc[((i * Heads + h) * s + j) * d + e] = kv[(i * s + j) * 2 * c + h * d + e];
                            vc[((i * Heads + h) * s + j) * d + e] = kv[(i * s + j) * 2 * c + c + h * d + e];
                        }
            o = Add(o, Ref.Attention(q, kc, vc, cond.Mask, b, Heads, n, s, d, out _, out _));
        }
        var merged = new double[b * c * n];
        for (int i = 0; i < b; i++)
            for (int h = 0; h < Heads; h++)
                for (int j = 0; j < n; j++)
                    for (int e = 0; e < d; e++)
                        merged[(i * c + h * d + e) * n + j] = o[((i * Heads + h) * n + j) * d + e];
        x = Add(x, Conv(p + ".proj_out", merged, xs, 1, out _));
        if (ffn)
        {
            var f = Ref.GroupNorm(x, xs, groups, weight(p + ".ffn.0.weight"), weight(p + ".ffn.0.bias"), null, null, false, 1e-5, out _, out _, out _);
            f = Ref.Map(Conv(p + ".ffn.1", f, xs, 1, out var fs), Ref.Gelu);
            x = Add(x, Conv(p + ".ffn.3", f, fs, 1, out _));
        }
        return x;
    }

    double[] Conv(string name, double[] x, int[] xs, int stride, out int[] ys)
    {
        var ws = shape(name + ".weight");
        int pad = ws[2] / 2;
        return Ref.Conv2d(x, xs, weight(name + ".weight"), ws, weight(name + ".bias"), stride, stride, pad, pad, out ys, out _);
    }

    /// <summary>NCHW channel concatenation: per sample, a's channels then b's.</summary>
    static double[] ConcatChannels(double[] a, int[] sa, double[] b, int[] sb, out int[] shape)
    {
        int n = sa[0], hw = sa[2] * sa[3], ca = sa[1] * hw, cb = sb[1] * hw;
        shape = [n, sa[1] + sb[1], sa[2], sa[3]];
        var y = new double[a.Length + b.Length];
        for (int i = 0; i < n; i++)
        {
            Array.Copy(a, i * ca, y, i * (ca + cb), ca);
            Array.Copy(b, i * cb, y, i * (ca + cb) + ca, cb);
        }
        return y;
    }

    static double[] StdNormalise(double[] x, int b)
    {
        int per = x.Length / b;
        var y = new double[x.Length];
        for (int i = 0; i < b; i++)
        {
            double m = 0, v = 0;
            for (int j = 0; j < per; j++) m += x[i * per + j];
            m /= per;
            for (int j = 0; j < per; j++) v += (x[i * per + j] - m) * (x[i * per + j] - m);
            double sd = Math.Sqrt(v / (per - 1));
            for (int j = 0; j < per; j++) y[i * per + j] = x[i * per + j] / sd;
        }
        return y;
    }

    static double[] Add(double[] a, double[] b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"reference Add: lengths {a.Length} and {b.Length}");
        var r = new double[a.Length];
        for (int i = 0; i < a.Length; i++) r[i] = a[i] + b[i];
        return r;
    }
}
