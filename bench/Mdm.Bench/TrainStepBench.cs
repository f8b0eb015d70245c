using System.Diagnostics;
using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Config;
using Mdm.Model.Diffusion;
using Mdm.Model.Training;

namespace Mdm.Bench;

/// <summary>
/// End-to-end training step: diffusion loss (pyramid, noise, NestedUNet forward), backward, clip + AdamW, EMA.
/// `Mdm.Bench step --config configs/cpu-demo.json [--batch 16] [--device cpu|cuda|ilgpu-cpu] [--steps 5] [--bf16 [--bf16-rounded]]
/// [--json FILE] [--profile] [--memory-report] [--graph]`
/// (--bf16: bf16 autocast as `train --bf16`, operands stored as BF16 tensors, tensor cores on CUDA; --bf16-rounded: the
/// older autocast that keeps them as f32 tensors holding bf16 values, for comparison).
/// Reports seconds per step (median after a warm-up step) and images/s, with a phase breakdown of the last step.
/// --profile: the last step's time per op and kernel (<see cref="StepProfile"/>: device time on CUDA and the ILGPU CPU
/// accelerator, host time on the CPU backend); the profiled step is left out of the median.
/// --memory-report: the last step's memory by category and the allocator's peak (<see cref="StepMemoryReport"/>).
/// --graph: the step's denoiser forward at this batch, eagerly and replayed as a CUDA graph (<see cref="GraphTiming"/>);
/// the whole step is not captured (its noise seeds and timesteps are kernel arguments and uploads that change every step).
/// </summary>
public static class TrainStepBench
{
    /// <summary>Text tokens per sample for text-conditioned configs, as tools/torch_nested_unet.py passes them.</summary>
    internal const int TextTokens = 128;

    /// <summary>Every token attended, except the later half in odd samples (padding, as the PyTorch twin has it).</summary>
    internal static Tensor TokenMask(Backend backend, int batch)
    {
        var mask = new float[batch * TextTokens];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < TextTokens; t++) mask[b * TextTokens + t] = b % 2 == 1 && t >= (TextTokens + 1) / 2 ? 0f : 1f;
        return backend.FromArray(mask, batch, TextTokens);
    }

    public static int Run(string[] args)
    {
        var flags = BenchArgs.Parse(args, "step bench", ["--bf16", "--bf16-rounded", "--profile", "--memory-report", "--graph"], ["--config", "--device", "--batch", "--steps", "--json"]);
        if (flags is null) return 2;
        string config = flags.Text("--config", "configs/cpu-demo.json"), device = flags.Text("--device", "cpu"), json = flags.Text("--json", "");
        int batch = flags.Int("--batch", 16), steps = flags.Int("--steps", 5);
        bool bf16 = flags.Has("--bf16") || flags.Has("--bf16-rounded"), profile = flags.Has("--profile"), memoryReport = flags.Has("--memory-report");
        var storage = flags.Has("--bf16-rounded") ? AutocastStorage.RoundedF32 : AutocastStorage.Bf16;
        var modelConfig = ModelConfig.Load(config);
        using var backend = Backends.Create(Backends.Parse(device));
        var model = ModelFactory.Create(modelConfig, backend, seed: 1);
        var diffusion = new DiffusionConfig();
        var loss = new DiffusionLoss(model, diffusion);
        using var opt = new AdamWOptimizer(model.NamedParameters(), AdamOptions.AdamW(1e-4, 0), 2f);
        using var ema = new ExponentialMovingAverage(model.NamedParameters(), 0.9999f);
        int size = modelConfig.ImageSize, channels = modelConfig.ImageChannels;
        using var images = Ops.RandomUniform(backend.Empty(batch, channels, size, size), 7, 0, -1f, 1f);
        var labels = modelConfig.NumClasses > 0 ? Enumerable.Range(0, batch).Select(i => i % modelConfig.NumClasses).ToArray() : null;
        using var tokens = modelConfig.TextFeatureDim > 0 ? Ops.RandomUniform(backend.Empty(batch, TextTokens, modelConfig.TextFeatureDim), 9, 0, -1f, 1f) : null;
        using var tokenMask = tokens is null ? null : TokenMask(backend, batch);
        var cond = new Conditioning(ClassLabels: labels, Tokens: tokens, TokenMask: tokenMask);
        Console.WriteLine($"{config}: {ModelFactory.CountParameters(modelConfig).Total / 1e6:F2} M parameters, batch {batch} at {size}², {(bf16 ? $"bf16 autocast ({(storage == AutocastStorage.Bf16 ? "bf16 storage" : "rounded f32 storage")})" : "f32")}, {backend.Info}");

        var times = new List<double>();
        double fwd = 0, bwd = 0, upd = 0;
        int measured = steps + (profile || memoryReport ? 1 : 0);
        var memory = new StepMemoryMeter(backend);
        for (int s = 0; s <= measured; s++)
        {
            bool extra = s > steps;   // the profiled / metered step, after the timed ones
            if (s == 1) OpProfiler.Reset();
            if (extra && memoryReport) memory.StepStarting();
            using var stepProfile = extra && profile ? StepProfile.Start(backend) : null;
            var sw = Stopwatch.StartNew();
            float value;
            using (MixedPrecision.Bf16(bf16, storage))
            using (var g = new Graph())
            {
                using var result = loss.Compute(images, cond, seed: 3, step: (ulong)s);
                value = result.Loss.Item();
                fwd = sw.Elapsed.TotalMilliseconds;
                if (extra && memoryReport) memory.ForwardDone();
                result.Loss.Backward();
                backend.Synchronize();
                bwd = sw.Elapsed.TotalMilliseconds - fwd;
            }
            if (extra && memoryReport) memory.BackwardDone(model.NamedParameters());
            using (opt.Step(1e-4)) { }
            stepProfile?.Charge("clip + adamw");
            ema.Update();
            stepProfile?.Charge("ema");
            backend.Synchronize();
            double total = sw.Elapsed.TotalMilliseconds;
            upd = total - fwd - bwd;
            if (s > 0 && !extra) times.Add(total);   // step 0 is the warm-up (JIT, kernel loads)
            Console.WriteLine($"step {s}: {total,8:F1} ms  (forward+loss {fwd:F1}, backward {bwd:F1}, clip+adam+ema {upd:F1})  loss {value:F4}{(extra ? "  (profiled, not in the median)" : "")}");
            if (stepProfile is not null) Console.WriteLine(stepProfile.Finish().Format());
            if (extra && memoryReport) Console.WriteLine(memory.Report(model.NamedParameters(), opt, ema).Format());
        }
        if (OpProfiler.Enabled)
            Console.WriteLine($"per-op time over all steps ({(OpProfiler.SynchronizeDevice ? "MDM_PROFILE=sync: device synchronised around every op" : "MDM_PROFILE=1: host time of asynchronous launches")}):\n" + OpProfiler.Report());
        if (flags.Has("--graph"))
        {
            model.Eval();
            GraphTiming.Print($"denoiser forward, batch {batch}", GraphTiming.DenoiserCall(model, batch, cond, bf16, Math.Max(steps, 3)));
        }
        times.Sort();
        double median = times[times.Count / 2];
        Console.WriteLine($"median {median / 1000:F3} s/step, {batch / (median / 1000):F1} images/s");
        if (json.Length > 0)
            File.AppendAllText(json, System.Text.Json.JsonSerializer.Serialize(new
            {
                op = "train_step", shape = $"{Path.GetFileNameWithoutExtension(config)}-b{batch}{(bf16 ? "" : "-f32")}", ms = median, bytes = 0.0, flops = 0.0, gbps = 0.0, tflops = 0.0,
                card = backend.Info.Name, impl = "mdm", images_per_s = batch / (median / 1000),
            }) + Environment.NewLine);
        model.DisposeParameters();
        return 0;
    }
}
