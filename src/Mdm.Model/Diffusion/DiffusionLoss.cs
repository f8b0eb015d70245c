using Mdm.Autograd;
using Mdm.Kernels;

namespace Mdm.Model.Diffusion;

/// <summary>
/// The multi-resolution training loss of ml-mdm (§3.3–3.6 of the reference). From images [B, C, R, R] in [−1, 1]:
/// the average-pool pyramid (one level per denoiser stream), one t ~ U{0..N−1} per sample shared by all streams,
/// independent N(0, I) noise per stream, x_t = √g_r·x + √(1 − g_r)·ε with g_r the shifted gammas[t + 1], the denoiser
/// called with the integer t, the prediction converted to the loss target (ε̂ = √(1 − g)·x_t + √g·v̂ for v → ε) and
/// L_r = mean_CHW (ε̂ − ε)² per sample; the loss is mean_b Σ_r w_r·L_r (each resolution's term one fused op,
/// <see cref="F.DiffusionLoss"/>), where resolution r counts only for its first
/// ⌊m_r·B⌋ samples and is divided by m_r under a mixed ratio. Every stream stays in the graph even when it weighs 0.
/// The denoiser sees full batches at every resolution; samples a resolution does not train on are masked in the loss.
/// ResNet dropout, where configured, is on for the denoiser's forward, keyed by (seed, step) (<see cref="Nn.ResNetDropout"/>).
/// </summary>
public sealed class DiffusionLoss
{
    public DiffusionLoss(IDenoiser denoiser, DiffusionConfig config)
    {
        ArgumentNullException.ThrowIfNull(denoiser);
        Denoiser = denoiser;
        Schedule = new NoiseSchedule(config, denoiser.Resolutions);
        Weights = config.LossWeights(denoiser.Resolutions.Count);
        Fractions = config.MixedFractions(denoiser.Resolutions.Count);
    }

    public IDenoiser Denoiser { get; }
    public NoiseSchedule Schedule { get; }
    public DiffusionConfig Config => Schedule.Config;
    /// <summary>w_r with use_double_loss applied.</summary>
    public IReadOnlyList<double> Weights { get; }
    /// <summary>m_r, the cumulative mixed-ratio fractions (all 1 without a mixed ratio).</summary>
    public IReadOnlyList<double> Fractions { get; }

    /// <summary>How many leading samples of a batch of <paramref name="batch"/> resolution r trains on: ⌊m_r·B⌋.</summary>
    public int CountedSamples(int resolution, int batch) => (int)Math.Floor(Fractions[resolution] * batch);

    /// <summary>The loss of one training step; t and noise come from Philox streams of (<paramref name="seed"/>, <paramref name="step"/>).
    /// Call inside a <see cref="Graph"/> and dispose the result after the backward pass (it owns the noise and constants).
    /// <paramref name="slice"/>: the images are that part of a global batch (data-parallel); draws and the mixed-ratio
    /// rule follow the global sample index, and the loss is this slice's share (mean over ranks = the global loss).</summary>
    public DiffusionLossResult Compute(Tensor images, Conditioning conditioning, ulong seed, ulong step, BatchSlice? slice = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        int clips = images.Rank > 0 ? images.Dim(0) / Math.Max(1, Denoiser.StreamFrames[0]) : 0;
        return Compute(images, conditioning, DiffusionRandom.Timesteps(clips, Schedule.NumSteps, seed, step, slice?.First ?? 0), seed, step, slice);
    }

    /// <summary>As <see cref="Compute(Tensor, Conditioning, ulong, ulong, BatchSlice?)"/> with the timesteps given (each in [0, N)).</summary>
    public DiffusionLossResult Compute(Tensor images, Conditioning conditioning, IReadOnlyList<int> timesteps, ulong seed, ulong step, BatchSlice? slice = null)
    {
        ArgumentNullException.ThrowIfNull(conditioning);
        int batch = CheckInputs(images, conditioning, timesteps);
        var part = slice ?? BatchSlice.Whole(batch);
        if (part.First < 0 || part.First + batch > part.GlobalBatch)
            throw new ArgumentException($"DiffusionLoss: samples [{part.First}, {part.First + batch}) do not lie in a global batch of {part.GlobalBatch}");
        int levels = Denoiser.Resolutions.Count;
        var b = images.Backend;
        var owned = new TensorScope();
        Tensor Own(Tensor t) => owned.Own(t);
        var frames = Denoiser.StreamFrames;
        int currentStream = 0;
        // Per-clip values repeated for each frame row of the stream being built (all 1 frame for images).
        Tensor PerSample(double[] values)
        {
            int f = frames[currentStream];
            var rows = new float[values.Length * f];
            for (int i = 0; i < rows.Length; i++) rows[i] = (float)values[i / f];
            return Own(b.FromArray(rows, rows.Length, 1, 1, 1));
        }
        try
        {
            // Resolution r trains on the global batch's leading samples; this slice holds counts[r] of them.
            var counts = new int[levels];
            for (int r = 0; r < levels; r++)
            {
                int global = CountedSamples(r, part.GlobalBatch);
                if (global == 0 && Weights[r] > 0)
                    throw new ArgumentException($"DiffusionLoss: with mixedRatio {DiffusionConfig.Format(Config.MixedRatio!)} a batch of {part.GlobalBatch} gives resolution {Denoiser.Resolutions[r]} no samples; use a larger batch");
                counts[r] = Math.Clamp(global - part.First, 0, batch);
            }

            // Pyramid (high → low), then each stream's clean image (divided by s_r without the SNR shift).
            var pyramid = new Tensor[levels];
            pyramid[0] = images;
            for (int r = 1; r < levels; r++)
                pyramid[r] = frames[r] < frames[r - 1]
                    ? Own(Nn.FrameOps.SubsampleFrames(pyramid[r - 1], frames[r - 1], frames[r - 1] / frames[r]))   // a temporal level
                    : Own(Ops.AvgPool2d(pyramid[r - 1], Denoiser.Resolutions[r - 1] / Denoiser.Resolutions[r]));

            var noisy = new Variable[levels];
            var targets = new Variable[levels];
            var coefficients = new Variable[levels];
            for (int r = 0; r < levels; r++)
            {
                currentStream = r;
                double signal = Schedule.SignalScale(r);
                var clean = signal == 1 ? pyramid[r] : Own(Ops.Scale(pyramid[r], (float)(1 / signal)));
                var eps = Own(b.Empty(clean.Shape));
                DiffusionRandom.Normal(eps, seed, step, 1 + r, part.FirstValue(eps.Numel / batch, $"the noise of resolution {Denoiser.Resolutions[r]}"));

                var g = timesteps.Select(t => Schedule.Gamma(t + 1, r)).ToArray();
                var xt = Own(Combine(clean, eps, PerSample(g.Select(Math.Sqrt).ToArray()), PerSample(g.Select(v => Math.Sqrt(1 - v)).ToArray())));
                noisy[r] = new Variable(xt);

                var conv = g.Select(v => Parameterization.Convert(Config.PredictionType, Config.LossTargetType, v)).ToArray();

                var mix = g.Select(v => Parameterization.Target(Config.LossTargetType, v)).ToArray();
                targets[r] = new Variable(mix.All(m => m == new TargetMix(0, 1)) ? eps
                    : mix.All(m => m == new TargetMix(1, 0)) ? clean
                    : Own(Combine(clean, eps, PerSample(mix.Select(m => m.OfClean).ToArray()), PerSample(mix.Select(m => m.OfNoise).ToArray()))));

                // Per row (a, k, w) of the fused loss: the prediction converted to the target (a·p + k·x_t) and the
                // weight; a clip's loss is the mean over its frames (each frame row carries 1/F of the clip's weight),
                // the batch mean is folded in, and samples the resolution does not train on weigh 0.
                int f = frames[r];
                var coef = new float[batch * f * 3];
                for (int row = 0; row < batch * f; row++)
                {
                    int clip = row / f;
                    coef[3 * row] = (float)conv[clip].OfPrediction;
                    coef[3 * row + 1] = (float)conv[clip].OfNoisy;
                    coef[3 * row + 2] = clip < counts[r] ? (float)(Weights[r] / Fractions[r] / f / batch) : 0f;
                }
                coefficients[r] = new Variable(Own(b.FromArray(coef, batch * f, 3)));
            }

            Variable[] predictions;
            using (Denoiser is Autograd.Nn.Module m ? Nn.ResNetDropout.ForStep(m, seed, step, part.First) : null)
                predictions = Denoiser.Forward(noisy, timesteps, conditioning);
            CheckOutputs(predictions, noisy);

            Variable? loss = null;
            var perSample = new Tensor[levels];
            for (int r = 0; r < levels; r++)
            {
                // target conversion, squared error, per-sample mean and weighting in one pass (F.DiffusionLoss)
                perSample[r] = Own(b.Empty(noisy[r].Shape[0]));
                var term = F.DiffusionLoss(predictions[r], noisy[r], targets[r], coefficients[r], perSample[r]);
                loss = loss is null ? term : F.Add(loss, term);
            }
            return new DiffusionLossResult(loss!, timesteps.ToArray(), perSample, counts, owned);
        }
        catch
        {
            owned.Dispose();
            throw;
        }
    }

    /// <summary>a·x + b·y with per-sample [B, 1, 1, 1] coefficients.</summary>
    static Tensor Combine(Tensor x, Tensor y, Tensor a, Tensor b)
    {
        using var ax = Ops.Mul(x, a);
        using var by = Ops.Mul(y, b);
        return Ops.Add(ax, by);
    }

    int CheckInputs(Tensor images, Conditioning conditioning, IReadOnlyList<int> timesteps)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(timesteps);
        int r0 = Denoiser.Resolutions[0], c = Denoiser.ImageChannels;
        if (images.Rank != 4 || images.Dim(1) != c || images.Dim(2) != r0 || images.Dim(3) != r0 || images.Dim(0) < 1)
            throw new ArgumentException($"DiffusionLoss: images {images.ShapeString}, expected [B>=1,{c},{r0},{r0}] for a denoiser with resolutions {string.Join(",", Denoiser.Resolutions)}");
        if (!ReferenceEquals(images.Backend, Denoiser.Backend))
            throw new ArgumentException($"DiffusionLoss: images live on {images.Backend.Info.KindName}, the denoiser on {Denoiser.Backend.Info.KindName}");
        if (images.DType != DType.F32) throw new ArgumentException($"DiffusionLoss: images must be F32, got {images.DType.Name()}");
        int f0 = Denoiser.StreamFrames[0];
        if (images.Dim(0) % f0 != 0)
            throw new ArgumentException($"DiffusionLoss: {images.Dim(0)} image rows are not whole clips of {f0} frames");
        int batch = images.Dim(0) / f0;   // clips (= images for an image model)
        if (f0 > 1 && Config.MixedRatio is not null)
            throw new ArgumentException("DiffusionLoss: mixedRatio is not supported for video models");
        if (timesteps.Count != batch)
            throw new ArgumentException($"DiffusionLoss: {timesteps.Count} timesteps for a batch of {batch}");
        for (int i = 0; i < batch; i++)
            if (timesteps[i] < 0 || timesteps[i] >= Schedule.NumSteps)
                throw new ArgumentException($"DiffusionLoss: timestep {timesteps[i]} of sample {i} outside [0, {Schedule.NumSteps})");
        if (conditioning.BatchSize(batch) != batch)
            throw new ArgumentException($"DiffusionLoss: the conditioning has batch {conditioning.BatchSize(batch)}, the images {batch}");
        return batch;
    }

    void CheckOutputs(Variable[] predictions, Variable[] noisy)
    {
        if (predictions is null || predictions.Length != noisy.Length)
            throw new InvalidOperationException($"DiffusionLoss: the denoiser returned {predictions?.Length ?? 0} outputs for {noisy.Length} resolutions");
        for (int r = 0; r < noisy.Length; r++)
            if (!Shape.Equal(predictions[r].Data.Dims, noisy[r].Data.Dims))
                throw new InvalidOperationException($"DiffusionLoss: the denoiser's output {r} is {predictions[r].Data.ShapeString}, its input was {noisy[r].Data.ShapeString}");
    }
}

/// <summary>
/// One step's loss: the scalar <see cref="Loss"/> (backward from it), the timesteps drawn, and the unweighted
/// per-sample losses L_r of every resolution for logging. Owns the noise and constants the backward pass reads:
/// dispose it after <c>Loss.Backward()</c>.
/// </summary>
public sealed class DiffusionLossResult : IDisposable
{
    readonly TensorScope owned;

    internal DiffusionLossResult(Variable loss, int[] timesteps, Tensor[] perSample, int[] counted, TensorScope owned)
    {
        Loss = loss;
        Timesteps = timesteps;
        PerSampleLosses = perSample;
        CountedSamples = counted;
        this.owned = owned;
    }

    public Variable Loss { get; }
    public IReadOnlyList<int> Timesteps { get; }
    /// <summary>L_r [B] per resolution (high → low), before weights and masks.</summary>
    public IReadOnlyList<Tensor> PerSampleLosses { get; }
    /// <summary>⌊m_r·B⌋: resolution r trains on samples [0, CountedSamples[r]).</summary>
    public IReadOnlyList<int> CountedSamples { get; }

    /// <summary>Mean L_r over the samples each resolution trains on (reads the device; NaN where none count).</summary>
    public double[] ResolutionLosses() => [.. ResolutionLossSums().Select(s => s.Count == 0 ? double.NaN : s.Sum / s.Count)];

    /// <summary>Per resolution, the sum of L_r over the rows it trains on and their count (summed over data-parallel
    /// ranks, the global means).</summary>
    public (double Sum, int Count)[] ResolutionLossSums()
    {
        var result = new (double, int)[PerSampleLosses.Count];
        for (int r = 0; r < result.Length; r++)
        {
            var values = PerSampleLosses[r].ToArray();
            int perClip = values.Length / Math.Max(1, Timesteps.Count);   // frame rows per clip (1 for images)
            int n = CountedSamples[r] * perClip;
            result[r] = (values.Take(n).Sum(v => (double)v), n);
        }
        return result;
    }

    public void Dispose() => owned.Dispose();
}
