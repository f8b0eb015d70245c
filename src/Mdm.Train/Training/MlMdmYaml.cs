using System.Text.Json;
using System.Text.Json.Nodes;
using Mdm.Train.Cli;
using Mdm.Train.Config;
using YamlDotNet.Core;

namespace Mdm.Train.Training;

/// <summary>
/// Converts an ml-mdm model YAML (configs/models/cc12m_*.yaml: unet_config with nested inner_config,
/// diffusion_config.sampler_config, lr, num_training_steps, …) into an Mdm run config. Keys ml-mdm placed at the top
/// level by mistake (mixed_ratio, multi_res_weights) are moved into the diffusion section, where they were meant to be.
/// The result is validated by parsing it as a run config.
/// </summary>
public static class MlMdmYaml
{
    public static int Convert(string yamlPath, string? outPath, TextWriter output)
    {
        if (!File.Exists(yamlPath)) throw new UsageException($"convert: file not found: {yamlPath}");
        var json = ToJson(File.ReadAllText(yamlPath), yamlPath);
        RunConfig.Parse(json, $"{yamlPath} (converted)");   // validates every section
        if (outPath is null) output.WriteLine(json);
        else { File.WriteAllText(outPath, json); output.WriteLine($"wrote {outPath}"); }
        return 0;
    }

    public static string ToJson(string yaml, string source)
    {
        object? tree;
        try { tree = LoadLastKeyWins(yaml); }
        catch (YamlException e) { throw new UsageException($"{source}: not valid YAML: {e.Message}"); }
        if (tree is not Dictionary<string, object?> root)
            throw new UsageException($"{source}: expected a YAML mapping at the top level");
        var unet = Map(root, "unet_config", source) ?? throw new UsageException($"{source}: no unet_config section");
        string modelKind = Scalar(root, "model") ?? Scalar(root, "vision_model") ?? "unet";
        bool textModel = (Scalar(root, "text_model") ?? "").Length > 0;
        int imageSize = Int(root, "sample_image_size") ?? GuessSize(Scalar(root, "name")) ?? 64;

        var model = new JsonObject { ["imageSize"] = imageSize, ["imageChannels"] = 3 };
        if (modelKind.StartsWith("nested", StringComparison.Ordinal)) model["nested"] = Nested(unet, textModel, source);
        else model["unet"] = UNet(unet, innermost: true, textModel, source);

        var diffusion = new JsonObject();
        if (Map(root, "diffusion_config", source) is { } d)
        {
            var s = Map(d, "sampler_config", source) ?? d;
            Copy(s, "num_diffusion_steps", diffusion, "numDiffusionSteps", v => Int(v));
            Copy(s, "schedule_type", diffusion, "scheduleType", v => v);
            Copy(s, "schedule_shifted", diffusion, "scheduleShifted", v => Bool(v));
            Copy(s, "schedule_shifted_power", diffusion, "scheduleShiftedPower", v => Double(v));
            Copy(s, "prediction_type", diffusion, "predictionType", v => v);
            Copy(s, "loss_target_type", diffusion, "lossTargetType", v => v);
            Copy(d, "use_double_loss", diffusion, "useDoubleLoss", v => Bool(v));
            Copy(d, "multi_res_weights", diffusion, "multiResWeights", v => v);
            Copy(d, "mixed_ratio", diffusion, "mixedRatio", v => v);
        }
        // ml-mdm §7: these two sit at the YAML top level, where the trainer never reads them; they belong here.
        if (!diffusion.ContainsKey("multiResWeights")) Copy(root, "multi_res_weights", diffusion, "multiResWeights", v => v);
        if (!diffusion.ContainsKey("mixedRatio")) Copy(root, "mixed_ratio", diffusion, "mixedRatio", v => v);

        var training = new JsonObject();
        Copy(root, "lr", training, "lr", v => Double(v));
        Copy(root, "batch_size", training, "batch", v => Int(v));
        Copy(root, "num_training_steps", training, "steps", v => Int(v));
        Copy(root, "warmup_steps", training, "warmupSteps", v => Int(v));
        Copy(root, "use_adamw", training, "adamW", v => Bool(v));

        var run = new JsonObject { ["model"] = model, ["diffusion"] = diffusion, ["training"] = training };
        return $"// converted from {Path.GetFileName(source)} by `mdm convert`\n" + run.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    static JsonObject Nested(Dictionary<string, object?> node, bool textModel, string source)
    {
        var inner = Map(node, "inner_config", source) ?? throw new UsageException($"{source}: a nested model needs unet_config.inner_config");
        var nested = new JsonObject
        {
            ["outer"] = UNet(node, innermost: false, textModel, source),
            ["skipInnerUnetInput"] = Bool(Scalar(node, "skip_inner_unet_input")) ?? false,
            ["skipNormalization"] = Bool(Scalar(node, "skip_normalization")) ?? false,
        };
        if (Map(inner, "inner_config", source) is not null) nested["innerNested"] = Nested(inner, textModel, source);
        else nested["innerUnet"] = UNet(inner, innermost: true, textModel, source);
        return nested;
    }

    static JsonObject UNet(Dictionary<string, object?> n, bool innermost, bool textModel, string source)
    {
        var u = new JsonObject();
        Copy(n, "resolution_channels", u, "resolutionChannels", v => v);
        Copy(n, "num_resnets_per_resolution", u, "numResnetsPerResolution", v => v);
        Copy(n, "attention_levels", u, "attentionLevels", v => v);
        Copy(n, "num_attention_layers", u, "numAttentionLayers", v => v);
        Copy(n, "temporal_dim", u, "temporalDim", v => Int(v));
        if (innermost)
        {
            int? dim = Int(Scalar(n, "conditioning_feature_dim"));
            // ml-mdm's trainer overwrites -1 with the language model's width (flan-t5-xl: 2048).
            if (dim is null or <= 0 && textModel) dim = 2048;
            if (dim is > 0) u["conditioningFeatureDim"] = dim;
            Copy(n, "conditioning_feature_proj_dim", u, "conditioningFeatureProjDim", v => Int(v));
            Copy(n, "masked_cross_attention", u, "maskedCrossAttention", v => Bool(v));
        }
        Copy(n, "micro_conditioning", u, "microConditioning", v => v);
        if (Map(n, "resnet_config", source) is { } r)
        {
            Copy(r, "num_groups_norm", u, "groups", v => Int(v));
            Copy(r, "use_attention_ffn", u, "useAttentionFfn", v => Bool(v));
        }
        if (!innermost) Copy(n, "skip_mid_blocks", u, "skipMidBlocks", v => Bool(v));
        return u;
    }

    // ---- small YAML helpers --------------------------------------------------------------------------------------
    /// <summary>
    /// Loads YAML into dictionaries, lists and strings. Duplicate keys keep the last value, as PyYAML does — the
    /// ml-mdm files repeat keys (batch_size, diffusion_config, …) and rely on that.
    /// </summary>
    static object? LoadLastKeyWins(string yaml)
    {
        var parser = new Parser(new StringReader(yaml));
        parser.Consume<YamlDotNet.Core.Events.StreamStart>();
        if (parser.Accept<YamlDotNet.Core.Events.StreamEnd>(out _)) return null;
        parser.Consume<YamlDotNet.Core.Events.DocumentStart>();
        var value = ReadNode(parser);
        return value;
    }

    static object? ReadNode(IParser parser)
    {
        if (parser.TryConsume<YamlDotNet.Core.Events.Scalar>(out var scalar)) return scalar.Value;
        if (parser.TryConsume<YamlDotNet.Core.Events.SequenceStart>(out _))
        {
            var list = new List<object?>();
            while (!parser.TryConsume<YamlDotNet.Core.Events.SequenceEnd>(out _)) list.Add(ReadNode(parser));
            return list;
        }
        if (parser.TryConsume<YamlDotNet.Core.Events.MappingStart>(out _))
        {
            var map = new Dictionary<string, object?>(StringComparer.Ordinal);
            while (!parser.TryConsume<YamlDotNet.Core.Events.MappingEnd>(out _))
            {
                var key = ReadNode(parser) as string ?? throw new YamlException("only scalar mapping keys are supported");
                map[key] = ReadNode(parser);
            }
            return map;
        }
        if (parser.TryConsume<YamlDotNet.Core.Events.AnchorAlias>(out _)) throw new YamlException("YAML aliases are not supported");
        throw new YamlException($"unexpected YAML event {parser.Current}");
    }

    static object? Get(Dictionary<string, object?> m, string key) => m.TryGetValue(key, out var v) ? v : null;

    static Dictionary<string, object?>? Map(Dictionary<string, object?> m, string key, string source) => Get(m, key) switch
    {
        null => null,
        Dictionary<string, object?> map => map,
        string s when s is "" or "null" or "None" => null,
        var other => throw new UsageException($"{source}: '{key}' should be a mapping, found {other.GetType().Name}"),
    };

    static string? Scalar(Dictionary<string, object?> m, string key) => Get(m, key) is string s && s is not ("null" or "None") ? s : null;
    static int? Int(Dictionary<string, object?> m, string key) => Int(Scalar(m, key));
    static int? Int(string? s) => int.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int v) ? v : null;
    static double? Double(string? s) => double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v) ? v : null;
    static bool? Bool(string? s) => s?.ToLowerInvariant() switch { "true" or "1" => true, "false" or "0" => false, _ => null };

    static int? GuessSize(string? name)
    {
        var m = name is null ? null : System.Text.RegularExpressions.Regex.Match(name, @"(\d+)x\1");
        return m is { Success: true } ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    /// <summary>Copies a scalar (converted) or a flow sequence of numbers into the JSON object; absent/null keys are skipped.</summary>
    static void Copy<T>(Dictionary<string, object?> from, string key, JsonObject to, string name, Func<string, T?> convert)
    {
        switch (Get(from, key))
        {
            case List<object?> seq:
                var arr = new JsonArray();
                foreach (var item in seq)
                    if (item is string v)
                        arr.Add(Int(v) is { } i ? JsonValue.Create(i) : Double(v) is { } dv ? JsonValue.Create(dv) : JsonValue.Create(v));
                to[name] = arr;
                break;
            case string s when s is not ("null" or "None" or ""):
                var c = convert(s);
                if (c is not null) to[name] = JsonValue.Create(c);
                break;
        }
    }
}
