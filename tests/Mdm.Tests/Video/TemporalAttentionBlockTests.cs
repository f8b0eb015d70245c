using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model.Nn;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Video;

/// <summary>The temporal attention block (§6.3) on clip batches [B·F, C, H, W]: shapes, zero-init, float64 reference.</summary>
[BackendFixtures(BackendKind.Cpu, BackendKind.Cuda)]
public class TemporalAttentionBlockTests(BackendKind kind) : KernelFixture(kind)
{
    TemporalAttentionBlock NewBlock(int channels, bool rotary)
    {
        var block = new TemporalAttentionBlock(ParameterFactory.On(B), channels, rotary);
        block.Initialize((ulong)Rng.Next());
        return block;
    }

    Variable RandomClips(int n, int c, int h, int w, bool grad = false) =>
        new(B.FromArray(TestSeed.Uniform(Rng, (long)n * c * h * w), n, c, h, w), requiresGrad: grad);

    /// <summary>Random values for the zero-initialised proj_out and MLP output, so both branches contribute.</summary>
    void Perturb(TemporalAttentionBlock block)
    {
        var named = block.NamedParameters().ToDictionary(p => p.Name, p => p.Value);
        foreach (var s in block.ParameterSpecs().Where(s => s.Init == ParameterInit.Zeros))
            named[s.Name].Data.CopyFrom(TestSeed.Uniform(Rng, s.Numel, -0.5f, 0.5f));
    }

    float[] Run(TemporalAttentionBlock block, Variable x, int frames)
    {
        using var _ = Graph.NoGrad();
        using var g = new Graph();
        return block.Forward(x, frames).Data.ToArray();
    }

    [TestCase(2, 5, 16, 9, 9, false)]
    [TestCase(1, 3, 64, 4, 7, true)]
    [TestCase(3, 1, 8, 1, 1, true)]
    public void OutputHasTheInputShapeForOddSizes(int clips, int frames, int channels, int h, int w, bool rotary)
    {
        var block = NewBlock(channels, rotary);
        using var x = RandomClips(clips * frames, channels, h, w);
        try
        {
            using var _ = Graph.NoGrad();
            using var g = new Graph();
            var y = block.Forward(x, frames);
            Assert.That(y.Shape, Is.EqualTo(new[] { clips * frames, channels, h, w }), TestSeed.Describe());
            Assert.That(y.Data.ToArray().All(float.IsFinite), "non-finite output\n" + TestSeed.Describe());
        }
        finally { block.DisposeParameters(); }
    }

    [Test]
    public void AttentionAndMlpBranchesAddExactlyZeroAtInitialisation()
    {
        // The reference implies: proj_out and the MLP's last Linear are zero-init, up_conv is not. So a fresh block is
        // exactly x + up_conv(up2x(down_conv(x))) (the rearrangements are exact permutations), and not the identity.
        const int frames = 5, channels = 16;
        var block = NewBlock(channels, rotary: true);
        using var x = RandomClips(2 * frames, channels, 9, 9);
        try
        {
            var y = Run(block, x, frames);
            var named = block.NamedParameters().ToDictionary(p => p.Name, p => p.Value);
            float[] expected;
            using (Graph.NoGrad())
            using (new Graph())
            {
                var h = F.Conv2d(x, named["down_conv.weight"], named["down_conv.bias"], 2, 1);
                var up = F.Narrow(F.Narrow(F.UpsampleNearest2x(h), 2, 0, 9), 3, 0, 9);
                expected = F.Add(x, F.Conv2d(up, named["up_conv.weight"], named["up_conv.bias"], 1, 1)).Data.ToArray();
            }
            Assert.That(y, Is.EqualTo(expected), "fresh block ≠ x + up_conv(up(down_conv(x))) bit for bit\n" + TestSeed.Describe());
            var input = x.Data.ToArray();
            Assert.That(y.Zip(input).Max(p => Math.Abs(p.First - p.Second)), Is.GreaterThan(1e-3f), "the up-conv path is not zero-init, so the block is not the identity");

            Perturb(block);
            var perturbed = Run(block, x, frames);
            Assert.That(perturbed.Zip(expected).Max(p => Math.Abs(p.First - p.Second)), Is.GreaterThan(1e-3f),
                "with proj_out and the MLP output non-zero the branches must contribute\n" + TestSeed.Describe());
        }
        finally { block.DisposeParameters(); }
    }

    [Test]
    public void AttentionMixesFramesOfAClipButNeverAcrossClips()
    {
        const int frames = 4, channels = 8;
        var block = NewBlock(channels, rotary: true);
        Perturb(block);
        var data = TestSeed.Uniform(Rng, 2L * frames * channels * 6 * 6);
        try
        {
            using var x = new Variable(B.FromArray(data, 2 * frames, channels, 6, 6));
            var y = Run(block, x, frames);
            int frameLength = channels * 36;
            data[3 * frameLength + 5] += 1f;                                  // clip 0, frame 3
            using var x2 = new Variable(B.FromArray(data, 2 * frames, channels, 6, 6));
            var y2 = Run(block, x2, frames);
            double Diff(int frame) => Enumerable.Range(frame * frameLength, frameLength).Max(i => Math.Abs(y[i] - y2[i]));
            Assert.That(Diff(0), Is.GreaterThan(1e-5), "frame 0 of the clip must see frame 3 through temporal attention\n" + TestSeed.Describe());
            for (int f = frames; f < 2 * frames; f++)
                Assert.That(Diff(f), Is.EqualTo(0), $"frame {f} belongs to the other clip and must not change\n{TestSeed.Describe()}");
        }
        finally { block.DisposeParameters(); }
    }

    [TestCase(false)]
    [TestCase(true)]
    public void ForwardMatchesTheFloat64Reference(bool rotary)
    {
        const int frames = 3, channels = 64, h = 5, w = 4;                    // 2 heads of 32
        var block = NewBlock(channels, rotary);
        Perturb(block);
        using var x = RandomClips(2 * frames, channels, h, w);
        try
        {
            var y = Run(block, x, frames);
            var named = block.NamedParameters().ToDictionary(p => p.Name, p => TestSeed.ToDouble(p.Value.Data.ToArray()));
            var expected = TemporalBlockReference.Forward(TestSeed.ToDouble(x.Data.ToArray()), 2 * frames, channels, h, w, frames,
                TemporalAttentionBlock.HeadsFor(channels), rotary, n => named[n]);
            Compare.AssertClose($"temporal block (rotary {rotary}) vs float64", y, expected, new Tolerance(1e-4, 1e-4));
        }
        finally { block.DisposeParameters(); }
    }

    [Test]
    public void GradientsPassTheFloat64Gradcheck()
    {
        const int frames = 3, channels = 4, h = 3, w = 3;                     // 1 head of 4, rotary on, odd spatial size
        var block = NewBlock(channels, rotary: true);
        Perturb(block);
        var named = block.NamedParameters().ToDictionary(p => p.Name, p => p.Value);
        string[] checkedParameters = ["down_conv.weight", "attn.qkv.weight", "attn.proj_out.weight", "mlp.main.1.weight", "up_conv.bias"];
        using var x = RandomClips(frames, channels, h, w, grad: true);
        var inputs = new[] { x }.Concat(checkedParameters.Select(n => named[n])).ToArray();
        var weights = named.ToDictionary(p => p.Key, p => TestSeed.ToDouble(p.Value.Data.ToArray()));
        try
        {
            var result = Mdm.Autograd.Gradcheck.CheckAgainstReference(
                v => block.Forward(v[0], frames),
                xs => TemporalBlockReference.Forward(xs[0], frames, channels, h, w, frames, 1, true,
                    n => Array.IndexOf(checkedParameters, n) is int i and >= 0 ? xs[1 + i] : weights[n]),
                inputs,
                new GradcheckOptions { Eps = 1e-6, Atol = 1e-4, Rtol = 2e-3, RandomDirections = 4, Seed = (ulong)Rng.Next() });
            TestContext.Out.WriteLine(result);
            Assert.That(result.Passed, $"{result}\n{TestSeed.Describe()}");
        }
        finally { block.DisposeParameters(); }
    }

    [Test]
    public void RejectsABatchThatIsNotWholeClips()
    {
        var block = NewBlock(8, rotary: false);
        using var x = RandomClips(7, 8, 4, 4);
        try
        {
            var e = Assert.Throws<ArgumentException>(() => Run(block, x, 3))!;
            Assert.That(e.Message, Does.Contain("7 frames").And.Contain("3-frame clips"));
            using var wrong = RandomClips(3, 6, 4, 4);
            e = Assert.Throws<ArgumentException>(() => Run(block, wrong, 3))!;
            Assert.That(e.Message, Does.Contain("expected [B·F, 8, H, W]"));
        }
        finally { block.DisposeParameters(); }
    }
}
