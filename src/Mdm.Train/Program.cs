using System.CommandLine;
using Mdm.Kernels;
using Mdm.Kernels.Collectives;
using Mdm.Kernels.Gpu;
using Mdm.Model;
using Mdm.Model.Checkpoints;
using Mdm.Train.Cli;
using Mdm.Train.Config;
using Mdm.Train.Data;
using Mdm.Train.Training;

namespace Mdm.Train;

/// <summary>
/// The Mdm command line: `train`, `sample`, `info`, `convert`; with no arguments it runs the demo (train the small
/// preset on the built-in procedural shapes, sample, write a grid and a loss plot). Exit codes: <see cref="ExitCodes"/>.
/// </summary>
public static class Program
{
    /// <summary>The command line as given (`--nproc` passes it on to the ranks).</summary>
    static string[] commandLine = [];

    public static int Main(string[] args)
    {
        commandLine = args;
        if (args.Length == 0) return Demo();
        var root = BuildCommands();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors) Console.Error.WriteLine($"mdm: {ParseErrors.Plain(e.Message)}");
            Console.Error.WriteLine("run 'mdm --help' (dotnet run --project src/Mdm.Train -- --help) for usage");
            return ExitCodes.Usage;
        }
        return parse.Invoke();
    }

    static RootCommand BuildCommands()
    {
        var root = new RootCommand("Mdm: Matryoshka Diffusion Models on hand-written kernels. With no arguments: the demo.");

        var config = new Option<string?>("--config") { Description = "run config JSON (model, diffusion, training sections)" };
        var preset = new Option<string?>("--preset") { Description = $"a built-in config: {string.Join(", ", RunConfig.PresetNames)}" };
        var data = new Option<string>("--data") { Description = $"{string.Join(" | ", DatasetFactory.BuiltIn)} | a folder of images (JPEG, PNG, WebP) | shards:PATTERN", DefaultValueFactory = _ => DatasetFactory.Procedural };
        var steps = new Option<int?>("--steps") { Description = "training steps (per stage)" };
        var batch = new Option<int?>("--batch") { Description = "batch size (per stage)" };
        var lr = new Option<double?>("--lr") { Description = "peak learning rate" };
        var device = new Option<string?>("--device") { Description = "cpu | cuda | ilgpu-cpu (default: cuda if present, else cpu; or MDM_DEVICE)" };
        var outDir = new Option<string>("--out") { Description = "output folder (checkpoints, samples, metrics, loss plot)", DefaultValueFactory = _ => "out/run" };
        var resume = new Option<bool>("--resume") { Description = "continue from the latest checkpoint in --out" };
        var bf16 = new Option<bool>("--bf16") { Description = "bf16 mixed precision (matmul/conv/attention inputs in bf16, f32 accumulation)" };
        var seed = new Option<ulong>("--seed") { Description = "seed for data order, noise and initialisation", DefaultValueFactory = _ => 1 };
        var accumulation = new Option<int?>("--grad-accumulation") { Description = $"micro-batches per optimiser step, 1..{TrainSettings.MaxGradAccumulation} (default: the config's)" };
        var sampleEvery = new Option<int?>("--sample-every") { Description = "write a sample grid every N steps (0 = never; default: the config's)" };
        var checkpointEvery = new Option<int?>("--checkpoint-every") { Description = "checkpoint every N steps (0 = only at the end; default: the config's)" };
        var keepLast = new Option<int>("--keep-last") { Description = "checkpoints to keep", DefaultValueFactory = _ => 3 };
        var skipBadData = new Option<bool>("--skip-bad-data") { Description = "train without the data files that cannot be read (listed) instead of refusing" };
        var maxPerClass = new Option<int?>("--max-per-class") { Description = "image folders: use only the first N files of each class (quick runs)" };
        var dataWorkers = new Option<int?>("--data-workers") { Description = "decode workers feeding the batch queue (default: cores − 1, at least 1)" };
        var gradBuckets = new Option<string>(Distributed.BucketPlan.Flag)
        {
            Description = $"data-parallel: gradient bucket size in MB, all-reduced during the backward, or {Distributed.BucketPlan.Off} (one all-reduce after it)",
            DefaultValueFactory = _ => Distributed.BucketPlan.DefaultMegabytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        var nproc = new Option<int?>(Distributed.LocalLaunch.Flag) { Description = "data-parallel: start N local processes through mpirun, each training a slice of every --batch" };
        var train = new Command("train", "train a (nested) UNet; progressive stages come from the config. --resume needs only --out: the run's settings are kept in it");
        var trainOptions = new Option[] { config, preset, data, steps, batch, lr, device, outDir, resume, bf16, seed, accumulation, sampleEvery, checkpointEvery, keepLast, skipBadData, maxPerClass, dataWorkers, gradBuckets, nproc };
        foreach (var o in trainOptions) train.Options.Add(o);
        train.SetAction(p => Guard(() => Train(new TrainSettings
        {
            ConfigPath = p.GetValue(config), Preset = p.GetValue(preset), Data = p.GetValue(data)!, Steps = p.GetValue(steps),
            Batch = p.GetValue(batch), Lr = p.GetValue(lr), Device = p.GetValue(device), OutDir = p.GetValue(outDir)!,
            Resume = p.GetValue(resume), Bf16 = p.GetValue(bf16), Seed = p.GetValue(seed), GradAccumulation = p.GetValue(accumulation),
            SampleEvery = p.GetValue(sampleEvery), CheckpointEvery = p.GetValue(checkpointEvery), KeepLast = p.GetValue(keepLast),
            SkipBadData = p.GetValue(skipBadData), MaxPerClass = p.GetValue(maxPerClass), DataWorkers = p.GetValue(dataWorkers),
            Processes = p.GetValue(nproc), GradBucketMegabytes = Distributed.BucketPlan.ParseFlag(p.GetValue(gradBuckets)!),
            Given = trainOptions.Where(o => p.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToHashSet(),
        })));
        root.Subcommands.Add(train);

        var checkpoint = new Option<string>("--checkpoint") { Description = "a training checkpoint (.safetensors)", Required = true };
        var sSteps = new Option<int>("--steps") { Description = "sampling steps (respaced)", DefaultValueFactory = _ => 50 };
        var sampler = new Option<string>("--sampler") { Description = "ddpm | ddim", DefaultValueFactory = _ => "ddim" };
        var eta = new Option<double>("--eta") { Description = "DDIM eta (0 = deterministic)", DefaultValueFactory = _ => 0 };
        var cfg = new Option<double>("--cfg") { Description = "classifier-free guidance weight (1 = off)", DefaultValueFactory = _ => 1 };
        var threshold = new Option<string>("--threshold") { Description = "none | clip | dynamic | deepfloyd", DefaultValueFactory = _ => "deepfloyd" };
        var classLabel = new Option<int?>("--class") { Description = "class label for every sample (class-conditional models)" };
        var sSeed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 137 };
        var count = new Option<int>("--n") { Description = "number of images", DefaultValueFactory = _ => 16 };
        var outFile = new Option<string>("--out") { Description = "output PNG (one more per lower resolution: NAME-<size>px.png)", DefaultValueFactory = _ => "samples.png" };
        var noEma = new Option<bool>("--no-ema") { Description = "use the raw weights instead of the EMA" };
        var sample = new Command("sample", "sample images at every resolution from a checkpoint");
        var sBf16 = new Option<bool>("--bf16") { Description = "bf16 autocast for the denoiser, as in training (tensor cores on CUDA)" };
        var sGraph = new Option<bool>("--graph") { Description = "replay the denoiser call as a CUDA graph (CUDA; elsewhere it runs eagerly after one logged line)" };
        foreach (var o in new Option[] { checkpoint, sSteps, sampler, eta, cfg, threshold, classLabel, sSeed, count, outFile, device, noEma, sBf16, sGraph })
            sample.Options.Add(o);
        sample.SetAction(p => Guard(() => Sample(new SampleSettings
        {
            Checkpoint = p.GetValue(checkpoint)!, Steps = p.GetValue(sSteps), Sampler = p.GetValue(sampler)!, Eta = p.GetValue(eta),
            Cfg = p.GetValue(cfg), Threshold = p.GetValue(threshold)!, ClassLabel = p.GetValue(classLabel), Seed = p.GetValue(sSeed),
            Count = p.GetValue(count), OutFile = p.GetValue(outFile)!, Device = p.GetValue(device), UseEma = !p.GetValue(noEma),
            Bf16 = p.GetValue(sBf16), Graph = p.GetValue(sGraph),
        })));
        root.Subcommands.Add(sample);

        var info = new Command("info", "devices, and the config's parameter count by block");
        info.Options.Add(config); info.Options.Add(preset); info.Options.Add(device);
        var infoCheckpoint = new Option<string?>("--checkpoint") { Description = "show the config stored in a checkpoint" };
        info.Options.Add(infoCheckpoint);
        info.SetAction(p => Guard(() => Info(p.GetValue(config), p.GetValue(preset), p.GetValue(infoCheckpoint), p.GetValue(device))));
        root.Subcommands.Add(info);

        var yaml = new Argument<string>("yaml") { Description = "an ml-mdm model YAML (configs/models/*.yaml)" };
        var json = new Option<string?>("--out") { Description = "output JSON (default: print)" };
        var convert = new Command("convert", "convert an ml-mdm YAML config to an Mdm JSON run config");
        convert.Arguments.Add(yaml); convert.Options.Add(json);
        convert.SetAction(p => Guard(() => MlMdmYaml.Convert(p.GetValue(yaml)!, p.GetValue(json), Console.Out)));
        root.Subcommands.Add(convert);
        root.Subcommands.Add(Distributed.CollectiveCheck.Build());
        return root;
    }

    /// <summary>The one error path: an expected failure prints one line and exits with its documented code.</summary>
    static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (ExitCodes.Classify(e) is { } failure)
        {
            Console.Out.Flush();
            Console.Error.WriteLine($"mdm: {failure.Message}");
            return failure.Code;
        }
    }

    /// <summary>The backend for --device (or MDM_DEVICE); asking for CUDA where there is none is an input error.
    /// <paramref name="localRank"/> picks the GPU of a data-parallel rank.</summary>
    static Backend CreateBackend(string? device, int localRank = 0)
    {
        var name = device ?? Environment.GetEnvironmentVariable(Backends.EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(name) && name.Trim().ToLowerInvariant() != "auto" && Backends.Parse(name) == BackendKind.Cuda
            && Backends.CudaStatus() is (false, var why))
            throw new UsageException($"{(device is null ? Backends.EnvironmentVariable + "=" : "--device ")}{name}: no usable GPU ({why}); use --device cpu");
        return Backends.CreateDefault(device, localRank);
    }

    /// <summary>`train`: in this process, or under mpirun as one data-parallel rank (rank, world size and local rank from
    /// the launcher's environment), or with --nproc N as the launcher of N local ranks.</summary>
    static int Train(TrainSettings cli)
    {
        cli.Validate();
        if (cli.Processes is { } processes) return Distributed.LocalLaunch.Run(processes, commandLine, Console.Out);
        using var collective = Collective.FromEnvironment();
        return Distributed.DataParallel.Run(collective, Console.Error, () => TrainRank(cli, collective));
    }

    static int TrainRank(TrainSettings cli, Collective ranks)
    {
        // Rank 0 owns the run folder (lock, run.json, checkpoints, metrics, samples) and the console; the others only read it.
        bool lead = ranks.Rank == 0;
        var log = lead ? Console.Out : TextWriter.Null;
        using var folder = lead ? RunFolder.Open(cli.OutDir, log) : null;   // --out is checked and locked before any work
        ranks.Barrier();
        using var backend = CreateBackend(cli.Device, ranks.LocalRank);
        var (s, config) = RunSettings.Resolve(cli, backend.Kind == BackendKind.Cuda ? "gpu-demo" : "cpu-demo", log);
        if (s.Bf16) log.WriteLine("bf16 mixed precision: matmul/conv/attention operands stored in bf16, f32 accumulation and f32 master weights");
        // On GPUs the gradients go through NCCL on the device; MPI carries everything else.
        using var nccl = backend.Kind == BackendKind.Cuda && (ranks.WorldSize > 1 || Distributed.DataParallel.NcclRequested) ? NcclCollective.Open(ranks, backend) : null;
        using var signals = new StopSignals(log, () => folder?.Release());
        try
        {
            var trainer = new Trainer(s, config, backend, log, signals.Token, collective: nccl ?? ranks);
            var r = trainer.Run();
            log.WriteLine();
            log.WriteLine($"checkpoint: {r.FinalCheckpoint}");
            foreach (var f in r.SampleFiles) log.WriteLine($"samples:    {f}");
            if (r.LossPlot is not null) log.WriteLine($"loss plot:  {r.LossPlot}");
            log.WriteLine($"metrics:    {Path.Combine(s.OutDir, "metrics.jsonl")}");
            return r.Interrupted ? signals.ExitCode : ExitCodes.Ok;
        }
        catch (DeviceOutOfMemoryException e)
        {
            Console.Error.WriteLine($"mdm: {(lead ? "" : $"rank {ranks.Rank}: ")}{Trainer.OutOfMemoryAdvice(e, backend, s.Batch ?? config.Training.Batch)}");
            if (ranks.WorldSize > 1) ranks.Abort(ExitCodes.Internal);
            return ExitCodes.Internal;
        }
    }

    static int Sample(SampleSettings s)
    {
        s.Validate();
        using var backend = CreateBackend(s.Device);
        var files = SampleCommand.Run(s, backend, Console.Out);
        foreach (var f in files) Console.WriteLine($"wrote {f}");
        return 0;
    }

    static int Info(string? configPath, string? preset, string? checkpoint, string? device)
    {
        Console.WriteLine("Mdm: Matryoshka Diffusion Models on hand-written kernels (ILGPU + System.Numerics.Tensors)");
        Console.WriteLine("devices:");
        using (var cpu = Backends.Create(BackendKind.Cpu)) Console.WriteLine($"  {cpu.Info}");
        var (ok, why) = Backends.CudaStatus();
        if (ok) { using var cuda = Backends.Create(BackendKind.Cuda); Console.WriteLine($"  {cuda.Info}"); }
        else Console.WriteLine($"  cuda      not available: {why}");
        Console.WriteLine("  ilgpu-cpu ILGPU CPU accelerator (the GPU kernels on the CPU; for tests, very slow)");
        if (device is not null) { using var b = CreateBackend(device); Console.WriteLine($"selected: {b.Info}"); }
        Console.WriteLine($"presets: {string.Join(", ", RunConfig.PresetNames)}");
        RunConfig? run = null;
        if (checkpoint is not null)
        {
            using var r = CheckpointReader.Open(checkpoint);
            run = RunConfig.Parse(r.GetMetadata("config") ?? throw new UsageException($"{checkpoint}: no config in its metadata"), checkpoint);
            Console.WriteLine($"checkpoint {checkpoint}: step {r.Step}, groups {string.Join(", ", r.Groups)}");
        }
        else if (configPath is not null) run = RunConfig.Load(configPath);
        else if (preset is not null) run = RunConfig.Preset(preset);
        if (run is not null)
            for (int s = 0; s < run.StageCount; s++)
            {
                var m = run.StageModel(s);
                var count = ModelFactory.CountParameters(m);
                Console.WriteLine();
                Console.WriteLine($"{run.Source}{(run.StageCount > 1 ? $", stage {s}" : "")}: resolutions {string.Join(" → ", m.Resolutions.Reverse())} px, {count.Total:N0} parameters ({count.Total / 1e6:F1} M)");
                Console.WriteLine(count.Format());
            }
        return 0;
    }

    /// <summary>No arguments: train the demo preset on built-in data, then sample; prints where everything went.</summary>
    static int Demo()
    {
        var outDir = Path.Combine("out", "demo-" + DateTime.Now.ToString("yyyyMMdd-HHmmss", System.Globalization.CultureInfo.InvariantCulture));
        // On a GPU the demo trains in bf16 autocast: matmuls and convolutions on tensor cores.
        bool gpu = Backends.CudaStatus().Available && Environment.GetEnvironmentVariable("MDM_DEVICE") is null or "" or "cuda";
        Console.WriteLine("Mdm demo: trains a small nested diffusion model on built-in procedural shapes (no download), then samples" +
                          (gpu ? "." : " (about 2½–3 minutes on 2 CPU cores)."));
        Console.WriteLine($"(train --help for the real thing; outputs go to {outDir})");
        Console.WriteLine();
        return Guard(() => Train(new TrainSettings { Data = DatasetFactory.Procedural, OutDir = outDir, Bf16 = gpu }));
    }
}
