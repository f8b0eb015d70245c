using System.Text.Json;
using Mdm.Model.Diffusion;

namespace Mdm.Tests.Diffusion;

/// <summary>JSON loading (camelCase, ml-mdm spellings, ratio strings), validation errors, weights and mixed fractions.</summary>
public class DiffusionConfigTests
{
    [Test]
    public void ParsesTheShipped1024SettingsInCamelCase()
    {
        var c = DiffusionConfigJson.ParseDiffusion("""
            {
              "numDiffusionSteps": 1000, "scheduleType": "DEEPFLOYD", "scheduleShifted": true, "scheduleShiftedPower": 2,
              "predictionType": "V_PREDICTION", "lossTargetType": "DDPM", "useDoubleLoss": true,
              "multiResWeights": "16:4:1", "mixedRatio": [1, 1, 2], // comments and trailing commas are fine
            }
            """);
        Assert.That(c.ScheduleType, Is.EqualTo(ScheduleType.DeepFloyd));
        Assert.That(c.ScheduleShiftedPower, Is.EqualTo(2.0));
        Assert.That(c.PredictionType, Is.EqualTo(PredictionType.V));
        Assert.That(c.LossTargetType, Is.EqualTo(PredictionType.Epsilon));
        Assert.That(c.MultiResWeights, Is.EqualTo(new[] { 16.0, 4.0, 1.0 }));
        Assert.That(c.LossWeights(3), Is.EqualTo(new[] { 16.0, 4.0, 1.0 }));
        Assert.That(c.MixedFractions(3), Is.EqualTo(new[] { 0.25, 0.5, 1.0 }));
        var again = DiffusionConfigJson.ParseDiffusion(DiffusionConfigJson.ToJson(c));
        Assert.That(again with { MultiResWeights = null, MixedRatio = null }, Is.EqualTo(c with { MultiResWeights = null, MixedRatio = null }));
        Assert.That(again.MultiResWeights, Is.EqualTo(c.MultiResWeights));
        Assert.That(again.MixedRatio, Is.EqualTo(c.MixedRatio));
    }

    [Test]
    public void DefaultsAreTheNestedConfigsSettings()
    {
        var c = DiffusionConfigJson.ParseDiffusion("{}");
        Assert.That(c, Is.EqualTo(new DiffusionConfig()));
        Assert.That((c.NumDiffusionSteps, c.ScheduleType, c.ScheduleShifted, c.ScheduleShiftedPower, c.PredictionType, c.LossTargetType, c.UseDoubleLoss),
            Is.EqualTo((1000, ScheduleType.DeepFloyd, true, 1.0, PredictionType.V, PredictionType.Epsilon, true)));
        Assert.That(c.LossWeights(2), Is.EqualTo(new[] { 1.0, 1.0 }));
        Assert.That(c.MixedFractions(2), Is.EqualTo(new[] { 1.0, 1.0 }));
    }

    [Test]
    public void MixedRatioTwoToOneGivesTwoThirdsThenOne()
    {
        var c = new DiffusionConfig { MixedRatio = [2, 1] };
        Assert.That(c.MixedFractions(2)[0], Is.EqualTo(2.0 / 3).Within(1e-15));
        Assert.That(c.MixedFractions(2)[1], Is.EqualTo(1.0));
    }

    [Test]
    public void WithoutDoubleLossOnlyTheHighestResolutionWeighs()
    {
        Assert.That(new DiffusionConfig { UseDoubleLoss = false }.LossWeights(3), Is.EqualTo(new[] { 1.0, 0.0, 0.0 }));
    }

    [Test]
    public void TopLevelRatiosAreAcceptedWhereTheYamlsPutThem()
    {
        using var doc = JsonDocument.Parse("""{ "mixedRatio": "2:1", "diffusion": { "scheduleShiftedPower": 1 } }""");
        var c = DiffusionConfigJson.ParseDiffusion(doc.RootElement.GetProperty("diffusion"), doc.RootElement);
        Assert.That(c.MixedRatio, Is.EqualTo(new[] { 2.0, 1.0 }));

        using var both = JsonDocument.Parse("""{ "multiResWeights": "4:1", "diffusion": { "multiResWeights": "4:1" } }""");
        Assert.That(() => DiffusionConfigJson.ParseDiffusion(both.RootElement.GetProperty("diffusion"), both.RootElement),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains("both at the top level and in the diffusion section"));
    }

    [TestCase("""{ "scheduleType": "SIGMOID" }""", "never wired in")]
    [TestCase("""{ "scheduleType": "LINEAR" }""", "DEEPFLOYD, COSINE, DDPM")]
    [TestCase("""{ "num_diffusion_steps": 1000 }""", "num_diffusion_steps")]
    [TestCase("""{ "multiResWeights": "16:x:1" }""", "'x' is not a number")]
    [TestCase("""{ "mixedRatio": true }""", "ratio")]
    [TestCase("""{ "predictionType": "SCORE" }""", "V_PREDICTION")]
    [TestCase("""[1, 2]""", "diffusion config")]
    public void BadJsonIsReportedWithTheKey(string json, string expected)
    {
        Assert.That(() => DiffusionConfigJson.ParseDiffusion(json), Throws.InstanceOf<InvalidDataException>().With.Message.Contains(expected));
    }

    [TestCase("""{ "numDiffusionSteps": 1 }""", "numDiffusionSteps")]
    [TestCase("""{ "scheduleShiftedPower": 0 }""", "scheduleShiftedPower")]
    [TestCase("""{ "useDoubleLoss": false, "multiResWeights": "16:4:1" }""", "needs useDoubleLoss")]
    [TestCase("""{ "mixedRatio": "2:0" }""", "positive")]
    [TestCase("""{ "multiResWeights": "1:-1" }""", "non-negative")]
    [TestCase("""{ "multiResWeights": "0:0" }""", "all zeros")]
    public void ImpossibleValuesAreRejected(string json, string expected)
    {
        Assert.That(() => DiffusionConfigJson.ParseDiffusion(json), Throws.ArgumentException.With.Message.Contains(expected));
    }

    [Test]
    public void RatioListsMustMatchTheDenoiser()
    {
        var c = new DiffusionConfig { MultiResWeights = [16, 4, 1] };
        Assert.That(() => c.ValidateFor(2), Throws.ArgumentException.With.Message.Contains("3 entries").And.Message.Contains("2 resolutions"));
        Assert.That(() => new DiffusionConfig { MixedRatio = [2, 1] }.MixedFractions(3), Throws.ArgumentException.With.Message.Contains("mixedRatio"));
    }

    [Test]
    public void SamplerConfigParsesAndValidates()
    {
        var s = DiffusionConfigJson.ParseSampler("""{ "numSteps": 250, "ddimEta": 1, "threshold": "DYNAMIC_IF", "guidanceScale": 7.5 }""");
        Assert.That(s, Is.EqualTo(new SamplerConfig { NumSteps = 250, DdimEta = 1, Threshold = ThresholdType.DynamicDeepFloyd, GuidanceScale = 7.5 }));
        Assert.That(DiffusionConfigJson.ParseSampler(DiffusionConfigJson.ToJson(s)), Is.EqualTo(s));
        Assert.That(() => DiffusionConfigJson.ParseSampler("""{ "ddimEta": -0.5 }"""), Throws.ArgumentException.With.Message.Contains("ddimEta"));
        Assert.That(() => DiffusionConfigJson.ParseSampler("""{ "numSteps": 0 }"""), Throws.ArgumentException.With.Message.Contains("numSteps"));
        Assert.That(() => DiffusionConfigJson.ParseSampler("""{ "threshold": "HARD" }"""), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("DYNAMIC_IF"));
    }
}
