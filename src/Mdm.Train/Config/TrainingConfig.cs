using System.Text.Json;
using System.Text.Json.Serialization;

namespace Mdm.Train.Config;

/// <summary>One progressive stage: its model (a section like the top-level "model"), batch size and steps.</summary>
public sealed record StageConfig
{
    public string Name { get; init; } = "";
    /// <summary>The stage's model section; stage k's innermost models must equal stage k−1's model (inner_unet.…).</summary>
    public JsonElement Model { get; init; }
    public int Batch { get; init; }
    public int Steps { get; init; }
}

/// <summary>
/// The "training" section of a run config (ml-mdm §5 defaults): AdamW, warmup then constant lr, global-norm clip 2.0,
/// EMA 0.9999 (optionally warmed up for short runs), gradient accumulation, and optional progressive stages.
/// </summary>
public sealed record TrainingConfig
{
    public double Lr { get; init; } = 5e-5;
    public int WarmupSteps { get; init; } = 10_000;
    public int Batch { get; init; } = 32;
    public int Steps { get; init; } = 5000;
    public bool AdamW { get; init; } = true;
    public double WeightDecay { get; init; }
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Eps { get; init; } = 1e-8;
    public float GradClip { get; init; } = 2.0f;
    public float EmaDecay { get; init; } = 0.9999f;
    public bool EmaWarmup { get; init; }
    public int GradAccumulation { get; init; } = 1;
    /// <summary>Probability of replacing a class label with the null class (classifier-free guidance training).</summary>
    public double LabelDropout { get; init; } = 0.1;
    public bool RandomFlip { get; init; } = true;
    public int SampleEvery { get; init; }
    public int CheckpointEvery { get; init; } = 500;
    public IReadOnlyList<StageConfig>? Stages { get; init; }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public void Validate(string source)
    {
        void Need(bool ok, string field, object? value, string rule)
        {
            if (!ok) throw new ArgumentException($"{source}: training.{field} = {value} is invalid: {rule}");
        }
        Need(Lr > 0 && double.IsFinite(Lr), "lr", Lr, "must be > 0");
        Need(WarmupSteps >= 0, "warmupSteps", WarmupSteps, "must be >= 0");
        Need(Batch > 0, "batch", Batch, "must be > 0");
        Need(Steps > 0, "steps", Steps, "must be > 0");
        Need(WeightDecay >= 0, "weightDecay", WeightDecay, "must be >= 0");
        Need(Beta1 is >= 0 and < 1, "beta1", Beta1, "must be in [0, 1)");
        Need(Beta2 is >= 0 and < 1, "beta2", Beta2, "must be in [0, 1)");
        Need(Eps > 0, "eps", Eps, "must be > 0");
        Need(GradClip >= 0, "gradClip", GradClip, "must be >= 0 (0 = off)");
        Need(EmaDecay is >= 0 and <= 1, "emaDecay", EmaDecay, "must be in [0, 1]");
        Need(GradAccumulation > 0, "gradAccumulation", GradAccumulation, "must be > 0");
        Need(LabelDropout is >= 0 and < 1, "labelDropout", LabelDropout, "must be in [0, 1)");
        Need(SampleEvery >= 0, "sampleEvery", SampleEvery, "must be >= 0");
        Need(CheckpointEvery >= 0, "checkpointEvery", CheckpointEvery, "must be >= 0");
        if (Stages is { } stages)
        {
            Need(stages.Count > 0, "stages", "[]", "give at least one stage or leave it out");
            for (int i = 0; i < stages.Count; i++)
            {
                Need(stages[i].Batch > 0, $"stages[{i}].batch", stages[i].Batch, "must be > 0");
                Need(stages[i].Steps > 0, $"stages[{i}].steps", stages[i].Steps, "must be > 0");
                Need(stages[i].Model.ValueKind == JsonValueKind.Object, $"stages[{i}].model", stages[i].Model.ValueKind, "must be a model object");
            }
        }
    }
}
