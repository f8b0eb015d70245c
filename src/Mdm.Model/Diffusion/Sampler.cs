using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model.Diffusion;

/// <summary>
/// Ancestral DDPM and DDIM(η) sampling of a multi-resolution denoiser (§4 of the reference): respaced timesteps, the
/// network called with t − 1, per-resolution shifted gammas, prediction → x̂0, thresholding, then the transition to
/// the next timestep; independent initial noise per resolution, every resolution denoised by one forward pass per step,
/// classifier-free guidance with the batch doubled as [negative; positive]. Runs under <see cref="Graph.NoGrad"/> and
/// frees every per-step tensor, so memory stays flat however many steps run. Deterministic given the seed.
/// </summary>
public sealed class Sampler
{
    /// <summary>
    /// Fills <paramref name="destination"/> (the stream's shape) with the standard normal noise z of transition
    /// <paramref name="transition"/> (0 = the first, from τ_0) at resolution <paramref name="resolution"/> (0 = highest).
    /// Only called for transitions that add noise.
    /// </summary>
    public delegate void StepNoise(Tensor destination, int transition, int resolution);

    public Sampler(IDenoiser denoiser, DiffusionConfig config)
    {
        ArgumentNullException.ThrowIfNull(denoiser);
        Denoiser = denoiser;
        Schedule = new NoiseSchedule(config, denoiser.Resolutions);
    }

    public IDenoiser Denoiser { get; }
    public NoiseSchedule Schedule { get; }

    /// <summary>Replay the denoiser call as a CUDA graph (<see cref="DenoiserGraph"/>); where that is not possible the
    /// call runs eagerly after one line to <see cref="GraphLog"/>. The samples are the same either way.</summary>
    public bool UseGraphs { get; init; }
    public Action<string> GraphLog { get; init; } = line => Console.Error.WriteLine($"mdm: {line}");

    /// <summary>The graph runner of the last <see cref="Sample"/> call with <see cref="UseGraphs"/> (its counters).</summary>
    public DenoiserGraph? LastGraphs { get; private set; }

    /// <summary>
    /// ml-mdm's set_timesteps(K): ratio = (N + 1)/(K + 1), τ_i = round(i·ratio) for i = K … 0 (descending, K + 1
    /// points), rounding half to even as Python/NumPy do. K = 250 of N = 1000 gives 997, 993, …, 4, 0.
    /// </summary>
    public static int[] Timesteps(int numDiffusionSteps, int numSamplingSteps)
    {
        if (numDiffusionSteps < 1) throw new ArgumentException($"Sampler.Timesteps: need N >= 1, got {numDiffusionSteps}");
        if (numSamplingSteps < 1 || numSamplingSteps > numDiffusionSteps)
            throw new ArgumentException($"Sampler.Timesteps: sampling steps must be in [1, {numDiffusionSteps}], got {numSamplingSteps}");
        double ratio = (numDiffusionSteps + 1.0) / (numSamplingSteps + 1.0);
        var tau = new int[numSamplingSteps + 1];
        for (int i = numSamplingSteps; i >= 0; i--)
            tau[numSamplingSteps - i] = (int)Math.Round(i * ratio, MidpointRounding.ToEven);
        return tau;
    }

    /// <summary>
    /// Draws <paramref name="batch"/> samples at every resolution (high → low), each clipped to [−1, 1] (times the
    /// stream's signal scale without the SNR shift). Guidance needs class labels (the unconditional half uses
    /// <see cref="Conditioning.NullClass"/> unless <paramref name="negative"/> is given) or text tokens with a
    /// <paramref name="negative"/> conditioning (batch B or 1). <paramref name="initialNoise"/> replaces the drawn x_T and
    /// <paramref name="stepNoise"/> the per-step noise (to reproduce another implementation's trajectory, or to share
    /// noise between runs). The caller disposes the returned tensors.
    /// </summary>
    public Tensor[] Sample(int batch, Conditioning conditioning, SamplerConfig config, ulong seed,
        Conditioning? negative = null, IReadOnlyList<Tensor>? initialNoise = null, StepNoise? stepNoise = null)
    {
        ArgumentNullException.ThrowIfNull(conditioning);
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        if (batch < 1) throw new ArgumentException($"Sampler: batch must be at least 1, got {batch}");
        if (conditioning.BatchSize(batch) != batch)
            throw new ArgumentException($"Sampler: the conditioning has batch {conditioning.BatchSize(batch)}, expected {batch}");
        var tau = Timesteps(Schedule.NumSteps, config.NumSteps ?? Schedule.NumSteps);
        int levels = Denoiser.Resolutions.Count;
        bool guided = config.GuidanceScale is not null;
        var backend = Denoiser.Backend;
        using var owned = new TensorScope();
        using var graphs = UseGraphs ? new DenoiserGraph(Denoiser, GraphLog) : null;
        LastGraphs = graphs;
        var x = new Tensor[levels];
        try
        {
            using var noGrad = Graph.NoGrad();
            var modelConditioning = guided ? Doubled(conditioning, negative, batch, owned) : conditioning;
            for (int r = 0; r < levels; r++)
                x[r] = InitialNoise(r, batch, seed, initialNoise);
            var noise = stepNoise ?? ((z, i, r) => DiffusionRandom.Normal(z, seed, (ulong)(i + 1), r));
            for (int i = 0; i + 1 < tau.Length; i++)
                Step(x, tau[i], tau[i + 1], i, batch, guided ? 2 * batch : batch, modelConditioning, config, noise, graphs);
            for (int r = 0; r < levels; r++)
            {
                double signal = Schedule.SignalScale(r);
                if (signal != 1) Ops.Scale(x[r], (float)signal, x[r]);
                Thresholding.Clamp(x[r], -1, 1, x[r]);
            }
            return x;
        }
        catch
        {
            foreach (var t in x) t?.Dispose();
            throw;
        }
    }

    /// <summary>One transition t → s of every resolution (in place on <paramref name="x"/>).</summary>
    void Step(Tensor[] x, int t, int s, int transition, int batch, int modelBatch, Conditioning conditioning, SamplerConfig config, StepNoise noise,
        DenoiserGraph? graphs)
    {
        using var graph = new Graph();   // owns the denoiser's outputs of this step
        var inputs = new Tensor[x.Length];
        try
        {
            for (int r = 0; r < x.Length; r++)
                inputs[r] = modelBatch == batch ? x[r] : Ops.Concat([x[r], x[r]], 0);
            var timesteps = Enumerable.Repeat(t - 1, modelBatch).ToArray();
            var predictions = graphs is not null ? graphs.Predict(inputs, timesteps, conditioning)
                : Denoiser.Forward(inputs.Select(v => new Variable(v)).ToArray(), timesteps, conditioning)?.Select(v => v.Data).ToArray();
            if (predictions is null || predictions.Length != x.Length)
                throw new InvalidOperationException($"Sampler: the denoiser returned {predictions?.Length ?? 0} outputs for {x.Length} resolutions");
            for (int r = 0; r < x.Length; r++)
            {
                if (!Shape.Equal(predictions[r].Dims, inputs[r].Dims))
                    throw new InvalidOperationException($"Sampler: the denoiser's output {r} is {predictions[r].ShapeString}, its input was {inputs[r].ShapeString}");
                var next = Transition(x[r], predictions[r], r, t, s, transition, config, noise);
                x[r].Dispose();
                x[r] = next;
            }
        }
        finally
        {
            if (modelBatch != batch) foreach (var v in inputs) v?.Dispose();
        }
    }

    Tensor Transition(Tensor xt, Tensor prediction, int r, int t, int s, int transition, SamplerConfig config, StepNoise noise)
    {
        using var guided = config.GuidanceScale is { } w ? Guide(prediction, xt.Dim(0), w) : null;
        var pred = guided ?? prediction;
        double gt = Schedule.Gamma(t, r), gs = Schedule.Gamma(s, r);

        var toX0 = Parameterization.Convert(Schedule.Config.PredictionType, PredictionType.X0, gt);
        using var x0 = Ops.Scale(xt, (float)toX0.OfNoisy);
        using (var p = Ops.Scale(pred, (float)toX0.OfPrediction)) Ops.Add(x0, p, x0);
        using var x0Thresholded = Thresholding.Apply(x0, config.Threshold, Schedule.SignalScale(r));

        var (ofX0, ofXt, noiseStd) = TransitionCoefficients(gt, gs, config.DdimEta);
        if (s == 0) noiseStd = 0;   // the last step returns x̂0 (g_s = 1 makes β̃ = 0 anyway)
        var next = Ops.Scale(x0Thresholded, (float)ofX0);
        using (var k = Ops.Scale(xt, (float)ofXt)) Ops.Add(next, k, next);
        if (noiseStd > 0)
        {
            using var z = xt.Backend.Empty(xt.Shape);
            noise(z, transition, r);
            Ops.Scale(z, (float)noiseStd, z);
            Ops.Add(next, z, next);
        }
        return next;
    }

    /// <summary>
    /// x_s = a·x̂0 + b·x_t + c·z. DDPM posterior (η null): α = g_t/g_s, β = 1 − α, β̃ = β(1 − g_s)/(1 − g_t),
    /// a = √g_s·β/(1 − g_t), b = √α·(1 − g_s)/(1 − g_t), c = √β̃. DDIM(η): ε̂ = (x_t − √g_t·x̂0)/√(1 − g_t) and
    /// x_s = √g_s·x̂0 + √(1 − g_s − η²β̃)·ε̂ + η√β̃·z.
    /// </summary>
    public static (double OfX0, double OfXt, double NoiseStd) TransitionCoefficients(double gt, double gs, double? eta)
    {
        if (!(gt < 1) || !(gt > 0) || !(gs >= gt) || gs > 1)
            throw new ArgumentException($"Sampler: a transition needs 0 < g_t < 1 and g_t <= g_s <= 1, got g_t {gt}, g_s {gs}");
        double alpha = gt / gs, beta = 1 - alpha, posteriorVar = beta * (1 - gs) / (1 - gt);
        if (eta is not { } e)
            return (Math.Sqrt(gs) * beta / (1 - gt), Math.Sqrt(alpha) * (1 - gs) / (1 - gt), Math.Sqrt(posteriorVar));
        double sigmaT = Math.Sqrt(1 - gt);
        double c = Math.Sqrt(Math.Max(0, 1 - gs - e * e * posteriorVar));
        return (Math.Sqrt(gs) - c * Math.Sqrt(gt) / sigmaT, c / sigmaT, e * Math.Sqrt(posteriorVar));
    }

    /// <summary>u + w·(c − u) from the doubled batch [unconditional; conditional] (rows: clips × frames).</summary>
    static Tensor Guide(Tensor prediction, int batch, double w)
    {
        using var u = prediction.Slice(0, batch);
        using var c = prediction.Slice(batch, batch);
        var d = Ops.Sub(c, u);
        Ops.Scale(d, (float)w, d);
        return Ops.Add(u, d, d);
    }

    Tensor InitialNoise(int r, int batch, ulong seed, IReadOnlyList<Tensor>? given)
    {
        int res = Denoiser.Resolutions[r];
        int[] shape = [batch * Denoiser.StreamFrames[r], Denoiser.ImageChannels, res, res];
        if (given is null) return DiffusionRandom.Normal(Denoiser.Backend.Empty(shape), seed, 0, r);
        if (given.Count != Denoiser.Resolutions.Count)
            throw new ArgumentException($"Sampler: {given.Count} initial noise tensors for {Denoiser.Resolutions.Count} resolutions");
        var g = given[r];
        if (!Shape.Equal(g.Dims, shape) || !ReferenceEquals(g.Backend, Denoiser.Backend))
            throw new ArgumentException($"Sampler: initial noise {r} is {g}, expected {Shape.Format(shape)} on {Denoiser.Backend.Info.KindName}");
        return Ops.Copy(g);
    }

    /// <summary>[negative; positive] conditioning for the doubled batch.</summary>
    static Conditioning Doubled(Conditioning positive, Conditioning? negative, int batch, TensorScope owned)
    {
        if (positive.ClassLabels is null && positive.Tokens is null)
            throw new ArgumentException("Sampler: classifier-free guidance needs a class or text conditioning to guide towards");
        int[]? labels = null;
        if (positive.ClassLabels is { } pos)
        {
            var neg = negative?.ClassLabels ?? Enumerable.Repeat(Conditioning.NullClass, batch).ToArray();
            if (neg.Length != batch)
                throw new ArgumentException($"Sampler: {neg.Length} negative class labels for a batch of {batch}");
            labels = [.. neg, .. pos];
        }
        Tensor? tokens = null, mask = null;
        if (positive.Tokens is { } tok)
        {
            var negTok = negative?.Tokens
                ?? throw new ArgumentException("Sampler: text guidance needs a negative conditioning (e.g. the encoding of \"\" or \"low quality\")");
            if (negTok.Rank != tok.Rank || (negTok.Dim(0) != batch && negTok.Dim(0) != 1) || !negTok.Dims[1..].SequenceEqual(tok.Dims[1..]))
                throw new ArgumentException($"Sampler: negative tokens {negTok.ShapeString} do not match the tokens {tok.ShapeString} (batch {batch} or 1, same length and width)");
            tokens = owned.Own(Ops.Concat([Batched(negTok, batch, owned), tok], 0));
            if ((positive.TokenMask is null) != (negative.TokenMask is null))
                throw new ArgumentException("Sampler: give a token mask for both the conditioning and the negative conditioning, or for neither");
            if (positive.TokenMask is { } m && negative.TokenMask is { } nm)
            {
                if ((nm.Dim(0) != batch && nm.Dim(0) != 1) || !nm.Dims[1..].SequenceEqual(m.Dims[1..]))
                    throw new ArgumentException($"Sampler: negative token mask {nm.ShapeString} does not match the mask {m.ShapeString}");
                mask = owned.Own(Ops.Concat([Batched(nm, batch, owned), m], 0));
            }
        }
        return new Conditioning(labels, tokens, mask);
    }

    static Tensor Batched(Tensor t, int batch, TensorScope owned)
    {
        if (t.Dim(0) == batch) return t;
        var shape = t.Shape;
        shape[0] = batch;
        return owned.Own(Ops.BroadcastTo(t, shape));
    }
}
