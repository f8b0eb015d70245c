using System.Diagnostics;
using System.Globalization;
using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Kernels.Collectives;
using Mdm.Kernels.Gpu;
using Mdm.Model;
using Mdm.Model.Checkpoints;
using Mdm.Model.Config;
using Mdm.Model.Diffusion;
using Mdm.Model.Nn;
using Mdm.Model.Training;
using Mdm.Train.Cli;
using Mdm.Train.Config;
using Mdm.Train.Data;
using Mdm.Train.Distributed;
using Mdm.Train.Output;
using Mdm.Train.Progress;

namespace Mdm.Train.Training;

/// <summary>Raised when training must stop (10 non-finite losses in a row); the last good checkpoint is kept.</summary>
public sealed class TrainingHaltedException(string message) : Exception(message);

/// <summary>
/// The training loop: progressive stages (each stage's inner model starts from the previous stage's weights), AdamW
/// with warmup and global-norm clipping, EMA, gradient accumulation, label dropout for guidance, NaN-step skipping,
/// atomic checkpoints (model, EMA, optimizer, data position) every N steps and on Ctrl-C, exact resume, metrics,
/// sample grids and a loss plot. Data-parallel over <c>collective</c>: each rank trains its slice of every global batch,
/// the gradients are averaged over the ranks before the clip, and rank 0 alone writes (checkpoints, metrics, samples).
/// </summary>
/// <param name="wrapCheckpointOutput">Wraps each checkpoint's output stream (failure injection in tests).</param>
/// <param name="collective">The ranks of a data-parallel run (null: this process alone).</param>
public sealed class Trainer(TrainSettings settings, RunConfig config, Backend backend, TextWriter log, CancellationToken cancel,
    Func<int, IDataset>? datasetForImageSize = null, Func<Stream, Stream>? wrapCheckpointOutput = null, Collective? collective = null)
{
    readonly Collective ranks = collective ?? new SingleProcessCollective();
    bool Lead => ranks.Rank == 0;

    public const string CheckpointFolder = "checkpoints";
    public const int NanStreakLimit = 10;

    string Out => settings.OutDir;
    string CheckpointDir => Path.Combine(Out, CheckpointFolder);
    static string Prefix(int stage) => $"stage{stage}";

    public sealed record Result(string? FinalCheckpoint, IReadOnlyList<string> SampleFiles, string? LossPlot, bool Interrupted);

    public Result Run()
    {
        if (Lead)
        {
            Directory.CreateDirectory(Out);
            Directory.CreateDirectory(CheckpointDir);
        }
        var start = FindResumePoint();
        var runSettings = RunSettings.From(settings, config);
        // A rank that reads another --out (no shared file system) or got other flags would train something else.
        DataParallel.CheckSameAsRankZero(ranks, "the run settings and resume point", runSettings.ToJson() + start);
        if (Lead)
        {
            runSettings.Save(Out);
            // Steps logged after the checkpoint we continue from (a kill before the next save) will run again.
            TrimMetrics(start.Stage, start.Step);
        }
        string? lastCheckpoint = start.PreviousStage;
        var samples = new List<string>();
        for (int stage = start.Stage; stage < config.StageCount; stage++)
        {
            var r = RunStage(stage, stage == start.Stage ? start.Checkpoint : null, lastCheckpoint);
            lastCheckpoint = r.Checkpoint;
            samples.AddRange(r.Samples);
            if (r.Interrupted) return new Result(lastCheckpoint, samples, Lead ? WriteLossPlot() : null, true);
        }
        return new Result(lastCheckpoint, samples, Lead ? WriteLossPlot() : null, false);
    }

    /// <summary>Where to start: the stage, the checkpoint to resume from (null = fresh) and its step, and at a stage
    /// boundary the finished stage's checkpoint that initialises the next stage's inner model.</summary>
    sealed record StartPoint(int Stage, string? Checkpoint, long Step, string? PreviousStage);

    /// <summary>The newest checkpoint that opens, passes its checksum and holds a valid training state; the ones
    /// skipped on the way are named.</summary>
    StartPoint FindResumePoint()
    {
        var existing = Enumerable.Range(0, config.StageCount)
            .SelectMany(s => CheckpointWriter.List(CheckpointDir, Prefix(s)).Select(c => (Stage: s, c.Path))).ToList();
        if (existing.Count == 0) return FreshStart();
        if (!settings.Resume)
            throw new UsageException($"{Out} already holds checkpoints ({existing[^1].Path}); pass --resume to continue that run, or choose another --out");
        var skipped = new List<string>();
        for (int i = existing.Count - 1; i >= 0; i--)
        {
            var (stage, path) = existing[i];
            TrainingState state;
            try
            {
                using var reader = CheckpointReader.Open(path);
                state = TrainingState.Read(reader, stage, StageSteps(stage), NanStreakLimit);
            }
            catch (Exception e) when (e is CheckpointFormatException or KeyNotFoundException or IOException or UnauthorizedAccessException)
            {
                log.WriteLine($"resume: skipping {path}: {e.Message}");
                skipped.Add(Path.GetFileName(path));
                continue;
            }
            if (skipped.Count > 0) log.WriteLine($"resume: falling back to {Path.GetFileName(path)}; skipped {string.Join(", ", skipped)}");
            if (state.Step >= StageSteps(stage) && stage + 1 < config.StageCount)
            {
                log.WriteLine($"resume: stage {stage} finished at step {state.Step}; continuing with stage {stage + 1} from {path}");
                return new StartPoint(stage + 1, null, 0, path);
            }
            log.WriteLine($"resume: {path} ({state})");
            return new StartPoint(stage, path, state.Step, null);
        }
        throw new UsageException($"--resume: none of the {existing.Count} checkpoints in {CheckpointDir} can be used ({string.Join(", ", skipped)}); " +
                                 "start a new run with another --out");
    }

    StartPoint FreshStart()
    {
        if (settings.Resume) log.WriteLine($"--resume: no checkpoint in {CheckpointDir}, starting fresh");
        return new StartPoint(0, null, 0, null);
    }

    int StageSteps(int stage) => settings.Steps ?? config.Training.Stages?[stage].Steps ?? config.Training.Steps;
    int StageBatch(int stage) => settings.Batch ?? config.Training.Stages?[stage].Batch ?? config.Training.Batch;

    sealed record StageResult(string? Checkpoint, IReadOnlyList<string> Samples, bool Interrupted);

    StageResult RunStage(int stage, string? resumeFrom, string? previousStageCheckpoint)
    {
        var t = config.Training;
        var modelConfig = config.StageModel(stage);
        int steps = StageSteps(stage), batchSize = StageBatch(stage);
        var data = DataValidation.Check(datasetForImageSize?.Invoke(modelConfig.ImageSize)
                   ?? DatasetFactory.Open(settings.Data, modelConfig.ImageSize, modelConfig.ImageChannels, modelConfig.Frames, (long)settings.Seed, settings.MaxPerClass),
                   settings.Data, settings.SkipBadData, log);
        int numClasses = modelConfig.NumClasses;
        if (numClasses > 0 && data.NumClasses > numClasses)
            throw new UsageException($"--data {settings.Data}: {data.NumClasses} classes, but the model embeds only {numClasses} (model numClasses)");
        var text = data as ITextDataset;
        if ((text is not null) != (modelConfig.TextFeatureDim > 0) || (text is not null && text.TextDim != modelConfig.TextFeatureDim))
            throw new UsageException($"--data {settings.Data}: " + (text is null ? $"the model is text-conditional ({modelConfig.TextFeatureDim}-wide tokens) but the data has no captions; use shards:PATTERN"
                                                                   : $"the data's text embeddings are {text.TextDim} wide, the model takes {Math.Max(0, modelConfig.TextFeatureDim)} (conditioningFeatureDim)"));
        if (batchSize > data.Count)
            throw new UsageException($"--batch {batchSize} is larger than the dataset ({data.Count} images)");
        if (batchSize % ranks.WorldSize != 0)
            throw new UsageException($"--batch {batchSize} does not split over {ranks.WorldSize} processes; give a global batch divisible by {ranks.WorldSize}");
        DataParallel.CheckSameAsRankZero(ranks, $"the validated data ({data.Count} images)", $"{data.Count} {data.NumClasses} {string.Join(",", data.SampleShape)}");

        var model = ModelFactory.Create(modelConfig, backend, settings.Seed);
        var parameters = model.NamedParameters().ToList();
        var options = t.AdamW
            ? AdamOptions.AdamW(settings.Lr ?? t.Lr, t.WeightDecay, t.Beta1, t.Beta2, t.Eps)
            : AdamOptions.Adam(settings.Lr ?? t.Lr, t.WeightDecay, t.Beta1, t.Beta2, t.Eps);
        var schedule = new LearningRateSchedule(settings.Lr ?? t.Lr, t.WarmupSteps);
        var state = new TrainingState(stage, 0, 0, 0, 0, 0, 0);
        log.WriteLine($"stage {stage}{(config.Training.Stages is { } st ? $" ({st[stage].Name})" : "")}: {string.Join("→", modelConfig.Resolutions.Reverse())} px, " +
                      $"{model.ParameterCount / 1e6:F2} M parameters, batch {batchSize}, {steps} steps, data {settings.Data} ({data.Count} images), {backend.Info.KindName}");
        if (ranks.WorldSize > 1 || ranks is NcclCollective)
            log.WriteLine($"data-parallel: {ranks.WorldSize} process{(ranks.WorldSize == 1 ? "" : "es")} of {batchSize / ranks.WorldSize} samples each, gradients averaged over {ranks.Name}");

        using var optimizer = new AdamWOptimizer(parameters, options, t.GradClip);
        ExponentialMovingAverage? ema = null;
        try
        {
            if (resumeFrom is not null)
            {
                using var reader = CheckpointReader.Open(resumeFrom);
                reader.LoadModule("model", model);
                state = TrainingState.Read(reader, stage, steps, NanStreakLimit);
                reader.LoadTensors("optimizer", optimizer.StateTensors());
                optimizer.StepCount = state.OptimizerSteps;
                ema = new ExponentialMovingAverage(parameters, t.EmaDecay, t.EmaWarmup) { Updates = state.EmaUpdates };
                reader.LoadTensors("ema", ema.Tensors());
            }
            else
            {
                if (previousStageCheckpoint is not null && stage > 0) InitialiseFromPreviousStage(model, previousStageCheckpoint, stage);
                ema = new ExponentialMovingAverage(parameters, t.EmaDecay, t.EmaWarmup);
            }

            var loss = new DiffusionLoss(model, config.Diffusion);
            using var loader = new BatchLoader(data, batchSize, (long)settings.Seed + stage, t.RandomFlip, state.Epoch, state.Position, workers: settings.DataWorkers,
                                               shard: ranks.Rank, shards: ranks.WorldSize);
            using var deviceBatches = new DeviceBatches(loader, backend);
            using var gradients = ranks.WorldSize > 1 || ranks is NcclCollective ? GradientExchange(parameters.Select(p => p.Value), backend) : null;
            if (gradients is not null) log.WriteLine($"gradients: {gradients.Describe()}");
            var stageClock = Stopwatch.StartNew();
            using var metrics = Lead ? new MetricsLog(Path.Combine(Out, "metrics.jsonl"), append: true) : null;
            var writer = new CheckpointWriter(CheckpointDir, Prefix(stage), settings.KeepLast) { WrapOutput = wrapCheckpointOutput };
            var progress = new ProgressReporter(steps, state.Step, log);
            int accumulation = settings.GradAccumulation ?? t.GradAccumulation;
            int sampleEvery = settings.SampleEvery ?? t.SampleEvery;
            int checkpointEvery = settings.CheckpointEvery ?? t.CheckpointEvery;
            var samples = new List<string>();
            string? lastCheckpoint = null;
            long savedStep = state.Step;

            for (long step = state.Step + 1; step <= steps; step++)
            {
                var sw = Stopwatch.StartNew();
                double lossSum = 0;
                bool finite = true;
                var resolutionSums = new double[accumulation, modelConfig.Resolutions.Count];
                var resolutionCounts = new double[accumulation, modelConfig.Resolutions.Count];
                Batch? last = null;
                for (int micro = 0; micro < accumulation; micro++)
                {
                    Batch batch;
                    Tensor images;   // owned by deviceBatches
                    try { (batch, images) = deviceBatches.Next(); }
                    catch (Exception e) when (e is ImageFormatException or DataFormatException or IOException or UnauthorizedAccessException)
                    {
                        // Validation read every file before step 1; if one changed since, keep the steps done so far.
                        if (state.Step > savedStep && Lead)
                            log.WriteLine($"data error at step {step}: checkpoint {SaveCheckpoint(writer, model, optimizer, ema, state, stage)} written first");
                        throw;
                    }
                    last = batch;
                    var dropped = LabelDropout.Dropped(settings.Seed, batch.Size, step, micro, t.LabelDropout, batch.FirstSample);
                    using var textBatch = text is null ? null : new TextBatch(backend, batch, text, dropped);
                    var cond = textBatch?.Conditioning
                               ?? (numClasses > 0 ? new Conditioning(ClassLabels: LabelDropout.Apply(batch.Labels, dropped)) : Conditioning.None);
                    using var graph = new Graph();
                    using var autocast = MixedPrecision.Bf16(settings.Bf16, AutocastStorage.Bf16);
                    using var result = loss.Compute(images, cond, settings.Seed, (ulong)((step - 1) * accumulation + micro), new BatchSlice(batch.FirstSample, batchSize));
                    float value = result.Loss.Item();
                    if (!float.IsFinite(value)) { finite = false; lossSum = value; break; }
                    lossSum += value / accumulation;
                    var perRes = result.ResolutionLossSums();
                    for (int r = 0; r < perRes.Length; r++) (resolutionSums[micro, r], resolutionCounts[micro, r]) = perRes[r];
                    var scaled = accumulation == 1 ? result.Loss : F.Scale(result.Loss, 1f / accumulation);
                    // Buckets start their all-reduce during the backward that makes the gradients final: the last micro-batch's.
                    scaled.Backward(gradientReady: micro == accumulation - 1 ? gradients?.GradientReady : null);
                    deviceBatches.Prefetch();   // the next batch's copy overlaps the queued backward and update
                }
                gradients?.Finish();
                // One small all-reduce makes the step's loss, per-resolution losses and stop request the same on every rank.
                var global = StepTotals(lossSum, resolutionSums, resolutionCounts, cancel.IsCancellationRequested);
                lossSum = global.Loss;
                finite = double.IsFinite(lossSum);
                var resolutionLosses = global.ResolutionLosses;
                double lr = schedule.At(step);
                double gradNorm = double.NaN;
                int nanStreak = state.NanStreak;
                if (finite)
                {
                    using var norm = optimizer.Step(lr);
                    gradNorm = norm.Item();
                    ema.Update();
                    nanStreak = 0;
                }
                else
                {
                    optimizer.ZeroGrad();
                    nanStreak++;
                    log.WriteLine($"warning: step {step}: loss is {lossSum}; step skipped ({nanStreak} in a row, halting at {NanStreakLimit})");
                }
                state = state with
                {
                    Step = step, Epoch = last!.NextEpoch, Position = last.NextPosition,
                    OptimizerSteps = optimizer.StepCount, EmaUpdates = ema.Updates, NanStreak = nanStreak,
                };
                var row = new Dictionary<string, object>
                {
                    ["stage"] = stage, ["step"] = step, ["loss"] = finite ? lossSum : double.NaN, ["lr"] = lr,
                    ["grad_norm"] = gradNorm, ["seconds"] = sw.Elapsed.TotalSeconds, ["data_wait_seconds"] = loader.WaitSeconds,
                };
                for (int r = 0; r < resolutionLosses.Length; r++) row[$"loss_{r}_{modelConfig.Resolutions[r]}px"] = resolutionLosses[r];
                if (!finite) row["loss"] = "nan";
                if (gradients is not null && finite) row["allreduce_seconds"] = gradients.LastSeconds;
                metrics?.Write(row);
                progress.Step(step, finite ? lossSum : double.NaN, batchSize * accumulation, lr, double.IsFinite(gradNorm) ? $"|g| {gradNorm:F3}" : null);

                if (nanStreak >= NanStreakLimit)
                    throw new TrainingHaltedException($"training halted at step {step}: {NanStreakLimit} non-finite losses in a row " +
                        $"(last checkpoint: {lastCheckpoint ?? "none"}). Lower --lr or check the data.");
                bool stopping = global.Stop;
                if ((checkpointEvery > 0 && step % checkpointEvery == 0) || step == steps || stopping)
                {
                    lastCheckpoint = SaveCheckpoint(writer, model, optimizer, ema, state, stage);
                    savedStep = step;
                }
                if (sampleEvery > 0 && step % sampleEvery == 0 && step != steps && !stopping && Lead)
                    samples.AddRange(SampleGrid(modelConfig, ema, $"step-{step:D6}", highestOnly: true, numClasses, text));
                if (stopping || step == steps)
                {
                    // Decode rate summed over the ranks; the wait is rank 0's.
                    double imagesPerSecond = DataParallel.SumOverRanks(ranks, [loader.ImagesPerSecond])[0];
                    log.WriteLine($"data: {loader.Workers} decode worker(s){(ranks.WorldSize > 1 ? $" on each of {ranks.WorldSize} processes" : "")}, {imagesPerSecond:F0} img/s; the trainer waited {loader.WaitSeconds:F2} s " +
                                  $"of {stageClock.Elapsed.TotalSeconds:F1} s on data ({100 * loader.WaitSeconds / Math.Max(1e-9, stageClock.Elapsed.TotalSeconds):F1} %)");
                }
                if ((stopping || step == steps) && gradients is GradientBuckets buckets)
                    log.WriteLine($"gradients, last step: {buckets.StartedBeforeLastGradient} of {buckets.Count} bucket all-reduces started before the backward's last gradient, " +
                                  $"{buckets.CompletedInBackward} completed within it");
                if (stopping)
                {
                    log.WriteLine($"interrupted at step {step}: checkpoint {lastCheckpoint}; continue with --resume");
                    return new StageResult(lastCheckpoint, samples, true);
                }
            }
            if (Lead) samples.AddRange(SampleGrid(modelConfig, ema, config.StageCount > 1 ? $"samples-stage{stage}" : "samples", highestOnly: false, numClasses, text));
            // The next stage starts from this one's final checkpoint, which every rank reads once rank 0 has written it.
            ranks.Barrier();
            return new StageResult(lastCheckpoint ?? CheckpointWriter.List(CheckpointDir, Prefix(stage))[^1].Path, samples, false);
        }
        finally
        {
            ema?.Dispose();
            model.DisposeParameters();
        }
    }

    /// <summary>Saves a checkpoint (rank 0 only; the others return the name it gets).</summary>
    string SaveCheckpoint(CheckpointWriter writer, Mdm.Autograd.Nn.Module model, AdamWOptimizer optimizer, ExponentialMovingAverage ema,
        TrainingState state, int stage)
    {
        if (!Lead) return writer.PathFor(state.Step);
        var ckpt = new Mdm.Model.Checkpoints.Checkpoint(state.Step)
            .AddModule("model", model)
            .AddTensors("ema", ema.Tensors())
            .AddTensors("optimizer", optimizer.StateTensors())
            .AddIntegers(TrainingState.Group, state.ToIntegers());
        ckpt.Metadata["config"] = config.Json;
        ckpt.Metadata["config_source"] = config.Source;
        ckpt.Metadata["stage"] = stage.ToString(CultureInfo.InvariantCulture);
        ckpt.Metadata["stage_model"] = config.StageModel(stage).ToJson();
        ckpt.Metadata["data"] = settings.Data;
        ckpt.Metadata["seed"] = settings.Seed.ToString(CultureInfo.InvariantCulture);
        ckpt.Metadata[RunSettings.MetadataKey] = RunSettings.From(settings, config).ToJson();
        try { return writer.Save(ckpt); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var kept = CheckpointWriter.List(CheckpointDir, Prefix(stage));
            string keptText = kept.Count == 0 ? "no earlier checkpoint of this stage" : $"the earlier checkpoints are kept ({string.Join(", ", kept.Select(k => Path.GetFileName(k.Path)))})";
            string why = DiskSpace.IsDiskFull(e)
                ? $"disk full: it needs {ckpt.FileLength:N0} bytes, {(DiskSpace.Free(CheckpointDir) is { } free ? $"{free:N0} bytes are free" : "free space unknown")}"
                : e.Message;
            throw new CheckpointWriteException($"could not write the step-{state.Step} checkpoint to {CheckpointDir}: {why}; {keptText}. " +
                                               "Make room, then continue with --resume", e);
        }
    }

    /// <summary>Buckets overlapping the backward unless --grad-buckets off asked for one all-reduce after it.</summary>
    IGradientExchange GradientExchange(IEnumerable<Variable> parameters, Backend backend) =>
        settings.GradBucketMegabytes is { } megabytes ? new GradientBuckets(ranks, parameters, backend, megabytes) : new GradientAllReduce(ranks, parameters, backend);

    sealed record Totals(double Loss, double[] ResolutionLosses, bool Stop);

    /// <summary>The step's loss (mean over micro-batches and ranks; NaN if any rank's was not finite), each resolution's
    /// mean loss over the samples it trains on (per micro-batch, then over micro-batches), and whether any rank must stop.</summary>
    Totals StepTotals(double lossSum, double[,] sums, double[,] counts, bool stop)
    {
        int micro = sums.GetLength(0), levels = sums.GetLength(1);
        var values = new double[2 + 2 * micro * levels];
        values[0] = lossSum;
        values[1] = stop ? 1 : 0;
        Buffer.BlockCopy(sums, 0, values, 2 * sizeof(double), micro * levels * sizeof(double));
        Buffer.BlockCopy(counts, 0, values, (2 + micro * levels) * sizeof(double), micro * levels * sizeof(double));
        var total = DataParallel.SumOverRanks(ranks, values);
        var resolution = new double[levels];
        for (int r = 0; r < levels; r++)
            for (int m = 0; m < micro; m++)
            {
                double count = total[2 + micro * levels + m * levels + r];
                resolution[r] += (count == 0 ? double.NaN : total[2 + m * levels + r] / count) / micro;
            }
        return new Totals(total[0] / ranks.WorldSize, resolution, total[1] > 0);
    }

    void InitialiseFromPreviousStage(UNet model, string previous, int stage)
    {
        using var reader = CheckpointReader.Open(previous);
        // The previous stage's model becomes this model's inner_unet (its EMA weights: what one would sample from).
        var report = reader.LoadTensors("ema", model.NamedParameters().Where(p => p.Name.StartsWith("inner_unet.", StringComparison.Ordinal))
            .Select(p => (p.Name["inner_unet.".Length..], p.Value.Data)), new StateDictLoadOptions { Strict = true });
        log.WriteLine($"stage {stage}: inner model initialised from {previous} ({report.Loaded.Count} tensors)");
    }

    IReadOnlyList<string> SampleGrid(ModelConfig modelConfig, ExponentialMovingAverage ema, string name, bool highestOnly, int numClasses, ITextDataset? text)
    {
        if (text is not null) return TextSampleGrid(modelConfig, ema, name, highestOnly, text);
        var sampleModel = ModelFactory.Create(modelConfig, backend, settings.Seed);
        try
        {
            ema.CopyTo(sampleModel.NamedParameters());
            int n = 16;
            var labels = numClasses > 0 ? Enumerable.Range(0, n).Select(i => i % numClasses).ToArray() : null;
            var cfg = new SamplerConfig { NumSteps = 50, DdimEta = 0, Threshold = ThresholdType.Clip, GuidanceScale = numClasses > 0 ? 2.0 : null };
            if (modelConfig.Frames > 1) { n = 6; labels = labels?.Take(n).ToArray(); }   // clips: fewer, each with all its frames
            var images = new Sampler(sampleModel, config.Diffusion).Sample(n, new Conditioning(ClassLabels: labels), cfg, settings.Seed + 17);
            return SampleWriter.Write(Path.Combine(Out, "samples"), name, images, modelConfig, highestOnly);
        }
        finally { sampleModel.DisposeParameters(); }
    }

    /// <summary>Samples for the first captions of the data (written beside the grid), guided away from the empty caption.</summary>
    IReadOnlyList<string> TextSampleGrid(ModelConfig modelConfig, ExponentialMovingAverage ema, string name, bool highestOnly, ITextDataset text)
    {
        var sampleModel = ModelFactory.Create(modelConfig, backend, settings.Seed);
        var (positive, negative, owned) = TextBatch.ForSampling(backend, text, n: 8);
        try
        {
            ema.CopyTo(sampleModel.NamedParameters());
            var cfg = new SamplerConfig { NumSteps = 50, DdimEta = 0, Threshold = ThresholdType.Clip, GuidanceScale = 2.0 };
            var images = new Sampler(sampleModel, config.Diffusion).Sample(8, positive, cfg, settings.Seed + 17, negative);
            var written = SampleWriter.Write(Path.Combine(Out, "samples"), name, images, modelConfig, highestOnly);
            File.WriteAllLines(Path.Combine(Out, "samples", name + "-captions.txt"), Enumerable.Range(0, 8).Select(i => text.CaptionOf(i % text.Count)));
            return written;
        }
        finally
        {
            foreach (var t in owned) t.Dispose();
            sampleModel.DisposeParameters();
        }
    }

    void TrimMetrics(int stage, long step)
    {
        var path = Path.Combine(Out, "metrics.jsonl");
        if (!File.Exists(path)) return;
        var keep = File.ReadLines(path).Where(line =>
        {
            try
            {
                using var doc = System.Text.Json.JsonDocument.Parse(line);
                var root = doc.RootElement;
                int s = root.GetProperty("stage").GetInt32();
                return s < stage || (s == stage && root.GetProperty("step").GetInt64() <= step);
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException) { return false; }
        }).ToList();
        AtomicFile.Write(path, stream => { using var w = new StreamWriter(stream, leaveOpen: true); foreach (var l in keep) w.WriteLine(l); });
    }

    string? WriteLossPlot()
    {
        var points = MetricsLog.ReadLoss(Path.Combine(Out, "metrics.jsonl"));
        if (points.Count < 2) return null;
        var path = Path.Combine(Out, "loss.svg");
        LossPlot.Save(path, points.Select((p, i) => (double)i + 1).ToList(), points.Select(p => p.Loss).ToList(),
            new LossPlotOptions { Title = "training loss (all stages)", XLabel = "step" });
        return path;
    }

    /// <summary>For CUDA out-of-memory: the bytes asked for, and a batch size that should fit.</summary>
    public static string OutOfMemoryAdvice(DeviceOutOfMemoryException e, Backend backend, int batch)
    {
        var m = backend.Memory;
        double perSample = Math.Max(1, (double)(m.PeakLiveBytes + e.RequestedBytes) / Math.Max(batch, 1));
        int fits = (int)Math.Max(1, Math.Floor(backend.Info.MemoryBytes * 0.85 / perSample));
        return $"out of GPU memory asking for {e.RequestedBytes:N0} bytes with batch {batch} (peak {m.PeakLiveBytes / 1048576.0:F0} MiB of " +
               $"{backend.Info.MemoryBytes / 1048576.0:F0} MiB). Try --batch {Math.Min(fits, Math.Max(1, batch / 2))}, or --grad-accumulation to keep the effective batch.";
    }
}
