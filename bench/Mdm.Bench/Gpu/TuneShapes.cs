using Mdm.Model.Config;

namespace Mdm.Bench.Gpu;

/// <summary>A GEMM M×N×K (bf16 in, f32 out) or an attention [B·H, N, D] self-attention, with the config that needs it.</summary>
public sealed record TuneShape(string Op, int M, int N, int K, string From)
{
    public string Text => Op == "gemm" ? $"{M}x{N}x{K}" : $"BH{M}xN{N}xD{K}";
}

/// <summary>
/// The shapes the configs run, one per shape class: per UNet level (resolution r, channels c) the linears / 1×1 convs
/// (K = c) and the 3×3 convs lowered to a GEMM (K = 9c), with M = c and N = batch·r² tokens; attention at the
/// attention levels and the mid block, [batch·8 heads, r², c / 8]. GEMMs first (they run on tensor cores today).
/// </summary>
public static class TuneShapes
{
    const int Heads = 8;

    public static List<TuneShape> FromConfigs(IEnumerable<string> configPaths, int batch, int maxTokens, int maxDim)
    {
        var byClass = new Dictionary<string, TuneShape>();
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
                        byClass.TryAdd("gemm:" + Kernels.Gpu.Tuning.ShapeClass.Gemm(k), new TuneShape("gemm", ch, tokens, k, name));
                    bool attention = unet.AttentionLayersAt(level) > 0 || (level == unet.Levels - 1 && unet.SkipMidBlocks != true);
                    if (!attention || c % Heads != 0) continue;
                    int n = Math.Min(r * r, maxTokens), d = Math.Min(c / Heads, maxDim);
                    byClass.TryAdd("attention:" + Kernels.Gpu.Tuning.ShapeClass.Attention(n, d), new TuneShape("attention", batch * Heads, n, d, name));
                }
        }
        return byClass.Values.OrderByDescending(s => s.Op).ThenBy(s => s.K).ThenBy(s => s.N).ToList();
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
