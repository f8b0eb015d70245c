using Mdm.Kernels;
using Mdm.Model.Config;
using Mdm.Model.Nn;

namespace Mdm.Model;

/// <summary>Builds the network of a <see cref="ModelConfig"/>, or counts its parameters without allocating them.</summary>
public static class ModelFactory
{
    /// <summary>A UNet or NestedUNet on the backend, initialised from Philox (seed, parameter name).</summary>
    public static UNet Create(ModelConfig config, Backend backend, ulong seed = 0)
    {
        config.Validate();
        var model = Build(config, ParameterFactory.On(backend));
        model.Initialize(seed);
        return model;
    }

    /// <summary>Every parameter's name and shape, from the same construction code with nothing allocated.</summary>
    public static ParameterCount CountParameters(ModelConfig config)
    {
        config.Validate();
        return new ParameterCount(Build(config, ParameterFactory.ShapesOnly).ParameterSpecs().ToList());
    }

    static UNet Build(ModelConfig config, ParameterFactory f) =>
        config.Nested is { } n
            ? new NestedUNet(f, n, config.ImageChannels, config.ImageSize, config.TextFeatureDim, config.CrossAttentionDim, config.Frames)
            : new UNet(f, config.Unet!, UNet.Role.Innermost, config.ImageChannels, config.ImageSize, config.TextFeatureDim, config.CrossAttentionDim, config.Frames);
}

/// <summary>The parameters of a model (names are ml-mdm state-dict keys), their total and a per-block breakdown.</summary>
public sealed record ParameterCount(IReadOnlyList<ParameterSpec> Parameters)
{
    public long Total => Parameters.Sum(p => p.Numel);

    /// <summary>
    /// Counts per top-level block in order of appearance: the first name segment (<c>temb_layer1</c>, <c>conv_in</c>,
    /// <c>cond_layers</c>, …), with the index for <c>down_blocks.i</c> / <c>up_blocks.i</c> / <c>mid_blocks.i</c>, and
    /// keeping the <c>inner_unet.</c> prefixes of nested levels.
    /// </summary>
    public IReadOnlyList<(string Block, long Count)> ByBlock
    {
        get
        {
            var order = new List<string>();
            var sums = new Dictionary<string, long>();
            foreach (var p in Parameters)
            {
                var parts = p.Name.Split('.');
                int i = 0;
                while (parts[i] == "inner_unet") i++;
                bool indexed = parts[i] is "down_blocks" or "up_blocks" or "mid_blocks";
                string key = string.Join('.', parts.Take(i + (indexed ? 2 : 1)));
                if (!sums.ContainsKey(key)) { order.Add(key); sums[key] = 0; }
                sums[key] += p.Numel;
            }
            return order.Select(k => (k, sums[k])).ToList();
        }
    }

    /// <summary>A table of the breakdown and the total (millions), as <c>info</c> prints it.</summary>
    public string Format()
    {
        var sb = new System.Text.StringBuilder();
        foreach (var (block, count) in ByBlock) sb.AppendLine($"  {block,-40} {count / 1e6,10:F3} M");
        sb.AppendLine($"  {"total",-40} {Total / 1e6,10:F3} M ({Total:N0})");
        return sb.ToString();
    }
}
