using System.Diagnostics;
using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Config;
using Mdm.Model.Diffusion;

namespace Mdm.Bench;

/// <summary>
/// Sampling speed: `Mdm.Bench sample --config configs/imagenet-64-256.json [--batch 8] [--steps 250] [--guidance 3]
/// [--device cpu|cuda|ilgpu-cpu] [--bf16] [--graph] [--json FILE]`. Ancestral DDPM (η = 1) over every resolution at once, with
/// classifier-free guidance when the config is class- or text-conditioned (the model then sees 2·batch samples per
/// step). A 2-step warm-up run (JIT, kernel loads, allocator), then one timed run; images/s counts final images.
/// --graph: the same run again with the denoiser call replayed as a CUDA graph (<see cref="Sampler.UseGraphs"/>), and
/// both timings. tools/torch_nested_unet.py --sample runs the same network and the same number of denoiser calls in PyTorch.
/// </summary>
public static class SampleBench
{
    public static int Run(string[] args)
    {
        var flags = BenchArgs.Parse(args, "sample bench", ["--bf16", "--graph"], ["--config", "--device", "--batch", "--steps", "--guidance", "--json"]);
        if (flags is null) return 2;
        string config = flags.Text("--config", "configs/cpu-demo.json"), device = flags.Text("--device", "cpu"), json = flags.Text("--json", "");
        int batch = flags.Int("--batch", 8), steps = flags.Int("--steps", 250);
        double guidance = flags.Double("--guidance", 3);
        bool bf16 = flags.Has("--bf16"), graphs = flags.Has("--graph");
        var modelConfig = ModelConfig.Load(config);
        using var backend = Backends.Create(Backends.Parse(device));
        var model = ModelFactory.Create(modelConfig, backend, seed: 1);
        var sampler = new Sampler(model, new DiffusionConfig());
        var labels = modelConfig.NumClasses > 0 ? Enumerable.Range(0, batch).Select(i => i % modelConfig.NumClasses).ToArray() : null;
        using var tokens = modelConfig.TextFeatureDim > 0 ? Ops.RandomUniform(backend.Empty(batch, TrainStepBench.TextTokens, modelConfig.TextFeatureDim), 9, 0, -1f, 1f) : null;
        using var tokenMask = tokens is null ? null : TrainStepBench.TokenMask(backend, batch);
        using var emptyText = tokens is null ? null : backend.Zeros(1, TrainStepBench.TextTokens, modelConfig.TextFeatureDim);
        using var emptyMask = tokens is null ? null : backend.Full(1f, 1, TrainStepBench.TextTokens);
        var cond = new Conditioning(ClassLabels: labels, Tokens: tokens, TokenMask: tokenMask);
        var negative = tokens is null ? null : new Conditioning(Tokens: emptyText, TokenMask: emptyMask);
        bool guided = labels is not null || tokens is not null;
        var samplerConfig = new SamplerConfig { NumSteps = steps, GuidanceScale = guided ? guidance : null };
        string what = $"{steps} DDPM steps at {string.Join("→", model.Resolutions)} px, batch {batch}{(guided ? $", guidance {guidance} (model batch {2 * batch})" : ", no guidance (unconditional config)")}, {(bf16 ? "bf16 autocast" : "f32")}";
        Console.WriteLine($"{config}: {what}, {backend.Info}");

        double Time(Sampler s, SamplerConfig c)
        {
            backend.Synchronize();
            var sw = Stopwatch.StartNew();
            using (MixedPrecision.Bf16(bf16, AutocastStorage.Bf16))
                foreach (var t in s.Sample(batch, cond, c, seed: 11, negative: negative)) t.Dispose();
            backend.Synchronize();
            return sw.Elapsed.TotalSeconds;
        }
        double eagerSeconds = 0;
        foreach (var (s, label) in graphs ? new[] { (sampler, "eager"), (new Sampler(model, new DiffusionConfig()) { UseGraphs = true }, "CUDA graph") } : [(sampler, "")])
        {
            double warm = Time(s, samplerConfig with { NumSteps = 2 });
            double seconds = Time(s, samplerConfig);
            double imagesPerSecond = batch / seconds;
            string prefix = label.Length > 0 ? $"{label}: " : "";
            string replays = s.LastGraphs is { } g ? $", {g.Captures} captures, {g.Replays} replays of {g.Launches} kernels" : "";
            Console.WriteLine($"{prefix}warm-up (2 steps) {warm:F2} s; sampling {seconds:F2} s, {1000 * seconds / steps:F1} ms/step, {imagesPerSecond:F2} images/s{replays}");
            if (s.UseGraphs)
                Console.WriteLine(s.LastGraphs?.Fallback is { } why ? $"CUDA graph: not captured, both runs eager ({why})" : $"CUDA graph against eager: {eagerSeconds / seconds:F2}×");
            else eagerSeconds = seconds;
            if (json.Length > 0)
                File.AppendAllText(json, System.Text.Json.JsonSerializer.Serialize(new
                {
                    op = "sample", shape = $"{Path.GetFileNameWithoutExtension(config)}-b{batch}-s{steps}{(guided ? "-cfg" : "")}{(bf16 ? "" : "-f32")}{(s.UseGraphs ? "-graph" : "")}", ms = 1000 * seconds,
                    bytes = 0.0, flops = 0.0, gbps = 0.0, tflops = 0.0, card = backend.Info.Name, impl = "mdm", images_per_s = imagesPerSecond,
                }) + Environment.NewLine);
        }
        model.DisposeParameters();
        return 0;
    }
}
