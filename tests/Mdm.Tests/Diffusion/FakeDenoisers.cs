using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Diffusion;

namespace Mdm.Tests.Diffusion;

/// <summary>Shared pieces of the test denoisers: shapes, call recording, graph-owned outputs.</summary>
public abstract class FakeDenoiser(Backend backend, int channels, params int[] resolutions) : IDenoiser
{
    public IReadOnlyList<int> Resolutions { get; } = resolutions;
    public int ImageChannels { get; } = channels;
    public Backend Backend { get; } = backend;

    /// <summary>Every call: the timesteps, class labels, the memory live at the call, and (when enabled) the inputs.</summary>
    public List<(int[] Timesteps, int[]? Labels, long LiveBytes, float[][]? Inputs)> Calls { get; } = new();
    public bool RecordInputs { get; set; }

    public Variable[] Forward(IReadOnlyList<Variable> noisyHighToLow, IReadOnlyList<int> timesteps, Conditioning conditioning)
    {
        Assert.That(noisyHighToLow, Has.Count.EqualTo(Resolutions.Count), "the denoiser gets one input per resolution");
        for (int r = 0; r < Resolutions.Count; r++)
            Assert.That(noisyHighToLow[r].Shape, Is.EqualTo(new[] { timesteps.Count, ImageChannels, Resolutions[r], Resolutions[r] }), $"input {r}");
        Calls.Add((timesteps.ToArray(), conditioning.ClassLabels?.ToArray(), Backend.Memory.LiveBytes,
            RecordInputs ? noisyHighToLow.Select(v => v.Data.ToArray()).ToArray() : null));
        return Predict(noisyHighToLow, timesteps, conditioning);
    }

    protected abstract Variable[] Predict(IReadOnlyList<Variable> noisy, IReadOnlyList<int> timesteps, Conditioning conditioning);

    /// <summary>A graph-owned copy of a tensor the fake computed (freed with the caller's graph, like a real model's output).</summary>
    protected static Variable Adopt(Tensor t)
    {
        using (t) return F.Scale(new Variable(t), 1f);
    }

    protected Tensor PerSample(IEnumerable<double> values) =>
        Backend.FromArray(values.Select(v => (float)v).ToArray(), values.Count(), 1, 1, 1);
}

/// <summary>
/// Knows the clean images x0 of every resolution and the schedule, and returns the exact prediction (v, ε or x0) for
/// the x_t it is given, plus an optional constant <see cref="Offset"/>: v = (√g·x_t − x0)/√(1 − g) with g the shifted
/// gammas[t + 1] (t is what the model sees: training's t, sampling's t − 1).
/// </summary>
public sealed class OracleDenoiser(Backend backend, NoiseSchedule schedule, Tensor[] clean, PredictionType type = PredictionType.V)
    : FakeDenoiser(backend, clean[0].Dim(1), schedule.Resolutions.ToArray())
{
    public float Offset { get; set; }

    protected override Variable[] Predict(IReadOnlyList<Variable> noisy, IReadOnlyList<int> timesteps, Conditioning conditioning)
    {
        var result = new Variable[noisy.Count];
        for (int r = 0; r < noisy.Count; r++)
        {
            var g = timesteps.Select(t => schedule.Gamma(t + 1, r)).ToArray();
            // prediction = a·x_t + b·x0 per sample
            var (a, b) = type switch
            {
                PredictionType.V => (g.Select(v => Math.Sqrt(v / (1 - v))), g.Select(v => -1 / Math.Sqrt(1 - v))),
                PredictionType.Epsilon => (g.Select(v => 1 / Math.Sqrt(1 - v)), g.Select(v => -Math.Sqrt(v / (1 - v)))),
                _ => (g.Select(_ => 0.0), g.Select(_ => 1.0)),
            };
            using var ka = PerSample(a);
            using var kb = PerSample(b);
            using var ax = Ops.Mul(noisy[r].Data, ka);
            using var bx = Ops.Mul(clean[r], kb);
            var y = Ops.Add(ax, bx);
            if (Offset != 0) { using var c = Backend.Full(Offset, 1); Ops.Add(y, c, y); }
            result[r] = Adopt(y);
        }
        return result;
    }
}

/// <summary>A tiny learnable denoiser built from F.* ops: v̂_r = a_r·x_t + b_r with a_r [1] and b_r [1, C, 1, 1].</summary>
public sealed class AffineDenoiser : FakeDenoiser, IDisposable
{
    public AffineDenoiser(Backend backend, int channels, int[] resolutions, Random rng) : base(backend, channels, resolutions)
    {
        Scales = resolutions.Select(_ => new Variable(backend.FromArray([(float)(rng.NextDouble() - 0.5)], 1), requiresGrad: true)).ToArray();
        Biases = resolutions.Select(_ => new Variable(backend.FromArray(
            Enumerable.Range(0, channels).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), 1, channels, 1, 1), requiresGrad: true)).ToArray();
    }

    public Variable[] Scales { get; }
    public Variable[] Biases { get; }
    public IEnumerable<Variable> Parameters => Scales.Concat(Biases);

    protected override Variable[] Predict(IReadOnlyList<Variable> noisy, IReadOnlyList<int> timesteps, Conditioning conditioning) =>
        noisy.Select((x, r) => F.Add(F.Mul(x, Scales[r]), Biases[r])).ToArray();

    public void Dispose() { foreach (var p in Parameters) p.Dispose(); }
}

/// <summary>
/// Class-conditional (or text-conditional) fake: v̂ = 0.5·x_t + e(sample), with e = 0.25·label for a class label,
/// −0.75 for <see cref="Conditioning.NullClass"/>, or the mean of the sample's tokens for text. Outputs differ between the
/// conditional and unconditional halves, so guidance arithmetic is visible.
/// </summary>
public sealed class ConditionalDenoiser(Backend backend, int channels, params int[] resolutions) : FakeDenoiser(backend, channels, resolutions)
{
    public static double Embedding(int label) => label == Conditioning.NullClass ? -0.75 : 0.25 * label;

    public List<float[]> TokensSeen { get; } = new();

    protected override Variable[] Predict(IReadOnlyList<Variable> noisy, IReadOnlyList<int> timesteps, Conditioning conditioning)
    {
        int batch = timesteps.Count;
        double[] e;
        if (conditioning.ClassLabels is { } labels) e = labels.Select(Embedding).ToArray();
        else if (conditioning.Tokens is { } tokens)
        {
            var values = tokens.ToArray();
            TokensSeen.Add(values);
            int per = values.Length / batch;
            e = Enumerable.Range(0, batch).Select(b => values.Skip(b * per).Take(per).Average(v => (double)v)).ToArray();
        }
        else e = new double[batch];
        var result = new Variable[noisy.Count];
        for (int r = 0; r < noisy.Count; r++)
        {
            using var k = PerSample(e);
            var y = Ops.Scale(noisy[r].Data, 0.5f);
            Ops.Add(y, k, y);
            result[r] = Adopt(y);
        }
        return result;
    }
}
