using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Diffusion;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Diffusion;

/// <summary>The multi-resolution loss against a float64 host recomputation, masks, weights and the ε̂ − ε identity (CPU backend).</summary>
public class DiffusionLossTests
{
    Backend B = null!;
    Random rng = null!;

    [OneTimeSetUp] public void GetBackend() => B = TestBackends.Get(BackendKind.Cpu);
    [SetUp] public void FreshSeed() => rng = TestSeed.NewRandom();

    static string Seed => TestSeed.Describe();

    (Tensor t, double[] host) Images(int batch, int channels, int res)
    {
        var f = TestSeed.Uniform(rng, (long)batch * channels * res * res);
        return (B.FromArray(f, batch, channels, res, res), TestSeed.ToDouble(f));
    }

    static double[] HostPool(double[] x, int planes, int res, int s)
    {
        int o = res / s;
        var y = new double[planes * o * o];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < o; i++)
                for (int j = 0; j < o; j++)
                {
                    double sum = 0;
                    for (int a = 0; a < s; a++)
                        for (int b = 0; b < s; b++) sum += x[(p * res + i * s + a) * res + j * s + b];
                    y[(p * o + i) * o + j] = sum / (s * s);
                }
        return y;
    }

    /// <summary>The noise the loss drew for resolution r, regenerated from the same Philox stream.</summary>
    double[] HostNoise(int[] shape, ulong seed, ulong step, int r)
    {
        using var t = B.Empty(shape);
        return TestSeed.ToDouble(DiffusionRandom.Normal(t, seed, step, 1 + r).ToArray());
    }

    /// <summary>Per-resolution per-sample L_r of the affine fake, from the definitions (not the library's coefficient tables).</summary>
    double[][] HostPerSampleLosses(DiffusionConfig config, AffineDenoiser model, double[] images, int batch, int[] t, ulong seed, ulong step)
    {
        int c = model.ImageChannels;
        var res = model.Resolutions;
        var schedule = new NoiseSchedule(config, res);
        var losses = new double[res.Count][];
        var clean = images;
        for (int r = 0; r < res.Count; r++)
        {
            if (r > 0) clean = HostPool(clean, batch * c, res[r - 1], res[r - 1] / res[r]);
            var eps = HostNoise([batch, c, res[r], res[r]], seed, step, r);
            double a = model.Scales[r].Data.ToArray()[0];
            var bias = model.Biases[r].Data.ToArray();
            double signal = config.ScheduleShifted ? 1 : (double)res[r] / res[^1];
            int plane = res[r] * res[r], per = c * plane;
            losses[r] = new double[batch];
            for (int b = 0; b < batch; b++)
            {
                double g = schedule.Gamma(t[b] + 1, r), al = Math.Sqrt(g), si = Math.Sqrt(1 - g), sum = 0;
                for (int k = 0; k < per; k++)
                {
                    double x0 = clean[b * per + k] / signal, e = eps[b * per + k];
                    double xt = al * x0 + si * e;
                    double p = a * xt + bias[k / plane];
                    var (x0Hat, epsHat) = config.PredictionType switch
                    {
                        PredictionType.V => (al * xt - si * p, si * xt + al * p),
                        PredictionType.Epsilon => ((xt - si * p) / al, p),
                        _ => (p, (xt - al * p) / si),
                    };
                    var (estimate, truth) = config.LossTargetType switch
                    {
                        PredictionType.Epsilon => (epsHat, e),
                        PredictionType.X0 => (x0Hat, x0),
                        _ => (al * epsHat - si * x0Hat, al * e - si * x0),
                    };
                    sum += (estimate - truth) * (estimate - truth);
                }
                losses[r][b] = sum / per;
            }
        }
        return losses;
    }

    public static IEnumerable<TestCaseData> Configs()
    {
        yield return new TestCaseData(new[] { 8, 4, 2 }, 3, new DiffusionConfig()).SetArgDisplayNames("8-4-2 defaults");
        yield return new TestCaseData(new[] { 8, 4, 2 }, 3, new DiffusionConfig { ScheduleShiftedPower = 2, MultiResWeights = [16, 4, 1] }).SetArgDisplayNames("8-4-2 p2 16:4:1");
        yield return new TestCaseData(new[] { 8, 2 }, 2, new DiffusionConfig { UseDoubleLoss = false }).SetArgDisplayNames("8-2 single loss");
        yield return new TestCaseData(new[] { 8, 4 }, 6, new DiffusionConfig { MixedRatio = [2, 1] }).SetArgDisplayNames("8-4 mixed 2:1");
        yield return new TestCaseData(new[] { 8, 4, 2 }, 5, new DiffusionConfig { MixedRatio = [1, 1, 2], MultiResWeights = [3, 2, 1] }).SetArgDisplayNames("8-4-2 mixed 1:1:2");
        yield return new TestCaseData(new[] { 6, 3 }, 3, new DiffusionConfig { ScheduleShifted = false, ScheduleType = ScheduleType.Cosine }).SetArgDisplayNames("6-3 unshifted cosine");
        yield return new TestCaseData(new[] { 4 }, 4, new DiffusionConfig { ScheduleType = ScheduleType.Ddpm }).SetArgDisplayNames("4 ddpm");
        yield return new TestCaseData(new[] { 8, 4 }, 3, new DiffusionConfig { LossTargetType = PredictionType.V }).SetArgDisplayNames("8-4 v target");
        yield return new TestCaseData(new[] { 8, 4 }, 3, new DiffusionConfig { PredictionType = PredictionType.Epsilon, LossTargetType = PredictionType.X0, NumDiffusionSteps = 50 }).SetArgDisplayNames("8-4 eps→x0");
        yield return new TestCaseData(new[] { 8, 4 }, 3, new DiffusionConfig { PredictionType = PredictionType.X0, LossTargetType = PredictionType.V }).SetArgDisplayNames("8-4 x0→v");
    }

    [TestCaseSource(nameof(Configs))]
    public void LossMatchesFloat64Recomputation(int[] resolutions, int batch, DiffusionConfig config)
    {
        const int channels = 3;
        using var model = new AffineDenoiser(B, channels, resolutions, rng);
        var loss = new DiffusionLoss(model, config);
        var (images, host) = Images(batch, channels, resolutions[0]);
        ulong seed = (ulong)rng.NextInt64(), step = (ulong)rng.Next(1000);
        using (images)
        using (var graph = new Graph())
        using (var result = loss.Compute(images, Conditioning.None, seed, step))
        {
            Assert.That(result.Timesteps, Is.EqualTo(DiffusionRandom.Timesteps(batch, config.NumDiffusionSteps, seed, step)));
            var perSample = HostPerSampleLosses(config, model, host, batch, result.Timesteps.ToArray(), seed, step);
            var weights = config.LossWeights(resolutions.Length);
            var fractions = config.MixedFractions(resolutions.Length);
            double expected = 0;
            for (int r = 0; r < resolutions.Length; r++)
            {
                int counted = (int)Math.Floor(fractions[r] * batch);
                Assert.That(result.CountedSamples[r], Is.EqualTo(counted), $"samples counted at resolution {r}");
                Compare.AssertClose($"L_r of resolution {resolutions[r]}", result.PerSampleLosses[r], perSample[r], new Tolerance(1e-6, 1e-4));
                for (int b = 0; b < counted; b++) expected += weights[r] * perSample[r][b] / fractions[r];
            }
            expected /= batch;
            Assert.That(result.Loss.Data.Rank, Is.EqualTo(0), "the loss is a scalar");
            Assert.That(result.Loss.Item(), Is.EqualTo(expected).Within(1e-4 * Math.Abs(expected) + 1e-7), Seed);
            result.Loss.Backward();
            for (int r = 0; r < resolutions.Length; r++)
                Assert.That(model.Scales[r].Grad, Is.Not.Null, $"resolution {r} stays in the graph even when it weighs 0");
        }
    }

    [Test]
    public void MaskedSamplesDoNotCountAndCountedOnesAreDividedByTheirFraction()
    {
        int[] res = [8, 4];
        int batch = 6;
        var config = new DiffusionConfig { MixedRatio = [2, 1] };
        using var model = new AffineDenoiser(B, 3, res, rng);
        var loss = new DiffusionLoss(model, config);
        var (images, _) = Images(batch, 3, 8);
        using (images)
        {
            using var graph = new Graph();
            using var plain = loss.Compute(images, Conditioning.None, 7, 3);
            Assert.That(plain.CountedSamples, Is.EqualTo(new[] { 4, 6 }), "⌊2/3·6⌋ = 4 samples train the 8² stream");
            var l0 = plain.PerSampleLosses[0].ToArray();
            var l1 = plain.PerSampleLosses[1].ToArray();
            double expected = (l0.Take(4).Sum(v => (double)v) / (2.0 / 3) + l1.Sum(v => (double)v)) / batch;
            Assert.That(plain.Loss.Item(), Is.EqualTo(expected).Within(1e-6 * expected));
            Assert.That(plain.ResolutionLosses()[0], Is.EqualTo(l0.Take(4).Average(v => (double)v)).Within(1e-6));

            // Wreck the 8² prediction of the samples that do not train at 8²: the loss must not move.
            var wrecked = new WreckingDenoiser(model, resolution: 0, fromSample: 4);
            using var again = new DiffusionLoss(wrecked, config).Compute(images, Conditioning.None, 7, 3);
            Assert.That(again.PerSampleLosses[0].ToArray()[5], Is.GreaterThan(1e6f), "the wrecked samples do have a huge L_r");
            Assert.That(again.Loss.Item(), Is.EqualTo(plain.Loss.Item()), "samples beyond ⌊m_r·B⌋ are masked out");
        }
    }

    /// <summary>Adds 1e4 to one resolution's output for samples from <c>fromSample</c> on.</summary>
    sealed class WreckingDenoiser(AffineDenoiser inner, int resolution, int fromSample) : IDenoiser
    {
        public IReadOnlyList<int> Resolutions => inner.Resolutions;
        public int ImageChannels => inner.ImageChannels;
        public Backend Backend => inner.Backend;

        public Variable[] Forward(IReadOnlyList<Variable> noisy, IReadOnlyList<int> timesteps, Conditioning conditioning)
        {
            var outputs = inner.Forward(noisy, timesteps, conditioning);
            var shape = outputs[resolution].Shape;
            var add = new float[shape[0]];
            for (int b = fromSample; b < add.Length; b++) add[b] = 1e4f;
            using var k = Backend.FromArray(add, shape[0], 1, 1, 1);
            outputs[resolution] = F.Add(outputs[resolution], new Variable(k));
            return outputs;
        }
    }

    [Test]
    public void EpsilonErrorIsRootGammaTimesVError()
    {
        // ε̂ − ε = √g·(v̂ − v): an oracle that is off by a constant c in v gives L_r = g_r·c² per sample.
        int[] res = [8, 4, 2];
        int batch = 5;
        var config = new DiffusionConfig { ScheduleShiftedPower = 2 };
        var schedule = new NoiseSchedule(config, res);
        var (images, _) = Images(batch, 3, 8);
        using (images)
        {
            using var p1 = Ops.AvgPool2d(images, 2);
            using var p2 = Ops.AvgPool2d(p1, 2);
            var oracle = new OracleDenoiser(B, schedule, [images, p1, p2]);
            var loss = new DiffusionLoss(oracle, config);
            using var graph = new Graph();
            var t = new[] { 0, 1, 499, 998, 999 };
            using (var exact = loss.Compute(images, Conditioning.None, t, 11, 0))
                Assert.That(exact.Loss.Item(), Is.LessThan(1e-9), "the exact v gives (almost) zero loss");
            const float c = 0.3f;
            oracle.Offset = c;
            using var off = loss.Compute(images, Conditioning.None, t, 11, 0);
            for (int r = 0; r < res.Length; r++)
            {
                var expected = t.Select(ti => schedule.Gamma(ti + 1, r) * c * c).ToArray();
                Compare.AssertClose($"L_r = g_r·c² at resolution {res[r]}", off.PerSampleLosses[r], expected, new Tolerance(1e-7, 1e-4));
            }
        }
    }

    [Test]
    public void SingleLossGivesTheLowerResolutionsZeroGradients()
    {
        using var model = new AffineDenoiser(B, 3, [8, 4], rng);
        var loss = new DiffusionLoss(model, new DiffusionConfig { UseDoubleLoss = false });
        var (images, _) = Images(4, 3, 8);
        using (images)
        using (var graph = new Graph())
        using (var result = loss.Compute(images, Conditioning.None, 5, 1))
        {
            result.Loss.Backward();
            Assert.That(model.Scales[1].Grad!.ToArray(), Is.All.EqualTo(0f), "the 4² stream is in the graph with weight 0");
            Assert.That(model.Biases[1].Grad!.ToArray(), Is.All.EqualTo(0f));
            Assert.That(model.Scales[0].Grad!.ToArray()[0], Is.Not.EqualTo(0f), "the 8² stream trains");
            Assert.That(result.ResolutionLosses()[1], Is.GreaterThan(0), "its loss is still reported");
        }
    }

    [Test]
    public void SameSeedAndStepGiveTheSameLossAndOtherStepsDiffer()
    {
        using var model = new AffineDenoiser(B, 3, [8, 4], rng);
        var loss = new DiffusionLoss(model, new DiffusionConfig());
        var (images, _) = Images(8, 3, 8);
        using (images)
        using (var graph = new Graph())
        {
            using var a = loss.Compute(images, Conditioning.None, 42, 10);
            using var b = loss.Compute(images, Conditioning.None, 42, 10);
            using var c = loss.Compute(images, Conditioning.None, 42, 11);
            Assert.That(b.Loss.Item(), Is.EqualTo(a.Loss.Item()));
            Assert.That(b.Timesteps, Is.EqualTo(a.Timesteps));
            Assert.That(c.Timesteps, Is.Not.EqualTo(a.Timesteps), "another step draws other timesteps");
            Assert.That(c.Loss.Item(), Is.Not.EqualTo(a.Loss.Item()));
            Assert.That(a.Timesteps, Is.All.InRange(0, 999));
        }
    }

    [Test]
    public void BadInputsAreRejected()
    {
        using var model = new AffineDenoiser(B, 3, [8, 4], rng);
        var loss = new DiffusionLoss(model, new DiffusionConfig());
        using var graph = new Graph();
        using (var wrongRes = B.Zeros(2, 3, 4, 4))
            Assert.That(() => loss.Compute(wrongRes, Conditioning.None, 1, 0), Throws.ArgumentException.With.Message.Contains("[B>=1,3,8,8]"));
        using (var wrongChannels = B.Zeros(2, 1, 8, 8))
            Assert.That(() => loss.Compute(wrongChannels, Conditioning.None, 1, 0), Throws.ArgumentException.With.Message.Contains("[2,1,8,8]"));
        using var images = B.Zeros(2, 3, 8, 8);
        Assert.That(() => loss.Compute(images, Conditioning.None, [0, 1000], 1, 0), Throws.ArgumentException.With.Message.Contains("timestep 1000"));
        Assert.That(() => loss.Compute(images, Conditioning.None, [0], 1, 0), Throws.ArgumentException.With.Message.Contains("1 timesteps"));
        Assert.That(() => loss.Compute(images, new Conditioning(ClassLabels: [1, 2, 3]), 1, 0), Throws.ArgumentException.With.Message.Contains("batch 3"));
        var mixed = new DiffusionLoss(model, new DiffusionConfig { MixedRatio = [2, 1] });
        using var one = B.Zeros(1, 3, 8, 8);
        Assert.That(() => mixed.Compute(one, Conditioning.None, 1, 0), Throws.ArgumentException.With.Message.Contains("no samples"));
        Assert.That(() => new DiffusionLoss(model, new DiffusionConfig { MultiResWeights = [1, 2, 3] }), Throws.ArgumentException.With.Message.Contains("2 resolutions"));
    }
}
