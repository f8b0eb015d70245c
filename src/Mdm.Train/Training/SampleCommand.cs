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
            int numClasses = modelConfig.NumClasses;
            if (s.ClassLabel is { } c && (numClasses == 0 || c >= numClasses))
                throw new UsageException($"--class {c}: the model {(numClasses == 0 ? "is not class-conditional" : $"has classes 0..{numClasses - 1}")}");
            var labels = numClasses > 0 ? Enumerable.Range(0, s.Count).Select(i => s.ClassLabel ?? i % numClasses).ToArray() : null;
            var cfg = new SamplerConfig
            {
                NumSteps = s.Steps,
                DdimEta = s.Sampler == "ddim" ? s.Eta : null,
                Threshold = s.Threshold switch { "none" => ThresholdType.None, "clip" => ThresholdType.Clip, "dynamic" => ThresholdType.Dynamic, _ => ThresholdType.DynamicDeepFloyd },
                GuidanceScale = s.Cfg != 1.0 && numClasses > 0 ? s.Cfg : null,
            };
            if (s.Cfg != 1.0 && numClasses == 0) log.WriteLine("note: --cfg needs a class-conditional model; sampling without guidance");
            log.WriteLine($"sampling {s.Count} images with {s.Sampler} ({s.Steps} steps{(s.Sampler == "ddim" ? $", eta {s.Eta}" : "")}), " +
                          $"{group} weights of step {reader.Step}, threshold {s.Threshold}, cfg {s.Cfg} on {backend.Info.KindName}");
            if (s.Bf16) log.WriteLine("bf16 autocast: the denoiser's matmul/conv/attention operands rounded to bf16 (tensor cores on CUDA)");
            Tensor[] images;
            using (MixedPrecision.Bf16(s.Bf16))
                images = new Sampler(model, run.Diffusion).Sample(s.Count, new Conditioning(ClassLabels: labels), cfg, s.Seed);
            var folder = Path.GetDirectoryName(Path.GetFullPath(s.OutFile))!;
            return SampleWriter.Write(folder, Path.GetFileNameWithoutExtension(s.OutFile), images, modelConfig, highestOnly: false);
        }
        finally { model.DisposeParameters(); }
    }
}
