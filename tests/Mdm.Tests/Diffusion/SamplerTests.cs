using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Diffusion;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Diffusion;

/// <summary>DDPM / DDIM sampling with fake denoisers: oracle recovery, determinism, guidance arithmetic, flat memory (CPU backend).</summary>
public class SamplerTests
{
    Backend B = null!;
    Random rng = null!;

    [OneTimeSetUp] public void GetBackend() => B = TestBackends.Get(BackendKind.Cpu);
    [SetUp] public void FreshSeed() => rng = TestSeed.NewRandom();

    static string Seed => TestSeed.Describe();

    Tensor[] CleanPyramid(int batch, int channels, int[] res)
    {
        var levels = new Tensor[res.Length];
        levels[0] = B.FromArray(TestSeed.Uniform(rng, (long)batch * channels * res[0] * res[0], -0.9f, 0.9f), batch, channels, res[0], res[0]);
        for (int r = 1; r < res.Length; r++) levels[r] = Ops.AvgPool2d(levels[r - 1], res[r - 1] / res[r]);
        return levels;
    }

    static void DisposeAll(IEnumerable<Tensor> ts) { foreach (var t in ts) t.Dispose(); }

    [TestCase(null, ThresholdType.Clip, 25, PredictionType.V)]
    [TestCase(0.0, ThresholdType.Clip, 25, PredictionType.V)]
    [TestCase(1.0, ThresholdType.DynamicDeepFloyd, 10, PredictionType.V)]
    [TestCase(0.5, ThresholdType.Dynamic, 1000, PredictionType.V)]
    [TestCase(0.0, ThresholdType.None, 20, PredictionType.Epsilon)]
    [TestCase(null, ThresholdType.None, 20, PredictionType.X0)]
    public void OracleDenoiserIsRecoveredAtEveryResolution(double? eta, ThresholdType threshold, int steps, PredictionType prediction)
    {
        int[] res = [8, 4, 2];
        var config = new DiffusionConfig { ScheduleShiftedPower = 2, PredictionType = prediction };
        var sampler = new Sampler(new ConditionalDenoiser(B, 3, res), config);
        var clean = CleanPyramid(2, 3, res);
        var oracle = new OracleDenoiser(B, sampler.Schedule, clean, prediction);
        sampler = new Sampler(oracle, config);
        try
        {
            var outputs = sampler.Sample(2, Conditioning.None, new SamplerConfig { NumSteps = steps, DdimEta = eta, Threshold = threshold }, (ulong)rng.NextInt64());
            try
            {
                for (int r = 0; r < res.Length; r++)
                    Compare.AssertClose($"x0 of resolution {res[r]} (η {eta?.ToString() ?? "DDPM"}, {threshold}, {prediction})",
                        outputs[r], TestSeed.ToDouble(clean[r].ToArray()), new Tolerance(2e-4, 0));
            }
            finally { DisposeAll(outputs); }
            var tau = Sampler.Timesteps(1000, steps);
            Assert.That(oracle.Calls, Has.Count.EqualTo(steps), "one forward pass per step for all resolutions");
            for (int i = 0; i < steps; i++)
                Assert.That(oracle.Calls[i].Timesteps, Is.All.EqualTo(tau[i] - 1), $"step {i} calls the model with t − 1");
        }
        finally { DisposeAll(clean); }
    }

    [Test]
    public void SameSeedSameSamplesOtherSeedOtherSamples()
    {
        var model = new ConditionalDenoiser(B, 3, 8, 4);
        var sampler = new Sampler(model, new DiffusionConfig());
        foreach (double? eta in new double?[] { 0.0, null })
        {
            var options = new SamplerConfig { NumSteps = 8, DdimEta = eta, Threshold = ThresholdType.Dynamic };
            var a = sampler.Sample(3, Conditioning.None, options, 99);
            var b = sampler.Sample(3, Conditioning.None, options, 99);
            var c = sampler.Sample(3, Conditioning.None, options, 100);
            try
            {
                for (int r = 0; r < 2; r++)
                {
                    Assert.That(b[r].ToArray(), Is.EqualTo(a[r].ToArray()), $"η {eta}: the same seed gives the same samples");
                    Assert.That(c[r].ToArray(), Is.Not.EqualTo(a[r].ToArray()), $"η {eta}: another seed gives other samples");
                    Assert.That(a[r].ToArray(), Is.All.InRange(-1f, 1f), "outputs are clipped to [−1, 1]");
                }
                Assert.That(a[0].ToArray().Take(8 * 8 * 3), Is.Not.EqualTo(a[0].ToArray().Skip(8 * 8 * 3).Take(8 * 8 * 3)), "samples of a batch differ");
            }
            finally { DisposeAll(a.Concat(b).Concat(c)); }
        }
    }

    [Test]
    public void ClassGuidanceDoublesTheBatchAndMixesPredictions()
    {
        int[] res = [4, 2];
        int[] labels = [2, 5, 0];
        const double w = 3;
        var model = new ConditionalDenoiser(B, 2, res) { RecordInputs = true };
        var config = new DiffusionConfig { ScheduleShiftedPower = 2 };
        var sampler = new Sampler(model, config);
        var outputs = sampler.Sample(3, new Conditioning(ClassLabels: labels), new SamplerConfig { NumSteps = 2, DdimEta = 0, Threshold = ThresholdType.None, GuidanceScale = w }, 5);
        try
        {
            var tau = Sampler.Timesteps(1000, 2);
            Assert.That(tau, Is.EqualTo(new[] { 667, 334, 0 }));
            Assert.That(model.Calls, Has.Count.EqualTo(2));
            for (int i = 0; i < 2; i++)
            {
                Assert.That(model.Calls[i].Labels, Is.EqualTo(new[] { -1, -1, -1, 2, 5, 0 }), "[unconditional; conditional]");
                Assert.That(model.Calls[i].Timesteps, Is.All.EqualTo(tau[i] - 1));
            }
            for (int r = 0; r < res.Length; r++)
            {
                int per = 2 * res[r] * res[r];
                double[] x = model.Calls[0].Inputs![r].Take(3 * per).Select(v => (double)v).ToArray();
                Assert.That(model.Calls[0].Inputs![r].Skip(3 * per), Is.EqualTo(x.Select(v => (float)v)), "both halves see the same x_t");
                for (int i = 0; i < 2; i++)
                {
                    double gt = sampler.Schedule.Gamma(tau[i], r), gs = sampler.Schedule.Gamma(tau[i + 1], r);
                    var next = new double[x.Length];
                    for (int k = 0; k < x.Length; k++)
                    {
                        int label = labels[k / per];
                        double u = 0.5 * x[k] + ConditionalDenoiser.Embedding(Conditioning.NullClass), c = 0.5 * x[k] + ConditionalDenoiser.Embedding(label);
                        double v = u + w * (c - u);
                        double x0 = Math.Sqrt(gt) * x[k] - Math.Sqrt(1 - gt) * v;
                        double eps = (x[k] - Math.Sqrt(gt) * x0) / Math.Sqrt(1 - gt);
                        next[k] = Math.Sqrt(gs) * x0 + Math.Sqrt(1 - gs) * eps;
                    }
                    if (i == 0)
                    {
                        var seen = model.Calls[1].Inputs![r];
                        Compare.AssertClose($"x_t of step 1, resolution {res[r]}", seen.AsSpan(0, 3 * per), next, new Tolerance(1e-5, 1e-5));
                        x = seen.Take(3 * per).Select(v => (double)v).ToArray();
                    }
                    else Compare.AssertClose($"guided output, resolution {res[r]}", outputs[r], next.Select(v => Math.Clamp(v, -1, 1)).ToArray(), new Tolerance(1e-5, 1e-5));
                }
            }
        }
        finally { DisposeAll(outputs); }
    }

    [Test]
    public void TextGuidanceUsesTheNegativeConditioningFirst()
    {
        var model = new ConditionalDenoiser(B, 3, 4);
        var sampler = new Sampler(model, new DiffusionConfig());
        using var tokens = B.FromArray(TestSeed.Uniform(rng, 2 * 3 * 5), 2, 3, 5);
        using var mask = B.Full(1f, 2, 3);
        using var negTokens = B.FromArray(TestSeed.Uniform(rng, 3 * 5), 1, 3, 5);
        using var negMask = B.Full(1f, 1, 3);
        var positive = new Conditioning(Tokens: tokens, TokenMask: mask);
        var options = new SamplerConfig { NumSteps = 3, GuidanceScale = 7.5 };
        var outputs = sampler.Sample(2, positive, options, 1, negative: new Conditioning(Tokens: negTokens, TokenMask: negMask));
        DisposeAll(outputs);
        var neg = negTokens.ToArray();
        var pos = tokens.ToArray();
        Assert.That(model.TokensSeen, Has.Count.EqualTo(3));
        Assert.That(model.TokensSeen[0], Is.EqualTo(neg.Concat(neg).Concat(pos).ToArray()), "[negative (broadcast to the batch); positive]");
        Assert.That(() => sampler.Sample(2, positive, options, 1), Throws.ArgumentException.With.Message.Contains("negative conditioning"));
        Assert.That(() => sampler.Sample(2, Conditioning.None, options, 1), Throws.ArgumentException.With.Message.Contains("needs a class or text"));
        using var wrong = B.Zeros(1, 4, 5);
        Assert.That(() => sampler.Sample(2, positive, options, 1, new Conditioning(Tokens: wrong, TokenMask: negMask)),
            Throws.ArgumentException.With.Message.Contains("do not match"));
    }

    [Test]
    public void MemoryStaysFlatOverManySteps()
    {
        var model = new ConditionalDenoiser(B, 3, 16, 8, 4);
        var sampler = new Sampler(model, new DiffusionConfig());
        long before = B.Memory.LiveBytes;
        var outputs = sampler.Sample(2, new Conditioning(ClassLabels: [1, 3]),
            new SamplerConfig { NumSteps = 120, Threshold = ThresholdType.Dynamic, GuidanceScale = 4 }, 3);
        long returned = outputs.Sum(t => t.Bytes);
        DisposeAll(outputs);
        var live = model.Calls.Select(c => c.LiveBytes).ToArray();
        Assert.That(live.Skip(1).Max() - live.Skip(1).Min(), Is.EqualTo(0),
            $"live bytes at each model call must not grow: {string.Join(" ", live.Take(12))} ... {live[^1]}");
        Assert.That(returned, Is.GreaterThan(0));
        Assert.That(B.Memory.LiveBytes, Is.EqualTo(before), "nothing is left behind once the outputs are disposed");
    }

    [Test]
    public void DdimWithEtaOneIsTheDdpmPosterior()
    {
        for (int k = 0; k < 20; k++)
        {
            double gt = rng.NextDouble() * 0.98 + 0.01, gs = gt + (1 - gt) * rng.NextDouble();
            var ddpm = Sampler.TransitionCoefficients(gt, gs, null);
            var ddim = Sampler.TransitionCoefficients(gt, gs, 1.0);
            Assert.That(ddim.OfX0, Is.EqualTo(ddpm.OfX0).Within(1e-12), $"g_t {gt}, g_s {gs}{Seed}");
            Assert.That(ddim.OfXt, Is.EqualTo(ddpm.OfXt).Within(1e-12));
            Assert.That(ddim.NoiseStd, Is.EqualTo(ddpm.NoiseStd).Within(1e-12));
            var deterministic = Sampler.TransitionCoefficients(gt, gs, 0.0);
            Assert.That(deterministic.NoiseStd, Is.EqualTo(0.0));
            // DDIM η = 0 keeps the noise direction: x_s = √g_s·x0 + √(1 − g_s)·ε for x_t = √g_t·x0 + √(1 − g_t)·ε.
            double x0 = rng.NextDouble() - 0.5, eps = rng.NextDouble() - 0.5, xt = Math.Sqrt(gt) * x0 + Math.Sqrt(1 - gt) * eps;
            Assert.That(deterministic.OfX0 * x0 + deterministic.OfXt * xt, Is.EqualTo(Math.Sqrt(gs) * x0 + Math.Sqrt(1 - gs) * eps).Within(1e-12));
        }
        Assert.That(() => Sampler.TransitionCoefficients(0.5, 0.4, null), Throws.ArgumentException);
    }

    /// <summary>The per-step noise can come from the caller: the seeded draws given back reproduce the seeded sample,
    /// other noise changes it, and the source is asked once per noisy transition and resolution with the stream's shape.</summary>
    [TestCase(null)]
    [TestCase(0.5)]
    public void InjectedStepNoiseReplacesTheDrawnNoise(double? eta)
    {
        var model = new ConditionalDenoiser(B, 3, 8, 4);
        var sampler = new Sampler(model, new DiffusionConfig());
        var options = new SamplerConfig { NumSteps = 5, DdimEta = eta, Threshold = ThresholdType.Clip };
        ulong seed = (ulong)rng.NextInt64();
        var asked = new List<(int Transition, int Resolution, int[] Shape)>();
        var seeded = sampler.Sample(2, Conditioning.None, options, seed);
        var replayed = sampler.Sample(2, Conditioning.None, options, seed, stepNoise: (z, i, r) =>
        {
            asked.Add((i, r, z.Shape));
            DiffusionRandom.Normal(z, seed, (ulong)(i + 1), r);
        });
        var shifted = sampler.Sample(2, Conditioning.None, options, seed, stepNoise: (z, i, r) =>
        {
            DiffusionRandom.Normal(z, seed, (ulong)(i + 1), r);
            Ops.Scale(z, 0.5f, z);
        });
        try
        {
            Assert.That(asked.Select(a => (a.Transition, a.Resolution)),
                Is.EquivalentTo(from i in Enumerable.Range(0, 4) from r in Enumerable.Range(0, 2) select (i, r)),
                "every transition but the last (to t = 0) adds noise at every resolution");
            Assert.That(asked.Select(a => a.Shape[2]), Is.All.EqualTo(8).Or.EqualTo(4));
            for (int r = 0; r < 2; r++)
            {
                Compare.AssertClose($"stream {r}: the seeded noise given back", replayed[r], TestSeed.ToDouble(seeded[r].ToArray()), new Tolerance(0, 0));
                Assert.That(shifted[r].ToArray(), Is.Not.EqualTo(seeded[r].ToArray()), $"stream {r}: other noise, other samples");
            }
        }
        finally { DisposeAll(seeded.Concat(replayed).Concat(shifted)); }
    }

    [Test]
    public void BadArgumentsAreRejected()
    {
        var sampler = new Sampler(new ConditionalDenoiser(B, 3, 8, 4), new DiffusionConfig());
        var options = new SamplerConfig { NumSteps = 2 };
        Assert.That(() => sampler.Sample(0, Conditioning.None, options, 1), Throws.ArgumentException.With.Message.Contains("batch"));
        Assert.That(() => sampler.Sample(2, new Conditioning(ClassLabels: [1]), options, 1), Throws.ArgumentException.With.Message.Contains("batch 1"));
        Assert.That(() => sampler.Sample(2, Conditioning.None, options with { NumSteps = 1001 }, 1), Throws.ArgumentException.With.Message.Contains("[1, 1000]"));
        using var small = B.Zeros(2, 3, 4, 4);
        Assert.That(() => sampler.Sample(2, Conditioning.None, options, 1, initialNoise: [small, small]), Throws.ArgumentException.With.Message.Contains("initial noise 0"));
    }
}
