using System.Diagnostics;
using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Diffusion;

namespace Mdm.Bench;

/// <summary>
/// `--graph` of `step` and `sample`: the denoiser call timed eagerly and replayed as a CUDA graph
/// (<see cref="DenoiserGraph"/>), same inputs, after a warm-up of each. Where no graph can be captured the runner's
/// one line says why and both columns are eager.
/// </summary>
static class GraphTiming
{
    /// <summary>Milliseconds per denoiser call (eager, graph), the kernels one call launches and the largest difference
    /// between the two paths' predictions.</summary>
    public static (double EagerMs, double GraphMs, int Launches, double MaxDifference, string? Fallback) DenoiserCall(
        IDenoiser model, int batch, Conditioning cond, bool bf16, int calls)
    {
        var backend = model.Backend;
        var res = model.Resolutions;
        var inputs = res.Select((r, i) => Ops.RandomUniform(backend.Empty(batch * model.StreamFrames[i], model.ImageChannels, r, r), 5, (ulong)i, -1f, 1f)).ToArray();
        var timesteps = Enumerable.Repeat(499, batch).ToArray();
        using var noGrad = Graph.NoGrad();
        using var autocast = MixedPrecision.Bf16(bf16);
        float[][] eagerOut = [];
        double Eager()
        {
            using var g = new Graph();
            var outputs = model.Forward(inputs.Select(t => new Variable(t)).ToArray(), timesteps, cond);
            eagerOut = outputs.Select(v => v.Data.ToArray()).ToArray();
            backend.Synchronize();
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < calls; i++)
            {
                using var gi = new Graph();
                model.Forward(inputs.Select(t => new Variable(t)).ToArray(), timesteps, cond);
            }
            backend.Synchronize();
            return sw.Elapsed.TotalMilliseconds / calls;
        }
        double eagerMs = Eager();
        using var runner = new DenoiserGraph(model, line => Console.WriteLine(line));
        using (new Graph()) runner.Predict(inputs, timesteps, cond);   // warm-up, capture, first replay
        var graphOut = runner.Predict(inputs, timesteps, cond).Select(t => t.ToArray()).ToArray();
        backend.Synchronize();
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < calls; i++)
        {
            using var g = new Graph();
            runner.Predict(inputs, timesteps, cond);
        }
        backend.Synchronize();
        double graphMs = watch.Elapsed.TotalMilliseconds / calls;
        double diff = 0;
        for (int r = 0; r < eagerOut.Length; r++)
            for (int i = 0; i < eagerOut[r].Length; i++) diff = Math.Max(diff, Math.Abs(eagerOut[r][i] - graphOut[r][i]));
        foreach (var t in inputs) t.Dispose();
        return (eagerMs, graphMs, runner.Launches, diff, runner.Fallback);
    }

    public static void Print(string what, (double EagerMs, double GraphMs, int Launches, double MaxDifference, string? Fallback) t) =>
        Console.WriteLine(t.Fallback is null
            ? $"{what}: eager {t.EagerMs:F2} ms, CUDA graph {t.GraphMs:F2} ms per call ({t.EagerMs / t.GraphMs:F2}×), {t.Launches} kernels per call, max |eager − graph| {t.MaxDifference:G3}"
            : $"{what}: eager {t.EagerMs:F2} ms per call; no graph ({t.Fallback})");
}
