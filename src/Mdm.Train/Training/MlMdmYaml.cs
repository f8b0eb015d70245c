using System.Text.Json;
using System.Text.Json.Nodes;
using Mdm.Train.Cli;
using Mdm.Train.Config;

namespace Mdm.Train.Training;

/// <summary>
/// Converts an ml-mdm model YAML (configs/models/cc12m_*.yaml) into an Mdm run config with ml-mdm's semantics, field
/// by field: every field of its UNetConfig / NestedUNetConfig / ResNetConfig / SamplerConfig / DiffusionConfig
/// dataclasses is converted, or refused with a message naming the field and value when Mdm cannot reproduce it. A
/// field ml-mdm itself never reads is accepted with a note. Notes go into the JSON as comments and to the output.
/// Unknown keys in those sections are refused; the trainer's top-level keys other than the few read here are not
/// model settings and are left alone. Keys ml-mdm placed at the top level by mistake (mixed_ratio,
/// multi_res_weights) are moved into the diffusion section, where they were meant to be.
/// </summary>
public static class MlMdmYaml
{
    /// <summary>The text encoders' widths, which ml-mdm's CLIs write into unet_config.conditioning_feature_dim.</summary>
    static readonly Dictionary<string, int> LanguageModelWidths = new(StringComparer.Ordinal) { ["google/flan-t5-xl"] = 2048 };

    public static int Convert(string yamlPath, string? outPath, TextWriter output)
    {
        if (!File.Exists(yamlPath)) throw new UsageException($"convert: file not found: {yamlPath}");
        var json = ToJson(File.ReadAllText(yamlPath), yamlPath, out var notes);
        RunConfig.Parse(json, $"{yamlPath} (converted)");   // validates every section
        foreach (var note in notes) output.WriteLine($"note: {note}");
        if (outPath is null) output.WriteLine(json);
        else { File.WriteAllText(outPath, json); output.WriteLine($"wrote {outPath}"); }
        return 0;
    }

    public static string ToJson(string yaml, string source) => ToJson(yaml, source, out _);

    public static string ToJson(string yaml, string source, out IReadOnlyList<string> notes)
    {
        var root = MlMdmYamlNode.Load(yaml, source);
        var unet = root.Child("unet_config") ?? throw new UsageException($"{source}: no unet_config section");
        string modelKind = root.Text("model") ?? root.Text("vision_model") ?? "unet";
        var c = new Conversion(TextWidth(root, unet, source));
        int imageSize = root.Int("sample_image_size") ?? GuessSize(root.Text("name")) ?? 64;

        var model = new JsonObject { ["imageSize"] = imageSize, ["imageChannels"] = 3 };
        bool nested = modelKind.StartsWith("nested", StringComparison.Ordinal);
        if (nested) model["nested"] = c.Nested(unet, top: true);
        else model["unet"] = c.UNet(unet, innermost: true, top: true);
        if (c.TemporalFrames > 1)
        {
            model["frames"] = c.TemporalFrames;
            c.Notes.Add($"model.frames: ml-mdm takes the clip length from the data; set to {c.TemporalFrames}, the fewest the temporal levels allow");
        }

        var diffusion = c.Diffusion(root.Child("diffusion_config"), nested);
        // ml-mdm §7: these two sit at the YAML top level, where the trainer never reads them; they belong here.
        if (!diffusion.ContainsKey("multiResWeights") && root.Json("multi_res_weights") is { } w) diffusion["multiResWeights"] = w;
        if (!diffusion.ContainsKey("mixedRatio") && root.Json("mixed_ratio") is { } m) diffusion["mixedRatio"] = m;

        var training = new JsonObject();
        if (root.Double("lr") is { } lr) training["lr"] = lr;
        if (root.Int("batch_size") is { } batch) training["batch"] = batch;
        if (root.Int("num_training_steps") is { } steps) training["steps"] = steps;
        if (root.Int("warmup_steps") is { } warmup) training["warmupSteps"] = warmup;
        if (root.Bool("use_adamw") is { } adamW) training["adamW"] = adamW;

        var run = new JsonObject { ["model"] = model, ["diffusion"] = diffusion, ["training"] = training };
        notes = c.Notes;
        var header = $"// converted from {Path.GetFileName(source)} by `mdm convert`\n" + string.Concat(c.Notes.Select(n => $"// note: {n}\n"));
        return header + run.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>
    /// The text token width. ml-mdm's CLIs overwrite unet_config.conditioning_feature_dim with the language model's
    /// width, and NestedUNet copies the top level's value into every inner level, so the top level decides.
    /// </summary>
    static int TextWidth(MlMdmYamlNode root, MlMdmYamlNode unet, string source)
    {
        int top = unet.Int("conditioning_feature_dim") ?? -1;
        if (root.Text("text_model") is not { } textModel) return top;
        if (LanguageModelWidths.TryGetValue(textModel, out int width)) return width;
        if (top > 0) return top;
        throw new UsageException($"{source}: text_model: {textModel} — its token width is not known here; set unet_config.conditioning_feature_dim to it");
    }

    sealed class Conversion(int textWidth)
    {
        public readonly List<string> Notes = [];
        public int TemporalFrames = 1;

        public JsonObject Nested(MlMdmYamlNode node, bool top)
        {
            var inner = node.Child("inner_config") ?? throw new UsageException($"{node.Name("inner_config")}: a nested model needs it");
            var nested = new JsonObject
            {
                ["outer"] = UNet(node, innermost: false, top),
                ["skipInnerUnetInput"] = node.Bool("skip_inner_unet_input") ?? false,
                ["skipNormalization"] = node.Bool("skip_normalization") ?? false,
            };
            if (node.Text("initialize_inner_with_pretrained") is { } pretrained)
                Notes.Add($"{node.Name("initialize_inner_with_pretrained")}: {pretrained} — ml-mdm loads the inner model's weights from it when it builds the model (going on without them if that fails); here nothing is loaded: start from a checkpoint that holds them");
            if (node.Bool("freeze_inner_unet") == true)
                throw node.Refuse("freeze_inner_unet", "true", "training with a frozen inner model is not supported");
            if (node.Bool("interp_conditioning") == true) nested["interpConditioning"] = true;
            if (inner.Child("inner_config") is not null) nested["innerNested"] = Nested(inner, top: false);
            else nested["innerUnet"] = UNet(inner, innermost: true, top: false);
            node.RefuseUnread();
            return nested;
        }

        public JsonObject UNet(MlMdmYamlNode n, bool innermost, bool top)
        {
            var u = new JsonObject();
            var channels = n.Ints("resolution_channels") ?? [128, 256, 256, 512, 1024];
            u["resolutionChannels"] = Array(channels);
            u["numResnetsPerResolution"] = Array(n.Ints("num_resnets_per_resolution") ?? [2]);
            u["attentionLevels"] = Array(n.Ints("attention_levels") ?? [2, 3]);
            u["numAttentionLayers"] = Array(n.Ints("num_attention_layers") ?? [1]);
            if (n.Int("temporal_dim") is { } t) u["temporalDim"] = t;
            if (n.Text("micro_conditioning") is { } micro) u["microConditioning"] = micro;
            Resnet(n.Child("resnet_config"), u);
            Temporal(n, u, channels.Length);

            int own = n.Int("conditioning_feature_dim") ?? -1;
            if (!top && own > 0 && own != textWidth)
                Notes.Add($"{n.Name("conditioning_feature_dim")}: {own} is replaced by the top level's {textWidth}, as ml-mdm's NestedUNet does");
            int proj = n.Int("conditioning_feature_proj_dim") ?? -1;
            int lmHead = n.Int("num_lm_head_layers") ?? 0;
            int masked = n.Int("masked_cross_attention") ?? 1;
            bool? skipMid = n.Bool("skip_mid_blocks"), skipCondEmb = n.Bool("skip_cond_emb"), nesting = n.Bool("nesting");
            if (top && nesting == true) throw n.Refuse("nesting", "true", "the top-level model cannot be nested inside another one");
            if (!top && nesting == false) throw n.Refuse("nesting", "false", "an inner model must have nesting: true (ml-mdm's nested forward needs it)");
            if (innermost)
            {
                if (textWidth > 0) u["conditioningFeatureDim"] = textWidth;
                if (proj > 0) u["conditioningFeatureProjDim"] = proj;
                if (lmHead != 0) u["numLmHeadLayers"] = lmHead;
                u["maskedCrossAttention"] = masked != 0;
                if (skipMid == true) u["skipMidBlocks"] = true;
                if (skipCondEmb == true) u["skipCondEmb"] = true;
            }
            else
            {
                // with skip_cond_emb ml-mdm builds no lm_proj here; the value only becomes the width it passes inward
                if (proj > 0 && skipCondEmb == false && textWidth > 0)
                    throw n.Refuse("conditioning_feature_proj_dim", $"{proj}", "only the innermost UNet projects the text (ml-mdm builds an unused lm_proj here)");
                if (proj > 0 && textWidth > 0 && proj != textWidth)
                    throw n.Refuse("conditioning_feature_proj_dim", $"{proj}", $"ml-mdm would pass {proj}-wide tokens inward instead of the text's {textWidth}; only the innermost UNet may project");
                if (lmHead != 0) throw n.Refuse("num_lm_head_layers", $"{lmHead}", "only the innermost UNet runs lm_head (ml-mdm builds unused layers here)");
                if (skipMid == false) throw n.Refuse("skip_mid_blocks", "false", "an outer level has no mid block (ml-mdm builds mid_blocks here and never runs them)");
                if (skipCondEmb == false && textWidth > 0)
                    throw n.Refuse("skip_cond_emb", "false", "an outer level's cond_emb is never used (ml-mdm builds it and takes the innermost level's)");
                if (masked == 0) Notes.Add($"{n.Name("masked_cross_attention")}: 0 has no effect on an outer level; ml-mdm uses the innermost level's setting");
            }
            if (n.Child("inner_config") is null) n.RefuseUnread();
            return u;
        }

        void Resnet(MlMdmYamlNode? r, JsonObject u)
        {
            if (r is null) return;
            if (r.Int("num_groups_norm") is { } groups) u["groups"] = groups;
            if (r.Bool("use_attention_ffn") == true) u["useAttentionFfn"] = true;
            if (r.Double("dropout") is { } p && p != 0)
            {
                if (!(p >= 0 && p < 1)) throw r.Refuse("dropout", $"{p}", "a drop probability must be in [0, 1)");
                u["dropout"] = p;
            }
            foreach (var key in new[] { "num_channels", "output_channels" })
                if (r.Int(key) is { } v and not -1) Notes.Add($"{r.Name(key)}: {v} is ignored, as ml-mdm ignores it (each ResNet's widths come from resolution_channels)");
            r.RefuseUnread();
        }

        void Temporal(MlMdmYamlNode n, JsonObject u, int levels)
        {
            if (n.Bool("temporal_spatial_ds") == true)
                throw n.Refuse("temporal_spatial_ds", "true", "spatial downsampling inside a temporal level is not supported");
            bool mode = n.Bool("temporal_mode") ?? false, rotary = n.Bool("temporal_positional_encoding") ?? false;
            var layers = n.Ints("num_temporal_attention_layers");
            if (mode) u["temporalMode"] = true;
            if (rotary) u["temporalPositionalEncoding"] = true;
            if (layers is { Length: > 0 }) u["numTemporalAttentionLayers"] = Array(layers);
            if (mode) TemporalFrames *= 1 << (levels - 1);
            else if (layers is not null && layers.Any(l => l > 0)) TemporalFrames = Math.Max(TemporalFrames, 2);
        }

        public JsonObject Diffusion(MlMdmYamlNode? d, bool nested)
        {
            var o = new JsonObject();
            var s = d?.Child("sampler_config");
            string where = d?.Path ?? "diffusion_config";
            o["numDiffusionSteps"] = s?.Int("num_diffusion_steps") ?? 32;
            o["scheduleType"] = s?.Text("schedule_type") ?? "DDPM";
            string prediction = s?.Text("prediction_type") ?? "DDPM";
            o["predictionType"] = PredictionName(prediction);
            o["lossTargetType"] = PredictionName(s?.Text("loss_target_type") ?? prediction);
            o["scheduleShifted"] = s?.Bool("schedule_shifted") ?? false;
            o["scheduleShiftedPower"] = s?.Double("schedule_shifted_power") ?? 1;
            if (s is not null)
            {
                if (s.Double("beta_start") is { } b0 && b0 != 1e-4) throw s.Refuse("beta_start", $"{b0}", "the linear (DDPM) schedule runs from 1e-4 to 0.02 here");
                if (s.Double("beta_end") is { } b1 && b1 != 0.02) throw s.Refuse("beta_end", $"{b1}", "the linear (DDPM) schedule runs from 1e-4 to 0.02 here");
                if (s.Double("rescale_schedule") is { } rs && rs != 1) throw s.Refuse("rescale_schedule", $"{rs}", "rescaling the base schedule is not supported (use schedule_shifted)");
                if (s.Double("rescale_signal") is { } sig && sig != 1) throw s.Refuse("rescale_signal", $"{sig}", "only 1 (no signal rescaling) is supported");
                if (s.Bool("reproject_signal") == true) Notes.Add($"{s.Name("reproject_signal")}: true has no effect; ml-mdm never reads it");
                if (s.Text("threshold_function") is { } th)
                    Notes.Add($"{s.Name("threshold_function")}: {th} is a sampling choice here: pass `sample --threshold {ThresholdFlag(th, s)}`");
                s.RefuseUnread();
            }
            if (d is null) throw new UsageException($"{where}.use_vdm_loss_weights: absent, so ml-mdm's default true — VDM loss weights are not supported; add diffusion_config with use_vdm_loss_weights: false");
            if (d.Double("model_output_scale") is { } scale && scale != 0) throw d.Refuse("model_output_scale", $"{scale}", "tanh output scaling is not supported");
            if (d.Bool("use_vdm_loss_weights") != false)
                throw d.Refuse("use_vdm_loss_weights", d.Text("use_vdm_loss_weights") ?? "absent (ml-mdm's default true)", "VDM loss weights are not supported; set it false");
            if (nested)
            {
                o["useDoubleLoss"] = d.Bool("use_double_loss") ?? false;
                if (d.Json("multi_res_weights") is { } w) o["multiResWeights"] = w;
                if (d.Json("mixed_ratio") is { } m) o["mixedRatio"] = m;
                if (d.Bool("no_use_residual") != true)
                    throw d.Refuse("no_use_residual", d.Text("no_use_residual") ?? "absent (ml-mdm's default false)", "the low-resolution residual prediction is not supported; set it true");
                foreach (var key in new[] { "use_random_interp", "random_downsample", "average_downsample", "mid_downsample" })
                    if (d.Bool(key) == true) Notes.Add($"{d.Name(key)}: true has no effect; ml-mdm never reads it");
            }
            d.RefuseUnread();
            return o;
        }

        static string PredictionName(string mlMdm) => mlMdm.ToUpperInvariant() == "DDIM" ? "X0" : mlMdm;

        static string ThresholdFlag(string mlMdm, MlMdmYamlNode s) => mlMdm.ToUpperInvariant() switch
        {
            "NONE" => "none",
            "CLIP" => "clip",
            "DYNAMIC" => "dynamic",
            "DYNAMIC_IF" => "deepfloyd",
            _ => throw s.Refuse("threshold_function", mlMdm, "expected NONE, CLIP, DYNAMIC or DYNAMIC_IF"),
        };
    }

    static JsonArray Array(int[] values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    static int? GuessSize(string? name)
    {
        var m = name is null ? null : System.Text.RegularExpressions.Regex.Match(name, @"(\d+)x\1");
        return m is { Success: true } ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;
    }
}
