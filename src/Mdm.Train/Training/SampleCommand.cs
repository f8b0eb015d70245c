using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Checkpoints;
using Mdm.Model.Config;
using Mdm.Model.Diffusion;
using Mdm.Train.Cli;
using Mdm.Train.Config;

namespace Mdm.Train.Training;

/// <summary>`sample`: loads a checkpoint (EMA weights by default) and writes a grid per resolution.</summary>
public static class SampleCommand
{
    public static IReadOnlyList<string> Run(SampleSettings s, Backend backend, TextWriter log)
    {
        using var reader = CheckpointReader.Open(s.Checkpoint);
        var configJson = reader.GetMetadata("config") ?? throw new UsageException($"--checkpoint {s.Checkpoint}: no run config in its metadata (not an Mdm training checkpoint)");
        var run = RunConfig.Parse(configJson, s.Checkpoint);
        var modelConfig = reader.GetMetadata("stage_model") is { } sm ? ModelConfig.Parse(sm) : run.Model;
        var model = ModelFactory.Create(modelConfig, backend);
        try
        {
            string group = s.UseEma && reader.HasGroup("ema") ? "ema" : "model";
            reader.LoadTensors(group, model.NamedParameters().Select(p => (p.Name, p.Value.Data)));
            RefuseNonFinite(model, s.Checkpoint, group);
            int numClasses = modelConfig.NumClasses;
            if (s.ClassLabel is { } c && (numClasses == 0 || c >= numClasses))
                throw new UsageException($"--class {c}: the model {(numClasses == 0 ? "is not class-conditional" : $"has classes 0..{numClasses - 1}")}");
            if (s.Cfg != 1.0 && numClasses == 0)
                throw new UsageException($"--cfg {s.Cfg}: classifier-free guidance needs a class-conditional model; this one has no classes");
            var files = SampleWriter.FileNames(s.OutFile, modelConfig);
            if (modelConfig.Frames > 1 && s.OutFile.EndsWith(".png", StringComparison.OrdinalIgnoreCase) && File.Exists(files[0]))
                throw new UsageException($"--out {s.OutFile}: a video model writes {files[0]} (animation), which exists; give --out {files[0]} to replace it");
            var labels = numClasses > 0 ? Enumerable.Range(0, s.Count).Select(i => s.ClassLabel ?? i % numClasses).ToArray() : null;
            var cfg = new SamplerConfig
            {
                NumSteps = s.Steps,
                DdimEta = s.Sampler == "ddim" ? s.Eta : null,
                Threshold = s.Threshold switch { "none" => ThresholdType.None, "clip" => ThresholdType.Clip, "dynamic" => ThresholdType.Dynamic, _ => ThresholdType.DynamicDeepFloyd },
                GuidanceScale = s.Cfg != 1.0 && numClasses > 0 ? s.Cfg : null,
            };
            string what = modelConfig.Frames > 1 ? $"{s.Count} clips of {modelConfig.Frames} frames" : $"{s.Count} images";
            log.WriteLine($"sampling {what} with {s.Sampler} ({s.Steps} steps{(s.Sampler == "ddim" ? $", eta {s.Eta}" : "")}), " +
                          $"{group} weights of step {reader.Step}, threshold {s.Threshold}, cfg {s.Cfg} on {backend.Info.KindName}");
            if (s.Bf16) log.WriteLine("bf16 autocast: the denoiser's matmul/conv/attention operands stored in bf16 (tensor cores on CUDA)");
            Tensor[] images;
            using (MixedPrecision.Bf16(s.Bf16, AutocastStorage.Bf16))
                images = new Sampler(model, run.Diffusion) { UseGraphs = s.Graph, GraphLog = line => log.WriteLine($"mdm: {line}") }
                    .Sample(s.Count, new Conditioning(ClassLabels: labels), cfg, s.Seed);
            var folder = Path.GetDirectoryName(Path.GetFullPath(s.OutFile))!;
            return SampleWriter.Write(folder, Path.GetFileNameWithoutExtension(s.OutFile), images, modelConfig, highestOnly: false);
        }
        finally { model.DisposeParameters(); }
    }

    /// <summary>NaN or infinite weights (a diverged run) would sample a blank grid: refuse, saying how many and where.</summary>
    static void RefuseNonFinite(Mdm.Model.Nn.UNet model, string checkpoint, string group)
    {
        long bad = 0, total = 0;
        string? first = null;
        foreach (var (name, p) in model.NamedParameters())
        {
            var values = p.Data.ToArray();
            total += values.Length;
            int n = values.Count(v => !float.IsFinite(v));
            if (n > 0) { bad += n; first ??= name; }
        }
        if (bad > 0)
            throw new CheckpointFormatException(checkpoint, $"{bad:N0} of {total:N0} '{group}' weights are NaN or infinite (first in '{first}'): " +
                                                            "the run diverged before this checkpoint; sample an earlier one");
    }
}
