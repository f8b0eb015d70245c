using Mdm.Model;
using Mdm.Model.Config;
using static Mdm.Tests.Model.ModelTestUtil;

namespace Mdm.Tests.Model;

/// <summary>Model configs: the shipped files load, JSON conventions, and impossible settings name field and value.</summary>
public class ModelConfigTests
{
    [TestCase("t2i-64.json", new[] { 64 })]
    [TestCase("t2i-64-256.json", new[] { 256, 64 })]
    [TestCase("t2i-64-256-1024.json", new[] { 1024, 256, 64 })]
    [TestCase("imagenet-64.json", new[] { 64 })]
    [TestCase("imagenet-64-256.json", new[] { 256, 64 })]
    [TestCase("cpu-demo.json", new[] { 32, 16 })]
    [TestCase("tiny-test.json", new[] { 16, 8 })]
    public void ShippedConfigsLoadWithTheirResolutions(string file, int[] resolutions)
    {
        var c = LoadConfig(file);
        Assert.That(c.Resolutions, Is.EqualTo(resolutions));
        // Round trip through the serializer gives the same model.
        var again = ModelConfig.Parse(c.ToJson());
        Assert.That(ModelFactory.CountParameters(again).Parameters.Select(p => p.Name),
            Is.EqualTo(ModelFactory.CountParameters(c).Parameters.Select(p => p.Name)));
    }

    [Test]
    public void PaperCoreSettingsAreRead()
    {
        var c = LoadConfig("t2i-64-256-1024.json");
        var core = c.Innermost;
        Assert.Multiple(() =>
        {
            Assert.That(core.ResolutionChannels, Is.EqualTo(new[] { 256, 512, 768 }));
            Assert.That(core.AttentionLayersAt(0), Is.EqualTo(0));
            Assert.That(core.AttentionLayersAt(2), Is.EqualTo(5));
            Assert.That(c.TextFeatureDim, Is.EqualTo(2048));
            Assert.That(c.CrossAttentionDim, Is.EqualTo(2048));
            Assert.That(core.MaskedCrossAttention, Is.False);
            Assert.That(core.MicroConditions("x"), Is.EqualTo(new[] { ("scale", 64f) }));
            Assert.That(c.Nested!.SkipNormalization, Is.True);
            Assert.That(c.Nested.InnerNested!.SkipNormalization, Is.False, "as shipped in cc12m_1024x1024.yaml");
            Assert.That(c.Nested.NestRatio, Is.EqualTo(4));
        });
    }

    [Test]
    public void OtherSectionsCommentsAndTrailingCommasAreAccepted()
    {
        var c = ModelConfig.Parse("""
            // a whole run file: only "model" is read here
            {
              "diffusion": { "schedule": "deepfloyd", "whatever": [1, 2, 3] },
              "model": { "imageSize": 32, "unet": { "resolutionChannels": [32, 64], "attentionLevels": [1], }, },
              "training": { "lr": 5e-5 },
            }
            """);
        Assert.That(c.Unet!.ResolutionChannels, Is.EqualTo(new[] { 32, 64 }));
        Assert.That(c.Unet.Temporal, Is.EqualTo(128), "default temporal dim 4·C0");
        Assert.That(c.ImageChannels, Is.EqualTo(3));
    }

    static string Unet(string fields, int size = 32) =>
        $$"""{ "model": { "imageSize": {{size}}, "unet": { "resolutionChannels": [32, 64], "attentionLevels": [1], {{fields}} } } }""";

    static string Nested(string outer, string inner = "", string level = "", int size = 32) => $$"""
        { "model": { "imageSize": {{size}}, "nested": {
            "outer": { "resolutionChannels": [32, 32], "attentionLevels": [], {{outer}} },
            "innerUnet": { "resolutionChannels": [32, 64], "attentionLevels": [1], {{inner}} }, {{level}} } } }
        """;

    [TestCase("""{ "model": { "imageSize": 32 } }""", "model", "exactly one")]
    [TestCase("""{ "model": { "imageSize": 0, "unet": {} } }""", "model.imageSize", "0")]
    [TestCase("""{ "model": { "imageChannels": -3, "unet": {} } }""", "model.imageChannels", "-3")]
    public void ImpossibleTopLevelSettingsAreNamed(string json, string field, string value) => ExpectError(json, field, value);

    [TestCase("\"groups\": 0", "model.unet.groups", "0")]
    [TestCase("\"groups\": 12", "model.unet.resolutionChannels[0]", "12 groups")]
    [TestCase("\"resolutionChannels\": []", "model.unet.resolutionChannels", "at least one")]
    [TestCase("\"numResnetsPerResolution\": [2, 2, 2]", "model.unet.numResnetsPerResolution", "[2,2,2]")]
    [TestCase("\"numResnetsPerResolution\": [0]", "model.unet.numResnetsPerResolution", "[0]")]
    [TestCase("\"attentionLevels\": [2]", "model.unet.attentionLevels", "level 2")]
    [TestCase("\"temporalDim\": 100", "model.unet.temporalDim", "100")]
    [TestCase("\"microConditioning\": \"scale\"", "model.unet.microConditioning", "'scale'")]
    [TestCase("\"conditioningFeatureProjDim\": 64", "model.unet.conditioningFeatureProjDim", "64")]
    [TestCase("\"numClasses\": -1", "model.unet.numClasses", "-1")]
    [TestCase("\"resolutionChannels\": [32, 36], \"groups\": 4", "model.unet.resolutionChannels[1]", "36")]
    [TestCase("\"dropout\": 1", "model.unet.dropout", "got 1")]
    [TestCase("\"dropout\": -0.25", "model.unet.dropout", "got -0.25")]
    public void ImpossibleUNetSettingsAreNamed(string fields, string field, string value) => ExpectError(Unet(fields), field, value);

    [Test]
    public void ImageSizeMustSurviveTheDownsamples() => ExpectError(Unet("\"resolutionChannels\": [32, 64, 64]", size: 6), "model.unet.resolutionChannels", "6");

    [TestCase("\"skipMidBlocks\": false", "", "", "model.nested.outer.skipMidBlocks", "false")]
    [TestCase("\"numClasses\": 10", "", "", "model.nested.outer.numClasses", "10")]
    [TestCase("\"conditioningFeatureDim\": 16", "\"conditioningFeatureDim\": 32", "", "model.nested.outer.conditioningFeatureDim", "16")]
    [TestCase("\"resolutionChannels\": [32]", "", "", "model.nested.outer.resolutionChannels", "got 1")]
    [TestCase("\"temporalDim\": 64", "\"numClasses\": 3", "", "model.nested.outer.temporalDim", "64")]
    [TestCase("", "\"dropout\": 1.5", "", "model.nested.innerUnet.dropout", "got 1.5")]
    [TestCase("", "", "\"innerNested\": { \"outer\": {}, \"innerUnet\": {} }", "model.nested", "exactly one")]
    public void ImpossibleNestingSettingsAreNamed(string outer, string inner, string level, string field, string value) =>
        ExpectError(Nested(outer, inner, level), field, value);

    [Test]
    public void NestRatioMustDivideTheImage() => ExpectError(Nested("\"resolutionChannels\": [32, 32, 32]", size: 18), "model.nested.outer", "18");

    [Test]
    public void UnknownFieldsAreRejected()
    {
        var e = Assert.Throws<System.Text.Json.JsonException>(() => ModelConfig.Parse(Unet("\"resolutionChanels\": [32]")))!;
        Assert.That(e.Message, Does.Contain("resolutionChanels"));
    }

    [Test]
    public void LoadNamesTheFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"mdm-bad-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, Unet("\"groups\": 0"));
        try
        {
            var e = Assert.Throws<ArgumentException>(() => ModelConfig.Load(path))!;
            Assert.That(e.Message, Does.Contain(path).And.Contain("model.unet.groups"));
        }
        finally { File.Delete(path); }
        Assert.Throws<FileNotFoundException>(() => ModelConfig.Load(path));
    }

    static void ExpectError(string json, string field, string value)
    {
        var e = Assert.Throws<ArgumentException>(() => ModelConfig.Parse(json), json)!;
        Assert.That(e.Message, Does.Contain(field).And.Contain(value), $"message '{e.Message}' should name {field} and {value}");
    }
}
