namespace Mdm.Train.Cli;

/// <summary>A bad command-line value: printed with the flag's name, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Everything `train` needs, after parsing and validation.</summary>
public sealed record TrainSettings
{
    public string? ConfigPath { get; init; }
    public string? Preset { get; init; }
    /// <summary>procedural | emoji | mnist | fashion-mnist | a folder of images | shards:PATTERN.</summary>
    public string Data { get; init; } = "procedural";
    public int? Steps { get; init; }
    public int? Batch { get; init; }
    public double? Lr { get; init; }
    public string? Device { get; init; }
    public string OutDir { get; init; } = "out";
    public bool Resume { get; init; }
    public bool Bf16 { get; init; }
    public ulong Seed { get; init; } = 1;
    /// <summary>Null: the config's value (as for the other nullable overrides).</summary>
    public int? GradAccumulation { get; init; }
    public int? SampleEvery { get; init; }
    public int? CheckpointEvery { get; init; }
    public int KeepLast { get; init; } = 3;
    /// <summary>Train without the data files that fail validation (listed) instead of refusing to start.</summary>
    public bool SkipBadData { get; init; }
    /// <summary>Image folders: only the first N files of each class.</summary>
    public int? MaxPerClass { get; init; }
    /// <summary>Decode workers of the batch loader; null: cores − 1 (at least 1). Does not change the batches.</summary>
    public int? DataWorkers { get; init; }
    /// <summary>--grad-buckets: the data-parallel gradient bucket size in MB (null: off, one all-reduce after the
    /// backward). Does not change the result at 2 ranks (see docs).</summary>
    public double? GradBucketMegabytes { get; init; } = Distributed.BucketPlan.DefaultMegabytes;
    /// <summary>--nproc: start this many local data-parallel processes through mpirun (null: run in this process).</summary>
    public int? Processes { get; init; }
    /// <summary>The flags typed on the command line (not defaulted): on --resume each must agree with the run's settings.</summary>
    public IReadOnlySet<string> Given { get; init; } = new HashSet<string>();

    public const int MaxGradAccumulation = 1024;

    public void Validate()
    {
        if (ConfigPath is not null && Preset is not null) throw new UsageException("--config and --preset are alternatives: give one");
        if (MaxPerClass is <= 0) throw new UsageException($"--max-per-class must be > 0, got {MaxPerClass}");
        if (DataWorkers is <= 0 or > 256) throw new UsageException($"--data-workers must be in 1..256, got {DataWorkers}");
        if (Processes is <= 0 or > Distributed.LocalLaunch.MaxProcesses)
            throw new UsageException($"--nproc must be in 1..{Distributed.LocalLaunch.MaxProcesses}, got {Processes}");
        if (GradBucketMegabytes is { } mb && !(mb > 0 && mb <= Distributed.BucketPlan.MaxMegabytes))
            throw new UsageException($"--grad-buckets must be off or a size in MB in (0, {Distributed.BucketPlan.MaxMegabytes}], got {mb}");
        if (Steps is <= 0) throw new UsageException($"--steps must be > 0, got {Steps}");
        if (Batch is <= 0 or > 4096) throw new UsageException($"--batch must be in 1..4096, got {Batch}");
        if (Lr is { } lr && !(lr > 0 && double.IsFinite(lr) && lr < 1)) throw new UsageException($"--lr must be in (0, 1), got {lr}");
        if (GradAccumulation is <= 0 or > MaxGradAccumulation)
            throw new UsageException($"--grad-accumulation must be in 1..{MaxGradAccumulation}, got {GradAccumulation}");
        if (SampleEvery < 0) throw new UsageException($"--sample-every must be >= 0, got {SampleEvery}");
        if (CheckpointEvery < 0) throw new UsageException($"--checkpoint-every must be >= 0, got {CheckpointEvery}");
        if (KeepLast <= 0) throw new UsageException($"--keep-last must be > 0, got {KeepLast}");
        if (ConfigPath is not null && !File.Exists(ConfigPath)) throw new UsageException($"--config: file not found: {ConfigPath}");
    }
}

/// <summary>Everything `sample` needs, after parsing and validation.</summary>
public sealed record SampleSettings
{
    public string Checkpoint { get; init; } = "";
    public int Steps { get; init; } = 50;
    public string Sampler { get; init; } = "ddim";
    public double Eta { get; init; }
    public double Cfg { get; init; } = 1.0;
    public string Threshold { get; init; } = "deepfloyd";
    public int? ClassLabel { get; init; }
    public ulong Seed { get; init; } = 137;
    public int Count { get; init; } = 16;
    public string OutFile { get; init; } = "samples.png";
    public string? Device { get; init; }
    public bool UseEma { get; init; } = true;
    /// <summary>bf16 autocast for the denoiser, as `train --bf16` (on CUDA: tensor cores).</summary>
    public bool Bf16 { get; init; }
    /// <summary>The denoiser call replayed as a CUDA graph (<see cref="Mdm.Model.Diffusion.Sampler.UseGraphs"/>); on a
    /// backend without graphs it runs eagerly after one logged line. The samples are the same either way.</summary>
    public bool Graph { get; init; }

    public static readonly string[] Samplers = ["ddpm", "ddim"];
    public static readonly string[] Thresholds = ["none", "clip", "dynamic", "deepfloyd"];

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Checkpoint)) throw new UsageException("--checkpoint is required");
        if (!File.Exists(Checkpoint)) throw new UsageException($"--checkpoint: file not found: {Checkpoint}");
        if (Steps is <= 0 or > 1000) throw new UsageException($"--steps must be in 1..1000, got {Steps}");
        if (!Samplers.Contains(Sampler)) throw new UsageException($"--sampler must be one of {string.Join(", ", Samplers)}, got '{Sampler}'");
        if (!(Eta >= 0 && Eta <= 1)) throw new UsageException($"--eta must be in [0, 1], got {Eta}");
        if (!(Cfg >= 0 && double.IsFinite(Cfg))) throw new UsageException($"--cfg must be >= 0, got {Cfg}");
        if (!Thresholds.Contains(Threshold)) throw new UsageException($"--threshold must be one of {string.Join(", ", Thresholds)}, got '{Threshold}'");
        if (Count is <= 0 or > 1024) throw new UsageException($"--n must be in 1..1024, got {Count}");
        if (ClassLabel is < 0) throw new UsageException($"--class must be >= 0, got {ClassLabel}");
        if (!OutFile.EndsWith(".png", StringComparison.OrdinalIgnoreCase) && !OutFile.EndsWith(".gif", StringComparison.OrdinalIgnoreCase))
            throw new UsageException($"--out must name a .png (or .gif for video models) file, got '{OutFile}'");
        if (Directory.Exists(OutFile)) throw new UsageException($"--out {OutFile} is a folder; give a file name such as {Path.Combine(OutFile, "samples.png")}");
        var folder = Path.GetDirectoryName(Path.GetFullPath(OutFile))!;
        if (File.Exists(folder)) throw new UsageException($"--out {OutFile}: {folder} is a file, not a folder");
    }
}
