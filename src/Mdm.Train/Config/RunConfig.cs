using System.Reflection;
using System.Text.Json;
using Mdm.Model.Config;
using Mdm.Model.Diffusion;

namespace Mdm.Train.Config;

/// <summary>
/// A whole run: the "model", "diffusion" and "training" sections of one JSON file (comments and trailing commas
/// allowed). Presets are the files in configs/, embedded in the executable so they work from any folder.
/// </summary>
public sealed record RunConfig(string Source, string Json, ModelConfig Model, DiffusionConfig Diffusion, TrainingConfig Training)
{
    static readonly JsonDocumentOptions DocumentOptions = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    public static RunConfig Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (IOException e) { throw new ArgumentException($"{path}: cannot read the config: {e.Message}"); }
        return Parse(text, path);
    }

    public static RunConfig Parse(string json, string source)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, DocumentOptions); }
        catch (JsonException e) { throw new ArgumentException($"{source}: not valid JSON: {e.Message}"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out _))
                throw new ArgumentException($"{source}: a run config is a JSON object with a \"model\" section (and optional \"diffusion\", \"training\")");
            ModelConfig model;
            try { model = ModelConfig.Parse(json); }
            catch (Exception e) when (e is ArgumentException or JsonException or InvalidDataException) { throw new ArgumentException($"{source}: {e.Message}"); }
            var diffusion = root.TryGetProperty("diffusion", out var d)
                ? DiffusionConfigJson.ParseDiffusion(d, root, source)
                : new DiffusionConfig();
            TrainingConfig training;
            try
            {
                training = root.TryGetProperty("training", out var t)
                    ? t.Deserialize<TrainingConfig>(TrainingConfig.JsonOptions) ?? new TrainingConfig()
                    : new TrainingConfig();
            }
            catch (JsonException e) { throw new ArgumentException($"{source}: training section: {e.Message}"); }
            training.Validate(source);
            diffusion.ValidateFor(model.Resolutions.Count);
            return new RunConfig(source, json, model, diffusion, training);
        }
    }

    /// <summary>The model config of stage <paramref name="index"/> (or the top-level model when there are no stages).</summary>
    public ModelConfig StageModel(int index)
    {
        if (Training.Stages is not { } stages) return Model;
        try { return ModelConfig.Parse(stages[index].Model.GetRawText()); }
        catch (Exception e) when (e is ArgumentException or JsonException or InvalidDataException)
        { throw new ArgumentException($"{Source}: training.stages[{index}].model: {e.Message}"); }
    }

    public int StageCount => Training.Stages?.Count ?? 1;

    // ---- presets ------------------------------------------------------------------------------------------------
    public static IReadOnlyList<string> PresetNames =>
        Assembly.GetExecutingAssembly().GetManifestResourceNames()
            .Where(n => n.StartsWith("configs/", StringComparison.Ordinal) && n.EndsWith(".json", StringComparison.Ordinal))
            .Select(n => n["configs/".Length..^".json".Length]).OrderBy(n => n).ToList();

    public static RunConfig Preset(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream($"configs/{name}.json")
            ?? throw new ArgumentException($"unknown preset '{name}': available presets are {string.Join(", ", PresetNames)}");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd(), $"preset {name}");
    }
}
