using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Config;
using Mdm.Model.Nn;
using Mdm.Tests.Harness;
using static Mdm.Tests.Model.ModelTestUtil;

namespace Mdm.Tests.Model;

/// <summary>Behaviour of the network on the CPU backend: zero-init, nesting invariance, conditioning paths, training.</summary>
public class ModelForwardTests
{
    Backend B = null!;
    Random Rng = null!;

    [OneTimeSetUp] public void GetBackend() => B = TestBackends.Get(BackendKind.Cpu);
    [SetUp] public void FreshSeed() => Rng = TestSeed.NewRandom();

    static ModelConfig Tiny => LoadConfig("tiny-test.json");

    /// <summary>The tiny model's innermost UNet as a class-conditional stand-alone model (no text).</summary>
    static ModelConfig TinyClassConditional(int classes) => new()
    {
        ImageSize = 8,
        Unet = Tiny.Innermost with { ConditioningFeatureDim = -1, ConditioningFeatureProjDim = -1, NumClasses = classes },
    };

    [Test]
    public void FreshModelOutputsExactlyZeroAtEveryResolution()
    {
        var model = ModelFactory.Create(Tiny, B, seed: (ulong)Rng.Next());
        var streams = RandomStreams(model, Rng, 3);
        var text = RandomText(B, Rng, [4, 1, 3], 5, 6);
        try
        {
            var outs = Run(model, streams, RandomTimesteps(Rng, 3), text);
            Assert.That(outs, Has.Length.EqualTo(2));
            for (int r = 0; r < outs.Length; r++)
                Assert.That(outs[r].Max(Math.Abs), Is.EqualTo(0f), $"resolution {model.Resolutions[r]} output of a fresh model\n{TestSeed.Describe()}");
        }
        finally { model.DisposeParameters(); foreach (var s in streams) s.Dispose(); Dispose(text); }
    }

    [Test]
    public void AddingAnOuterLevelLeavesTheInnerOutputUnchanged()
    {
        var nestedConfig = Tiny;
        var alone = ModelFactory.Create(new ModelConfig { ImageSize = 8, Unet = nestedConfig.Innermost }, B, seed: (ulong)Rng.Next());
        var nested = ModelFactory.Create(nestedConfig, B, seed: (ulong)Rng.Next());
        var streams = RandomStreams(nested, Rng, 2);
        var text = RandomText(B, Rng, [2, 5], 5, 6);
        try
        {
            PerturbZeroInit(alone, Rng);
            CopyParameters(alone, nested, "inner_unet.");
            // The outer level's own residual branches may be anything; only its adapters start at zero.
            PerturbZeroInit(nested, Rng, prefix: "down_blocks");
            int[] t = RandomTimesteps(Rng, 2);
            var expected = Run(alone, [streams[1]], t, text)[0];
            var outs = Run(nested, streams, t, text);
            Assert.That(expected.Max(Math.Abs), Is.GreaterThan(1e-3f), "the perturbed inner model must produce a non-zero output");
            Assert.That(outs[1], Is.EqualTo(expected), $"the 8² output of the nested model differs from the stand-alone UNet's\n{TestSeed.Describe()}");
        }
        finally { alone.DisposeParameters(); nested.DisposeParameters(); foreach (var s in streams) s.Dispose(); Dispose(text); }
    }

    [Test]
    public void SkipInnerUnetInputDropsTheInAdapterAndStillRuns()
    {
        var config = Tiny with { Nested = Tiny.Nested! with { SkipInnerUnetInput = true } };
        var model = ModelFactory.Create(config, B, seed: (ulong)Rng.Next());
        var streams = RandomStreams(model, Rng, 2);
        var text = RandomText(B, Rng, [3, 5], 5, 6);
        try
        {
            Assert.That(model.NamedParameters().Select(p => p.Name), Has.None.StartWith("in_adapter"));
            Assert.That(ModelFactory.CountParameters(config).Total, Is.EqualTo(model.ParameterCount));
            PerturbZeroInit(model, Rng);
            int[] t = RandomTimesteps(Rng, 2);
            var a = Run(model, streams, t, text);
            // Without the in_adapter the outer image cannot reach the inner output: change it, the 8² output stays.
            using var other = RandomImage(B, Rng, 2, 3, 16);
            var b = Run(model, [other, streams[1]], t, text);
            Assert.That(b[1], Is.EqualTo(a[1]), "the inner output depends on the outer image despite skipInnerUnetInput");
            Assert.That(b[0], Is.Not.EqualTo(a[0]), "the outer output ignores its own image");
            Assert.That(a.All(o => o.All(float.IsFinite)), Is.True);
        }
        finally { model.DisposeParameters(); foreach (var s in streams) s.Dispose(); Dispose(text); }
    }

    [Test]
    public void OuterImageReachesTheInnerOutputThroughTheInAdapter()
    {
        var model = ModelFactory.Create(Tiny, B, seed: (ulong)Rng.Next());
        var streams = RandomStreams(model, Rng, 2);
        var text = RandomText(B, Rng, [3, 5], 5, 6);
        try
        {
            PerturbZeroInit(model, Rng);
            int[] t = RandomTimesteps(Rng, 2);
            var a = Run(model, streams, t, text);
            using var other = RandomImage(B, Rng, 2, 3, 16);
            var b = Run(model, [other, streams[1]], t, text);
            Assert.That(b[1], Is.Not.EqualTo(a[1]), "with the in_adapter the outer image must influence the inner output");
        }
        finally { model.DisposeParameters(); foreach (var s in streams) s.Dispose(); Dispose(text); }
    }

    [Test]
    public void ClassConditionalForwardIncludingNullClass()
    {
        var model = ModelFactory.Create(TinyClassConditional(7), B, seed: (ulong)Rng.Next());
        using var x = RandomImage(B, Rng, 1, 3, 8);
        try
        {
            PerturbZeroInit(model, Rng);
            int t = Rng.Next(1000);
            float[] Out(int label) => Run(model, [x], [t], new Conditioning(ClassLabels: [label]))[0];
            var a = Out(2);
            var b = Out(5);
            var none = Out(Conditioning.NullClass);
            Assert.That(a, Is.Not.EqualTo(b), "two classes give the same prediction");
            Assert.That(none, Is.Not.EqualTo(a), "the null class gives a class's prediction");
            Assert.That(none.All(float.IsFinite), Is.True);
            Assert.That(Out(2), Is.EqualTo(a), "the same label must give the same prediction");
            // The null row is the last row of class_emb and learns like the others.
            var w = model.NamedParameters().Single(p => p.Name == "class_emb.weight").Value;
            Assert.That(w.Shape, Is.EqualTo(new[] { 32, 8 }));
            Assert.Throws<ArgumentException>(() => Run(model, [x], [t], new Conditioning(ClassLabels: [7])));
            Assert.Throws<ArgumentException>(() => Run(model, [x], [t], Conditioning.None));
        }
        finally { model.DisposeParameters(); }
    }

    [Test]
    public void NullClassEmbeddingReceivesGradient()
    {
        var model = ModelFactory.Create(TinyClassConditional(3), B, seed: (ulong)Rng.Next());
        using var x = RandomImage(B, Rng, 2, 3, 8);
        try
        {
            PerturbZeroInit(model, Rng);
            using (var g = new Graph())
            {
                var y = model.Forward([x], [10, 500], new Conditioning(ClassLabels: [Conditioning.NullClass, 1]))[0];
                F.Mean(F.Mul(y, y)).Backward();
            }
            var grad = model.NamedParameters().Single(p => p.Name == "class_emb.weight").Value.Grad!.ToArray();
            // weight [T, classes + 1]: column 3 is the null class, column 1 the label used, columns 0 and 2 unused.
            float Col(int c) => Enumerable.Range(0, 32).Sum(r => Math.Abs(grad[r * 4 + c]));
            Assert.That(Col(3), Is.GreaterThan(0f), "null-class column has no gradient");
            Assert.That(Col(1), Is.GreaterThan(0f), "label column has no gradient");
            Assert.That(Col(0) + Col(2), Is.EqualTo(0f), "unused labels received gradient");
        }
        finally { model.DisposeParameters(); }
    }

    [Test]
    public void MaskedPaddingTokensDoNotChangeTheOutput()
    {
        var model = ModelFactory.Create(Tiny, B, seed: (ulong)Rng.Next());
        var streams = RandomStreams(model, Rng, 2);
        var text = RandomText(B, Rng, [2, 4], 6, 6);
        try
        {
            PerturbZeroInit(model, Rng);
            int[] t = RandomTimesteps(Rng, 2);
            var a = Run(model, streams, t, text);
            // Garbage in the padded positions (mask 0) must be invisible to pooling and cross-attention.
            var tok = text.Tokens!.ToArray();
            var mask = text.TokenMask!.ToArray();
            for (int i = 0; i < mask.Length; i++)
                if (mask[i] == 0) for (int d = 0; d < 6; d++) tok[i * 6 + d] = (float)(Rng.NextDouble() * 20 - 10);
            using var garbage = B.FromArray(tok, 2, 6, 6);
            var b = Run(model, streams, t, text with { Tokens = garbage });
            for (int r = 0; r < 2; r++)
                Compare.AssertClose($"resolution {model.Resolutions[r]} with garbage in masked tokens", b[r], TestSeed.ToDouble(a[r]), new Tolerance(1e-5, 1e-5));
            // Unmasked cross-attention does see them.
            var unmasked = Tiny with { Nested = Tiny.Nested! with { InnerUnet = Tiny.Innermost with { MaskedCrossAttention = false } } };
            var model2 = ModelFactory.Create(unmasked, B, seed: 1);
            try
            {
                CopyParameters(model, model2, "");
                var c = Run(model2, streams, t, text);
                var d = Run(model2, streams, t, text with { Tokens = garbage });
                Assert.That(d[1], Is.Not.EqualTo(c[1]), "without masking the padded tokens must matter");
            }
            finally { model2.DisposeParameters(); }
        }
        finally { model.DisposeParameters(); foreach (var s in streams) s.Dispose(); Dispose(text); }
    }

    [Test]
    public void MixedRatioBatchMatchesTheFullBatchOnTheSharedSamples()
    {
        var model = ModelFactory.Create(Tiny, B, seed: (ulong)Rng.Next());
        var full = RandomStreams(model, Rng, 3);
        var text = RandomText(B, Rng, [3, 5, 1], 5, 6);
        try
        {
            PerturbZeroInit(model, Rng);
            int[] t = RandomTimesteps(Rng, 3);
            var a = Run(model, full, t, text);
            using var hiTwo = new Variable(B.FromArray(full[0].Data.ToArray().AsSpan(0, 2 * 3 * 16 * 16), 2, 3, 16, 16));
            var b = Run(model, [hiTwo, full[1]], t, text);
            Assert.That(b[0].Length, Is.EqualTo(2 * 3 * 16 * 16));
            Compare.AssertClose("16² output of the first 2 samples", b[0], TestSeed.ToDouble(a[0].AsSpan(0, b[0].Length).ToArray()), new Tolerance(1e-5, 1e-5));
            // The third sample's 8² stream had no outer features in the mixed batch, so only samples 0 and 1 match.
            int per = 3 * 8 * 8;
            Compare.AssertClose("8² output of the first 2 samples", b[1].AsSpan(0, 2 * per), TestSeed.ToDouble(a[1].AsSpan(0, 2 * per).ToArray()), new Tolerance(1e-5, 1e-5));
        }
        finally { model.DisposeParameters(); foreach (var s in full) s.Dispose(); Dispose(text); }
    }

    [Test]
    public void BadInputsAreRejectedWithClearMessages()
    {
        var model = ModelFactory.Create(Tiny, B, seed: 3);
        var streams = RandomStreams(model, Rng, 2);
        var text = RandomText(B, Rng, [3, 5], 5, 6);
        try
        {
            var e = Assert.Throws<ArgumentException>(() => Run(model, [streams[0]], [1, 2], text))!;
            Assert.That(e.Message, Does.Contain("expected 2 noisy inputs"));
            e = Assert.Throws<ArgumentException>(() => Run(model, [streams[1], streams[0]], [1, 2], text))!;
            Assert.That(e.Message, Does.Contain("noisy input 0"));
            e = Assert.Throws<ArgumentException>(() => Run(model, streams, [1], text))!;
            Assert.That(e.Message, Does.Contain("1 timesteps for a batch of 2"));
            e = Assert.Throws<ArgumentException>(() => Run(model, streams, [1, 2], Conditioning.None))!;
            Assert.That(e.Message, Does.Contain("no tokens"));
            using var otherTokens = new Variable(Ops.Copy(text.Tokens!), requiresGrad: true);
            e = Assert.Throws<ArgumentException>(() => Run(model, streams, [1, 2], text with { TokenInput = otherTokens }))!;
            Assert.That(e.Message, Does.Contain("TokenInput does not hold its Tokens"));
        }
        finally { model.DisposeParameters(); foreach (var s in streams) s.Dispose(); Dispose(text); }
    }

    [Test]
    public void TinyNestedUNetTrainsWithFallingLoss()
    {
        var model = ModelFactory.Create(Tiny, B, seed: (ulong)Rng.Next());
        var streams = RandomStreams(model, Rng, 4);
        var targets = RandomStreams(model, Rng, 4);
        var text = RandomText(B, Rng, [5, 2, 3, 4], 5, 6);
        int[] t = RandomTimesteps(Rng, 4);
        var parameters = model.Parameters().ToList();
        var m = parameters.Select(p => B.Zeros(p.Shape)).ToList();
        var v = parameters.Select(p => B.Zeros(p.Shape)).ToList();
        var losses = new List<float>();
        try
        {
            for (int step = 1; step <= 12; step++)
            {
                using (var g = new Graph())
                {
                    var outs = model.Forward(streams, t, text);
                    var loss = F.Add(F.MseLoss(outs[0], targets[0]), F.MseLoss(outs[1], targets[1]));
                    loss.Backward();
                    losses.Add(loss.Item());
                }
                var grads = parameters.Select(p => p.Grad ?? B.Zeros(p.Shape)).ToList();
                Ops.AdamStep(parameters.Select(p => p.Data).ToList(), grads, m, v, AdamOptions.Adam(3e-3), step);
                model.ZeroGrad();
            }
            TestContext.Out.WriteLine($"losses: {string.Join(", ", losses.Select(l => l.ToString("F4")))}");
            Assert.That(losses[^1], Is.LessThan(0.9f * losses[0]), $"losses: {string.Join(", ", losses.Select(l => l.ToString("F4")))}\n{TestSeed.Describe()}");
        }
        finally
        {
            model.DisposeParameters();
            foreach (var s in streams.Concat(targets)) s.Dispose();
            foreach (var tt in m.Concat(v)) tt.Dispose();
            Dispose(text);
        }
    }

    [Test]
    public void StdNormalizePassesTheFloat64Gradcheck()
    {
        var result = StdNormalize.Op.Gradcheck(B, seed: (ulong)Rng.Next());
        Assert.That(result.Passed, result + "\n" + TestSeed.Describe());
    }
}
