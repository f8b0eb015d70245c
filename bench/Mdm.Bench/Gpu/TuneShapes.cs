using Mdm.Model.Config;

namespace Mdm.Bench.Gpu;

/// <summary>A GEMM M×N×K (bf16 in, f32 out), an attention [B·H, N, D] self-attention, or a convolution (batch B,
/// M channels in and out, N×N images, K×K kernel, stride 1, same padding), with the config that needs it.</summary>
public sealed record TuneShape(string Op, int M, int N, int K, string From, int Batch = 1)
{
    public string Text => Op switch
    {
        "gemm" => $"{M}x{N}x{K}",
        "conv" => $"{Batch}x{M}x{N}x{N}-{K}x{K}",
        "groupnorm" => $"{Batch}x{M}x{N}x{N}-G{K}",
        _ => $"BH{M}xN{N}xD{K}",
    };
}

/// <summary>
/// The shapes the configs run, one per shape class (for GEMMs the one with the most output tiles): per UNet level (resolution r, channels c) the linears / 1×1 convs
/// (K = c) and the 3×3 convs lowered to a GEMM (K = 9c), with M = c and N = batch·r² tokens, and the linears' weight
/// gradients (M = N = c, K = tokens: few output tiles, the split-K case); attention at the
/// attention levels and the mid block, [batch·8 heads, r², c / 8]; the 3×3 convolution of each level (c → c at r²,
/// batch images), after the paper's 16×256×64² target; the GroupNorm + FiLM + SiLU of each level (c channels at r²,
/// 32 groups or fewer), one per row length class. GEMMs first, then convolutions, GroupNorms, attention.
/// </summary>
public static class TuneShapes
{
    const int Heads = 8;

    public static List<TuneShape> FromConfigs(IEnumerable<string> configPaths, int batch, int maxTokens, int maxDim)
    {
        var byClass = new Dictionary<string, TuneShape>();
        var convs = new List<TuneShape>();
        bool quick = maxTokens < 64;
        // The conv target first (quick: a tiny stand-in), so a short budget still measures it.
        AddConv(convs, quick ? new TuneShape("conv", 4, 5, 3, "target", 1) : new TuneShape("conv", 256, 64, 3, "target", 16));
        foreach (var path in configPaths)
        {
            var cfg = ModelConfig.Load(path);
            string name = Path.GetFileNameWithoutExtension(path);
            foreach (var (unet, size) in Unets(cfg))
                for (int level = 0; level < unet.Levels; level++)
                {
                    int r = Math.Max(1, size >> level), c = unet.ResolutionChannels[level];
                    int tokens = Math.Min(batch * r * r, maxTokens), ch = Math.Min(c, maxDim);
                    foreach (int k in new[] { ch, Math.Min(9 * c, 9 * maxDim) })
                        AddGemm(byClass, new TuneShape("gemm", ch, tokens, k, name));
                    // The weight gradient of a linear / 1×1 conv: channels × channels, reduced over the tokens.
                    AddGemm(byClass, new TuneShape("gemm", ch, ch, tokens, name + " wgrad"));
                    // Quick runs (the CPU accelerator, where convolutions are slow) keep to the one stand-in above.
                    if (!quick) AddConv(convs, new TuneShape("conv", ch, r, 3, name, batch * r * r <= maxTokens ? batch : Math.Max(1, maxTokens / (r * r))));
                    int groups = Math.Min(unet.Groups, ch), rg = quick ? Math.Min(r, 8) : r;
                    if (ch % groups == 0)
                        byClass.TryAdd("groupnorm:" + Kernels.Gpu.Tuning.ShapeClass.GroupNorm(ch / groups * rg * rg),
                            new TuneShape("groupnorm", ch, rg, groups, name, batch));
                    bool attention = unet.AttentionLayersAt(level) > 0 || (level == unet.Levels - 1 && unet.SkipMidBlocks != true);
                    if (!attention || c % Heads != 0) continue;
                    int n = Math.Min(r * r, maxTokens), d = Math.Min(c / Heads, maxDim);
                    byClass.TryAdd("attention:" + Kernels.Gpu.Tuning.ShapeClass.Attention(n, d), new TuneShape("attention", batch * Heads, n, d, name));
                }
        }
        var gemms = byClass.Values.Where(s => s.Op == "gemm").OrderBy(s => s.K).ThenBy(s => s.N);
        var groupNorms = byClass.Values.Where(s => s.Op == "groupnorm").OrderBy(s => s.M / s.K * s.N * s.N);
        var attentions = byClass.Values.Where(s => s.Op == "attention").OrderBy(s => s.K).ThenBy(s => s.N);
        return Interleave([.. gemms], convs, [.. groupNorms], [.. attentions]);
    }

    /// <summary>One class of each op in turn: a budget that runs out part-way still leaves every op timed on its first
    /// classes (attention, last in a plain list, would otherwise keep the fallback).</summary>
    static List<TuneShape> Interleave(params List<TuneShape>[] families)
    {
        var all = new List<TuneShape>();
        for (int i = 0; all.Count < families.Sum(f => f.Count); i++)
            foreach (var family in families)
                if (i < family.Count) all.Add(family[i]);
        return all;
    }

    /// <summary>Keeps, per GEMM shape class, the shape with the most output tiles (the first on a tie): a class's
    /// winner then reflects the UNet's large products (the short-K tiles are for many tiles), not a demo's narrow one.</summary>
    static void AddGemm(Dictionary<string, TuneShape> byClass, TuneShape s)
    {
        string key = "gemm:" + GemmClass(s.M, s.N, s.K);
        if (!byClass.TryGetValue(key, out var kept) || GemmTiles(s.M, s.N) > GemmTiles(kept.M, kept.N)) byClass[key] = s;
    }

    /// <summary>The GEMM's shape class: by K, and by its output tiles when they are few.</summary>
    public static string GemmClass(int m, int n, int k) => Kernels.Gpu.Tuning.ShapeClass.Gemm(k, GemmTiles(m, n));

    public static long GemmTiles(int m, int n) => Kernels.Gpu.Tuning.ShapeClass.GemmTiles(m, n);

    /// <summary>Adds a convolution unless an earlier one already covers all three of its shape classes (forward and
    /// input gradient by Cin·K², weight gradient by batch·N²).</summary>
    static void AddConv(List<TuneShape> convs, TuneShape s)
    {
        static (string, string) Classes(TuneShape t) => (
            Kernels.Gpu.Tuning.ShapeClass.Conv(Kernels.Gpu.TensorCore.ConvPass.Forward, t.K, t.M * t.K * t.K),
            Kernels.Gpu.Tuning.ShapeClass.Conv(Kernels.Gpu.TensorCore.ConvPass.Wgrad, t.K, t.Batch * t.N * t.N));
        var (fwd, wgrad) = Classes(s);
        if (convs.Any(c => Classes(c).Item1 == fwd) && convs.Any(c => Classes(c).Item2 == wgrad)) return;
        convs.Add(s);
    }

    /// <summary>Every UNet of the model with the image size it runs at (inner UNets of a nest at the reduced size).</summary>
    static IEnumerable<(UNetConfig Unet, int Size)> Unets(ModelConfig cfg)
    {
        if (cfg.Unet is { } plain) yield return (plain, cfg.ImageSize);
        int size = cfg.ImageSize;
        for (var nest = cfg.Nested; nest is not null; nest = nest.InnerNested)
        {
            yield return (nest.Outer, size);
            size /= nest.NestRatio;
            if (nest.InnerUnet is { } inner) yield return (inner, size);
        }
    }
}
