using Mdm.Model.Diffusion;

namespace Mdm.Tests.Diffusion;

/// <summary>The gamma tables against their closed forms and the reference values; the per-resolution shift.</summary>
public class ScheduleTests
{
    static double Ab(double tau) { double c = Math.Cos((tau + 0.008) / 1.008 * Math.PI / 2); return c * c; }

    // §3.1 of the reference: index, g, logSNR. Its logSNR column was rounded twice (to 3, then 2 decimals:
    // 10.09499 → 10.095 → 10.10 and −0.02463 → −0.025 → −0.03), so it is matched within 0.0075; its g column
    // (consistent with these logSNRs) within half a unit of the last printed digit.
    [TestCase(1, 0.99996, 0.000005, 10.10)]
    [TestCase(250, 0.847, 0.0005, 1.71)]
    [TestCase(500, 0.494, 0.0005, -0.03)]
    [TestCase(750, 0.144, 0.0005, -1.78)]
    [TestCase(999, 2.4e-6, 0.05e-6, -12.93)]
    [TestCase(1000, 2.4e-9, 0.05e-9, -19.84)]
    public void DeepFloydMatchesTheReferenceTable(int index, double gamma, double gammaTolerance, double logSnr)
    {
        var s = new NoiseSchedule(new DiffusionConfig(), [64]);
        Assert.That(s.Gammas, Has.Count.EqualTo(1001));
        Assert.That(s.Gamma(0), Is.EqualTo(1.0));
        Assert.That(s.Gamma(index), Is.EqualTo(gamma).Within(gammaTolerance), $"gammas[{index}]");
        Assert.That(s.LogSnr(index), Is.EqualTo(logSnr).Within(0.0075), $"logSNR[{index}]");
    }

    [Test]
    public void DeepFloydIsTheTelescopedCosineWhereTheCapIsInactive()
    {
        const int n = 1000;
        var g = NoiseSchedule.BaseGammas(ScheduleType.DeepFloyd, n);
        int capped = 0;
        for (int i = 1; i <= n; i++)
        {
            bool cap = 1 - Ab((double)i / n) / Ab((double)(i - 1) / n) > 0.999;
            if (cap) { capped++; Assert.That(g[i], Is.EqualTo(g[i - 1] * 0.001).Within(1e-12 * g[i - 1]), $"capped step {i}"); continue; }
            if (capped == 0) Assert.That(g[i], Is.EqualTo(Ab((double)i / n) / Ab(0)).Within(1e-12), $"gammas[{i}] = ab(i/N)/ab(0)");
        }
        Assert.That(capped, Is.EqualTo(1), "only the last step hits the 0.999 cap");
        for (int i = 1; i <= n; i++) Assert.That(g[i], Is.LessThan(g[i - 1]), "gammas decrease");
    }

    [Test]
    public void CosineIsLogSnrLinearInAngleBetweenPlusAndMinusFive()
    {
        const int n = 37;
        var g = NoiseSchedule.BaseGammas(ScheduleType.Cosine, n);
        double b = Math.Atan(Math.Exp(-2.5)), a = Math.Atan(Math.Exp(2.5)) - b;
        Assert.That(NoiseSchedule.LogSnrOf(g[1]), Is.EqualTo(5).Within(1e-9));
        Assert.That(NoiseSchedule.LogSnrOf(g[n]), Is.EqualTo(-5).Within(1e-9));
        for (int i = 1; i <= n; i++)
        {
            // tan(angle) = e^{−λ/2}: the angle is linear in the step.
            double angle = Math.Atan(Math.Exp(-NoiseSchedule.LogSnrOf(g[i]) / 2));
            Assert.That(angle, Is.EqualTo(b + a * (i - 1) / (n - 1)).Within(1e-12), $"step {i}");
        }
    }

    [Test]
    public void DdpmIsTheProductOfLinearBetas()
    {
        const int n = 1000;
        var g = NoiseSchedule.BaseGammas(ScheduleType.Ddpm, n);
        double log = 0;
        for (int i = 1; i <= n; i++) log += Math.Log(1 - (1e-4 + (0.02 - 1e-4) * (i - 1) / (n - 1)));
        Assert.That(g[n], Is.EqualTo(Math.Exp(log)).Within(1e-9 * Math.Exp(log)));
        Assert.That(g[1], Is.EqualTo(1 - 1e-4).Within(1e-15));
        Assert.That(g[n], Is.EqualTo(4.0358e-5).Within(1e-8), "the well-known ᾱ_T of DDPM");
    }

    [TestCase(1.0)]
    [TestCase(2.0)]
    [TestCase(1.5)]
    public void ShiftLowersLogSnrByPowerTimesLogScale(double power)
    {
        var config = new DiffusionConfig { ScheduleShiftedPower = power };
        var s = new NoiseSchedule(config, [256, 64, 16]);
        Assert.That(s.ResolutionScales, Is.EqualTo(new[] { 16.0, 4.0, 1.0 }));
        foreach (int i in new[] { 1, 2, 250, 500, 750, 999, 1000 })
            for (int r = 0; r < 3; r++)
            {
                double g = s.Gamma(i), gr = s.Gamma(i, r), scale = s.ResolutionScales[r];
                Assert.That(NoiseSchedule.LogSnrOf(gr), Is.EqualTo(NoiseSchedule.LogSnrOf(g) - power * Math.Log(scale)).Within(1e-9),
                    $"logSNR_r at index {i}, scale {scale}");
                double snr = g / (1 - g);
                Assert.That(gr, Is.EqualTo(1 / (1 + 1 / (snr / Math.Pow(scale, power)))).Within(1e-12 * Math.Max(gr, 1e-300) + 1e-15),
                    $"g_r = 1/(1 + 1/(SNR/s^p)) at index {i}, scale {scale}");
            }
        for (int r = 0; r < 3; r++) Assert.That(s.Gamma(0, r), Is.EqualTo(1.0), "clean stays clean at every resolution");
        Assert.That(s.Gamma(500, 2), Is.EqualTo(s.Gamma(500)), "the lowest stream is never shifted");
    }

    [Test]
    public void WithoutTheShiftStreamsUseBaseGammasAndScaleTheirSignal()
    {
        var s = new NoiseSchedule(new DiffusionConfig { ScheduleShifted = false }, [64, 16]);
        Assert.That(s.Gamma(300, 0), Is.EqualTo(s.Gamma(300)));
        Assert.That(s.SignalScale(0), Is.EqualTo(4.0));
        Assert.That(s.SignalScale(1), Is.EqualTo(1.0));
        Assert.That(new NoiseSchedule(new DiffusionConfig(), [64, 16]).SignalScale(0), Is.EqualTo(1.0));
    }

    [Test]
    public void BadResolutionsAndIndicesAreRejected()
    {
        var config = new DiffusionConfig();
        Assert.That(() => new NoiseSchedule(config, [16, 64]), Throws.ArgumentException.With.Message.Contains("high → low"));
        Assert.That(() => new NoiseSchedule(config, [64, 24]), Throws.ArgumentException.With.Message.Contains("dividing"));
        Assert.That(() => new NoiseSchedule(config, []), Throws.ArgumentException);
        var s = new NoiseSchedule(config, [8]);
        Assert.That(() => s.Gamma(1001), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("1001"));
        Assert.That(() => s.Gamma(3, 1), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
