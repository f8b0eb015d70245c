using Mdm.Model.Diffusion;

namespace Mdm.Tests.Diffusion;

/// <summary>ml-mdm's respacing: ratio (N + 1)/(K + 1), τ_i = round(i·ratio) descending, ties to even as Python.</summary>
public class TimestepTests
{
    [Test]
    public void TwoHundredFiftyStepsGive251PointsFrom997To0()
    {
        var tau = Sampler.Timesteps(1000, 250);
        Assert.That(tau, Has.Length.EqualTo(251));
        Assert.That(tau[..3], Is.EqualTo(new[] { 997, 993, 989 }));
        Assert.That(tau[^2..], Is.EqualTo(new[] { 4, 0 }));
        for (int i = 0; i < 250; i++)
        {
            Assert.That(tau[i], Is.GreaterThan(tau[i + 1]), "strictly descending");
            Assert.That(tau[i], Is.EqualTo((int)Math.Round((250 - i) * 1001.0 / 251, MidpointRounding.ToEven)));
        }
    }

    [Test]
    public void AllThousandStepsGive1000To0()
    {
        Assert.That(Sampler.Timesteps(1000, 1000), Is.EqualTo(Enumerable.Range(0, 1001).Reverse().ToArray()));
    }

    [Test]
    public void ExactHalvesRoundToEvenLikePython()
    {
        // K = 1: ratio 500.5, Python round(500.5) = 500. K = 13: ratio 71.5 exactly; round(214.5) = 214, round(71.5) = 72.
        Assert.That(Sampler.Timesteps(1000, 1), Is.EqualTo(new[] { 500, 0 }));
        var tau = Sampler.Timesteps(1000, 13);
        Assert.That(tau[^2], Is.EqualTo(72));
        Assert.That(tau[^4], Is.EqualTo(214));
        Assert.That(tau[0], Is.EqualTo(930), "13·71.5 = 929.5 rounds to the even 930");
    }

    [TestCase(0)]
    [TestCase(1001)]
    public void StepCountsOutsideOneToNAreRejected(int k)
    {
        Assert.That(() => Sampler.Timesteps(1000, k), Throws.ArgumentException.With.Message.Contains("[1, 1000]"));
    }
}
