using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Config;
using Mdm.Model.Diffusion;
using Mdm.Tests.Harness;
using Mdm.Train.Training;

namespace Mdm.Tests.Distributed;

/// <summary>Data-parallel draws: a global batch of B on one process and its two halves on two processes draw the same
/// timesteps, noise, ResNet dropout masks, label dropout and mixed-ratio masks, sample for sample; so the halves'
/// mean loss and gradients are the whole batch's (up to f32 summation order).</summary>
public class GlobalBatchDrawTests
{
    static Backend Cpu => TestBackends.Get(BackendKind.Cpu);

    // A NestedUNet 8 → 4 with ResNet dropout at both levels.
    static ModelConfig Nested() => ModelConfig.Parse("""
        { "imageSize": 8, "imageChannels": 3, "nested": {
            "outer": { "resolutionChannels": [8, 8], "numResnetsPerResolution": [1], "attentionLevels": [], "numAttentionLayers": [0],
                       "temporalDim": 16, "groups": 4, "attentionGroups": 4, "dropout": 0.3 },
            "skipNormalization": true,
            "innerUnet": { "resolutionChannels": [8, 8], "numResnetsPerResolution": [1], "attentionLevels": [], "numAttentionLayers": [0],
                           "temporalDim": 16, "numClasses": 3, "groups": 4, "attentionGroups": 4, "dropout": 0.3 } } }
        """);

    [Test]
    public void TimestepsOfTheHalvesAreTheWholeBatchs()
    {
        var rng = TestSeed.NewRandom();
        ulong seed = (ulong)rng.NextInt64(), step = (ulong)rng.Next(1000);
        int batch = 2 * (1 + rng.Next(9));
        var whole = DiffusionRandom.Timesteps(batch, 1000, seed, step);
        var halves = DiffusionRandom.Timesteps(batch / 2, 1000, seed, step).Concat(DiffusionRandom.Timesteps(batch / 2, 1000, seed, step, firstSample: batch / 2));
        Assert.That(halves, Is.EqualTo(whole), TestSeed.Describe());
    }

    [Test]
    public void LabelDropoutOfTheHalvesIsTheWholeBatchs()
    {
        var rng = TestSeed.NewRandom();
        ulong seed = (ulong)rng.NextInt64();
        long step = rng.Next(1, 1000);
        var whole = LabelDropout.Dropped(seed, 10, step, micro: 1, dropout: 0.4);
        var halves = LabelDropout.Dropped(seed, 5, step, 1, 0.4).Concat(LabelDropout.Dropped(seed, 5, step, 1, 0.4, firstSample: 5));
        Assert.That(halves, Is.EqualTo(whole), TestSeed.Describe());
        Assert.That(whole, Does.Contain(true).And.Contain(false), $"a 0.4 dropout of 10 samples should drop some and keep some{TestSeed.Describe()}");
    }

    [Test]
    public void ASliceStartingInsideAPhiloxBlockIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => new BatchSlice(1, 2).FirstValue(3, "the noise of resolution 1"));
        Assert.That(e!.Message, Does.StartWith("data-parallel: the noise of resolution 1 holds 3 values per sample"));
        Assert.That(new BatchSlice(3, 4).FirstValue(12, "x"), Is.EqualTo(36));
    }

    /// <summary>With a mixed ratio a resolution trains on the global batch's leading samples only, which the halves hold
    /// unevenly.</summary>
    [TestCase(false)]
    [TestCase(true)]
    public void TwoHalvesGiveTheWholeBatchsLossAndGradients(bool mixedRatio)
    {
        var rng = TestSeed.NewRandom();
        const int batch = 8, half = batch / 2;
        var model = ModelFactory.Create(Nested(), Cpu, (ulong)rng.Next());
        try
        {
            // Random weights everywhere: zero-initialised output convolutions would hide the dropout masks.
            ulong weightSeed = (ulong)rng.NextInt64();
            foreach (var (p, i) in model.Parameters().Select((p, i) => (p, i))) Ops.RandomUniform(p.Data, weightSeed, (ulong)i, -0.4f, 0.4f);
            var loss = new DiffusionLoss(model, new DiffusionConfig { MixedRatio = mixedRatio ? [1, 2] : null });
            var images = TestSeed.Uniform(rng, batch * 3 * 8 * 8);
            int[] labels = [.. Enumerable.Range(0, batch).Select(i => i % 3)];
            ulong seed = (ulong)rng.NextInt64(), step = (ulong)rng.Next(100);

            var (wholeLoss, wholeSample, wholeGrads) = Run(model, loss, images, labels, seed, step, 0, batch, batch);
            var (firstLoss, firstSample, firstGrads) = Run(model, loss, images, labels, seed, step, 0, half, batch);
            var (secondLoss, secondSample, secondGrads) = Run(model, loss, images, labels, seed, step, half, half, batch);

            Assert.That((firstLoss + secondLoss) / 2, Is.EqualTo(wholeLoss).Within(1e-5 * (1 + Math.Abs(wholeLoss))), TestSeed.Describe());
            for (int r = 0; r < wholeSample.Length; r++)
            {
                var joined = firstSample[r].Concat(secondSample[r]).ToArray();
                for (int i = 0; i < batch; i++)
                    Assert.That(joined[i], Is.EqualTo(wholeSample[r][i]).Within(1e-5 * (1 + Math.Abs(wholeSample[r][i]))),
                        $"resolution {r}, sample {i}: the halves drew other timesteps, noise or masks{TestSeed.Describe()}");
            }
            for (int p = 0; p < wholeGrads.Length; p++)
                for (int j = 0; j < wholeGrads[p].Length; j++)
                {
                    double mean = (firstGrads[p][j] + secondGrads[p][j]) / 2.0, want = wholeGrads[p][j];
                    if (!(Math.Abs(mean - want) <= 1e-4 * (1 + Math.Abs(want))))
                        Assert.Fail($"parameter {p} element {j}: mean of the halves' gradients {mean:G7}, whole batch {want:G7}{TestSeed.Describe()}");
                }
        }
        finally { model.DisposeParameters(); }
    }

    static (double Loss, float[][] PerSample, float[][] Grads) Run(Mdm.Model.Nn.UNet model, DiffusionLoss loss, float[] images, int[] labels,
        ulong seed, ulong step, int first, int count, int globalBatch)
    {
        int sample = 3 * 8 * 8;
        using var x = Cpu.FromArray(images.AsSpan(first * sample, count * sample).ToArray(), count, 3, 8, 8);
        var cond = new Conditioning(ClassLabels: labels[first..(first + count)]);
        var parameters = model.Parameters().ToList();
        foreach (var p in parameters) p.ZeroGrad();
        using var graph = new Graph();
        using var r = loss.Compute(x, cond, seed, step, new BatchSlice(first, globalBatch));
        r.Loss.Backward();
        var grads = parameters.Select(p => p.Grad?.ToArray() ?? new float[p.Data.Numel]).ToArray();
        foreach (var p in parameters) p.ZeroGrad();
        return (r.Loss.Item(), [.. r.PerSampleLosses.Select(t => t.ToArray())], grads);
    }
}
