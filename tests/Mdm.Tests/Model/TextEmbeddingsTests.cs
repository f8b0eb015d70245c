using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Checkpoints;
using Mdm.Model.Config;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Model;

/// <summary>Precomputed text conditioning (tokens + mask) read from safetensors, with its validation.</summary>
public class TextEmbeddingsTests
{
    [Test]
    public void LoadsRowsAndRejectsMismatches()
    {
        var backend = TestBackends.Get(BackendKind.Cpu);
        var rng = TestSeed.NewRandom();
        var config = ModelConfig.Load(Path.Combine(TestContext.CurrentContext.TestDirectory, "..", "..", "..", "..", "..", "configs", "tiny-test.json"));
        int d = config.TextFeatureDim, s = 5, b = 3;
        var tokens = TestSeed.Uniform(rng, b * s * d);
        var mask = new float[] { 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0 };
        var path = Path.Combine(Path.GetTempPath(), $"mdm-text-{Guid.NewGuid():N}.safetensors");
        try
        {
            TextEmbeddings.Save(path, tokens, mask, b, s, d);
            var cond = TextEmbeddings.Load(path, backend, start: 1, count: 2, expectedWidth: d);
            Assert.That(cond.Tokens!.Shape, Is.EqualTo(new[] { 2, s, d }));
            Assert.That(cond.TokenMask!.ToArray(), Is.EqualTo(mask[5..15]));
            Assert.That(cond.Tokens.ToArray(), Is.EqualTo(tokens[(s * d)..(3 * s * d)]));
            Assert.Throws<CheckpointFormatException>(() => TextEmbeddings.Load(path, backend, expectedWidth: d + 1));
            Assert.Throws<ArgumentException>(() => TextEmbeddings.Load(path, backend, start: 2, count: 2));
            cond.Tokens.Dispose(); cond.TokenMask.Dispose();
        }
        finally { File.Delete(path); }
    }
}
