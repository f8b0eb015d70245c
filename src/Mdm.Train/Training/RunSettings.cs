using System.Globalization;
using System.Text.Json;
using Mdm.Model.Checkpoints;
using Mdm.Train.Cli;
using Mdm.Train.Config;

namespace Mdm.Train.Training;

/// <summary>
/// A run's effective settings (the config itself plus every override), kept as run.json in the run folder and in
/// every checkpoint's metadata, so `--resume` needs only `--out` and continues exactly as the run started.
/// </summary>
public sealed record RunSettings
{
    public const string FileName = "run.json", MetadataKey = "run_settings";

    public string Config { get; init; } = "";
    public string ConfigSource { get; init; } = "";
    public string Data { get; init; } = DatasetFactory.Procedural;
    public ulong Seed { get; init; } = 1;
    public int? Steps { get; init; }
    public int? Batch { get; init; }
    public double? Lr { get; init; }
    public int? GradAccumulation { get; init; }
    public int? SampleEvery { get; init; }
    public int? CheckpointEvery { get; init; }
    public int KeepLast { get; init; } = 3;
    public bool Bf16 { get; init; }
    public bool SkipBadData { get; init; }
    public int? MaxPerClass { get; init; }

    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static RunSettings From(TrainSettings s, RunConfig config) => new()
    {
        Config = config.Json, ConfigSource = config.Source, Data = s.Data, Seed = s.Seed, Steps = s.Steps, Batch = s.Batch, Lr = s.Lr,
        GradAccumulation = s.GradAccumulation, SampleEvery = s.SampleEvery, CheckpointEvery = s.CheckpointEvery, KeepLast = s.KeepLast,
        Bf16 = s.Bf16, SkipBadData = s.SkipBadData, MaxPerClass = s.MaxPerClass,
    };

    /// <summary>The command-line settings with every stored value in place (device, out and the flag set kept).</summary>
    public TrainSettings Apply(TrainSettings cli) => cli with
    {
        ConfigPath = null, Preset = null, Data = Data, Seed = Seed, Steps = Steps, Batch = Batch, Lr = Lr, GradAccumulation = GradAccumulation,
        SampleEvery = SampleEvery, CheckpointEvery = CheckpointEvery, KeepLast = KeepLast, Bf16 = Bf16, SkipBadData = SkipBadData, MaxPerClass = MaxPerClass,
    };

    public RunConfig ParseConfig() => RunConfig.Parse(Config, ConfigSource);

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static RunSettings Parse(string json, string source)
    {
        try
        {
            var r = JsonSerializer.Deserialize<RunSettings>(json, Json);
            if (r is null || r.Config.Length == 0) throw new UsageException($"{source}: no run config in the saved run settings");
            return r;
        }
        catch (JsonException e) { throw new UsageException($"{source}: the saved run settings are not valid JSON ({e.Message})"); }
    }

    /// <summary>
    /// The settings and config to train with: on --resume the ones stored in the run folder (flags typed again are
    /// checked against them), otherwise the command line's (no config given: <paramref name="defaultPreset"/>).
    /// </summary>
    public static (TrainSettings Settings, RunConfig Config) Resolve(TrainSettings cli, string defaultPreset, TextWriter log)
    {
        var cliConfig = cli.ConfigPath is not null ? RunConfig.Load(cli.ConfigPath) : cli.Preset is not null ? RunConfig.Preset(cli.Preset) : null;
        if (cli.Resume && FindStored(cli.OutDir, log) is var (stored, where))
        {
            var merged = stored.MergeResumeFlags(cli, cliConfig, where, log);
            log.WriteLine($"resume: settings from {where} ({merged.ConfigSource}, data {merged.Data}, seed {merged.Seed})");
            return (merged.Apply(cli), merged.ParseConfig());
        }
        return (cli, cliConfig ?? RunConfig.Preset(defaultPreset));
    }

    /// <summary>run.json, or when it is missing or unreadable the newest checkpoint that carries the settings.</summary>
    static (RunSettings, string)? FindStored(string outDir, TextWriter log)
    {
        var path = Path.Combine(outDir, FileName);
        try { if (Load(outDir) is { } r) return (r, path); }
        catch (UsageException e) { log.WriteLine($"resume: {e.Message}; looking in the checkpoints"); }
        var folder = Path.Combine(outDir, Trainer.CheckpointFolder);
        var checkpoints = Directory.Exists(folder) ? Directory.GetFiles(folder, "stage*-*.safetensors") : [];
        foreach (var file in checkpoints.OrderByDescending(f => Path.GetFileName(f), StringComparer.Ordinal))
        {
            try
            {
                using var reader = CheckpointReader.Open(file);
                if (reader.GetMetadata(MetadataKey) is { } json) return (Parse(json, file), file);
            }
            catch (Exception e) when (e is CheckpointFormatException or UsageException or IOException) { }
        }
        return null;
    }

    public void Save(string outDir) =>
        AtomicFile.Write(Path.Combine(outDir, FileName), stream => { using var w = new StreamWriter(stream, leaveOpen: true); w.Write(ToJson()); });

    /// <summary>run.json of a run folder; null when there is none.</summary>
    public static RunSettings? Load(string outDir)
    {
        var path = Path.Combine(outDir, FileName);
        return File.Exists(path) ? Parse(File.ReadAllText(path), path) : null;
    }

    /// <summary>
    /// The stored settings with the flags typed again on `--resume` checked: equal is fine; a safe change (more steps,
    /// another sampling or checkpoint cadence, checkpoints kept, skipping unreadable files) is applied and logged;
    /// anything else is refused.
    /// </summary>
    public RunSettings MergeResumeFlags(TrainSettings cli, RunConfig? cliConfig, string where, TextWriter log)
    {
        var config = ParseConfig();
        if (cliConfig is not null && cliConfig.Json != Config)
            throw new UsageException($"{(cli.Preset is not null ? $"--preset {cli.Preset}" : $"--config {cli.ConfigPath}")} differs from the config " +
                                     $"this run started with ({ConfigSource}, kept in {where}); resume with only --out, or start a new run with another --out");
        var given = From(cli, config);
        var merged = this;
        foreach (var (flag, show) in Compared(config))
        {
            if (!cli.Given.Contains(flag)) continue;
            string before = show(this), after = show(given);
            if (before == after) continue;
            merged = flag switch
            {
                "--steps" when cli.Steps >= MaxSteps(config) => merged with { Steps = cli.Steps },
                "--sample-every" => merged with { SampleEvery = cli.SampleEvery },
                "--checkpoint-every" => merged with { CheckpointEvery = cli.CheckpointEvery },
                "--keep-last" => merged with { KeepLast = cli.KeepLast },
                "--skip-bad-data" => merged with { SkipBadData = cli.SkipBadData },   // for a file that broke after the start
                _ => throw new UsageException($"{flag} {after} conflicts with this run's {before} (kept in {where}); " +
                                              "resume without it, or start a new run with another --out"),
            };
            log.WriteLine($"resume: {flag} changed from {before} to {after}");
        }
        return merged;
    }

    int MaxSteps(RunConfig config) => Steps ?? config.Training.Stages?.Max(s => s.Steps) ?? config.Training.Steps;

    static IEnumerable<(string Flag, Func<RunSettings, string> Show)> Compared(RunConfig config)
    {
        var t = config.Training;
        string Stages(int? value, Func<StageConfig, int> perStage, int whole) =>
            value?.ToString(CultureInfo.InvariantCulture) ?? (t.Stages is { } st ? string.Join("/", st.Select(perStage)) : whole.ToString(CultureInfo.InvariantCulture));
        yield return ("--data", r => r.Data);
        yield return ("--max-per-class", r => r.MaxPerClass?.ToString(CultureInfo.InvariantCulture) ?? "all");
        yield return ("--seed", r => r.Seed.ToString(CultureInfo.InvariantCulture));
        yield return ("--batch", r => Stages(r.Batch, s => s.Batch, t.Batch));
        yield return ("--lr", r => (r.Lr ?? t.Lr).ToString("R", CultureInfo.InvariantCulture));
        yield return ("--grad-accumulation", r => (r.GradAccumulation ?? t.GradAccumulation).ToString(CultureInfo.InvariantCulture));
        yield return ("--bf16", r => r.Bf16 ? "on" : "off");
        yield return ("--skip-bad-data", r => r.SkipBadData ? "on" : "off");
        yield return ("--steps", r => Stages(r.Steps, s => s.Steps, t.Steps));
        yield return ("--sample-every", r => (r.SampleEvery ?? t.SampleEvery).ToString(CultureInfo.InvariantCulture));
        yield return ("--checkpoint-every", r => (r.CheckpointEvery ?? t.CheckpointEvery).ToString(CultureInfo.InvariantCulture));
        yield return ("--keep-last", r => r.KeepLast.ToString(CultureInfo.InvariantCulture));
    }
}
