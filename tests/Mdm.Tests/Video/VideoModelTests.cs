using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Config;
using Mdm.Model.Nn;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;
using static Mdm.Tests.Model.ModelTestUtil;

namespace Mdm.Tests.Video;

/// <summary>Video models on the CPU backend: temporal resampling, configs, parameter counts, forward/backward.</summary>
public class VideoModelTests
{
    Backend B = null!;
    Random Rng = null!;

    [OneTimeSetUp] public void GetBackend() => B = TestBackends.Get(BackendKind.Cpu);
    [SetUp] public void FreshSeed() => Rng = TestSeed.NewRandom();

    /// <summary>4 frames of 8² over an 8² image model: a temporal level 4 → 2 → 1 with temporal attention.</summary>
    static ModelConfig TinyVideo => new()
    {
        ImageSize = 8,
        Frames = 4,
        Nested = new NestedUNetConfig
        {
            Outer = new UNetConfig
            {
                ResolutionChannels = [8, 8, 8], NumResnetsPerResolution = [1], AttentionLevels = [], NumAttentionLayers = [0],
                NumTemporalAttentionLayers = [1, 1, 0], TemporalPositionalEncoding = true, TemporalMode = true, TemporalDim = 32, Groups = 4, AttentionGroups = 4,
            },
            SkipNormalization = true,
            InnerUnet = new UNetConfig
            {
                ResolutionChannels = [8, 16], NumResnetsPerResolution = [1], AttentionLevels = [1], NumAttentionLayers = [1],
                TemporalDim = 32, NumClasses = 3, Groups = 4, AttentionGroups = 4,
            },
        },
    };

    [TestCase(8, 4, 6, 5)]
    [TestCase(5, 3, 4, 7)]
    [TestCase(2, 1, 3, 3)]
    public void TemporalDownAndUpSamplingChangeOnlyTheFrameCount(int frames, int channels, int h, int w)
    {
        var f = ParameterFactory.On(B);
        var down = new TemporalResample(f, channels, down: true);
        var up = new TemporalResample(f, channels, down: false);
        down.Initialize((ulong)Rng.Next()); up.Initialize((ulong)Rng.Next());
        const int clips = 2;
        var data = TestSeed.Uniform(Rng, (long)clips * frames * channels * h * w);
        using var x = new Variable(B.FromArray(data, clips * frames, channels, h, w));
        try
        {
            using var noGrad = Graph.NoGrad();
            using var g = new Graph();
            var y = down.Forward(x, frames);
            int half = (frames + 1) / 2;
            Assert.That(y.Shape, Is.EqualTo(new[] { clips * half, channels, h, w }));
            Assert.That(down.OutputFrames(frames), Is.EqualTo(half));
            var z = up.Forward(y, half);
            Assert.That(z.Shape, Is.EqualTo(new[] { clips * 2 * half, channels, h, w }));

            // Values: a float64 Conv1d along time at every (clip, pixel), from the [B·F, C, H, W] layout.
            var wd = TestSeed.ToDouble(down.NamedParameters().Single(p => p.Name == "weight").Value.Data.ToArray());
            var bd = TestSeed.ToDouble(down.NamedParameters().Single(p => p.Name == "bias").Value.Data.ToArray());
            var series = Ref.Permute(TestSeed.ToDouble(data), [clips, frames, channels, h * w], [0, 3, 2, 1]);
            var conv = Ref.Conv1d(series, [clips * h * w, channels, frames], wd, [channels, channels, 3], bd, 2, 1, out var ys, out _);
            var expected = Ref.Permute(conv, [clips, h * w, channels, ys[2]], [0, 3, 2, 1]);
            Compare.AssertClose("temporal down-sampling vs float64 Conv1d per pixel", y.Data.ToArray(), expected, new Tolerance(1e-5, 1e-5));
        }
        finally { down.DisposeParameters(); up.DisposeParameters(); }
    }

    [Test]
    public void FrameSubsamplingKeepsEveryRthFrameOfEachClip()
    {
        const int clips = 2, frames = 6, size = 3;
        var data = TestSeed.Uniform(Rng, clips * frames * 2 * size * size);
        using var x = B.FromArray(data, clips * frames, 2, size, size);
        using var low = FrameOps.SubsampleFrames(x, frames, 3);
        Assert.That(low.Shape, Is.EqualTo(new[] { clips * 2, 2, size, size }));
        var got = low.ToArray();
        int fl = 2 * size * size;
        for (int c = 0; c < clips; c++)
            for (int k = 0; k < 2; k++)
                Assert.That(got.AsSpan((c * 2 + k) * fl, fl).ToArray(), Is.EqualTo(data.AsSpan((c * frames + 3 * k) * fl, fl).ToArray()), $"clip {c} kept frame {k}");
        Assert.Throws<ArgumentException>(() => FrameOps.SubsampleFrames(x, frames, 4));
    }

    [Test]
    public void VideoConfigsBuildWithTheirParameterCounts()
    {
        foreach (var name in new[] { "video-paper.json", "video-small.json" })
        {
            var config = LoadConfig(name);
            var count = ModelFactory.CountParameters(config);
            TestContext.Out.WriteLine($"{name}: {count.Total:N0} parameters, streams {string.Join(", ", config.Resolutions.Zip(config.StreamFrames, (r, f) => $"{f}×{r}²"))}");
            TestContext.Out.WriteLine(count.Format());

            // Every temporal attention block has 30·C² + 15·C parameters (convs 2·(9C² + C), LayerNorms 2·2C,
            // qkv 3C² + 3C, proj_out C² + C, MLP 4C² + 4C + 4C² + C).
            var blocks = count.Parameters.Where(p => p.Name.Contains(".t_attn.")).GroupBy(p => p.Name[..(p.Name.IndexOf(".t_attn.") + 10)]).ToList();
            Assert.That(blocks, Is.Not.Empty, $"{name}: no temporal attention blocks");
            foreach (var block in blocks)
            {
                long c = block.Single(p => p.Name.EndsWith("attn.norm.weight")).Shape[0];
                Assert.That(block.Sum(p => p.Numel), Is.EqualTo(30 * c * c + 15 * c), $"{name}: {block.Key}");
            }
        }
        var paper = LoadConfig("video-paper.json");
        Assert.That(paper.Resolutions, Is.EqualTo(new[] { 256, 64, 64 }));
        Assert.That(paper.StreamFrames, Is.EqualTo(new[] { 16, 16, 1 }));
        // The innermost image model is exactly the 64² text-to-image UNet.
        var image = ModelFactory.CountParameters(LoadConfig("t2i-64.json"));
        var innermost = ModelFactory.CountParameters(paper).Parameters.Where(p => p.Name.StartsWith("inner_unet.inner_unet.")).ToList();
        Assert.That(innermost.Select(p => (p.Name["inner_unet.inner_unet.".Length..], p.Numel)), Is.EqualTo(image.Parameters.Select(p => (p.Name, p.Numel))));
        // 15 temporal blocks in the middle level (5 down + 10 up), none elsewhere.
        Assert.That(ModelFactory.CountParameters(paper).Parameters.Count(p => p.Name.EndsWith(".t_attn.0.up_conv.weight")), Is.EqualTo(10));
        Assert.That(ModelFactory.CountParameters(paper).Parameters.Count(p => p.Name.Contains(".t_attn.") && p.Name.EndsWith("up_conv.weight")), Is.EqualTo(15));
    }

    [Test]
    public void ImpossibleVideoConfigsAreRejectedWithTheirPath()
    {
        var e = Assert.Throws<ArgumentException>(() => (TinyVideo with { Frames = 6 }).Validate())!;
        Assert.That(e.Message, Does.Contain("model.nested.outer.temporalMode").And.Contain("6 frames"));
        e = Assert.Throws<ArgumentException>(() => (TinyVideo with { Frames = 0 }).Validate())!;
        Assert.That(e.Message, Does.Contain("model.frames"));
        ModelConfig WithMiddleWidth(int c) => TinyVideo with { Nested = TinyVideo.Nested! with { Outer = TinyVideo.Nested!.Outer with { ResolutionChannels = [8, c, 8] } } };
        Assert.DoesNotThrow(() => WithMiddleWidth(96).Validate(), "96 channels = 3 heads of 32");
        e = Assert.Throws<ArgumentException>(() => WithMiddleWidth(100).Validate())!;     // 3 heads do not divide 100
        Assert.That(e.Message, Does.Contain("model.nested.outer.resolutionChannels[1]").And.Contain("3 heads"));
        e = Assert.Throws<ArgumentException>(() => WithMiddleWidth(132).Validate())!;     // 4 heads of 33: odd for rotary
        Assert.That(e.Message, Does.Contain("model.nested.outer.temporalPositionalEncoding").And.Contain("even head width"));
    }

    [Test]
    public void VideoModelOutputsEveryStreamAndKeepsClipsApart()
    {
        var config = TinyVideo;
        var model = ModelFactory.Create(config, B, seed: (ulong)Rng.Next());
        PerturbZeroInit(model, Rng);
        const int clips = 2;
        Assert.That(model.StreamFrames, Is.EqualTo(new[] { 4, 1 }));
        Assert.That(model.Resolutions, Is.EqualTo(new[] { 8, 8 }));
        var data = model.Resolutions.Zip(model.StreamFrames, (r, f) => TestSeed.Uniform(Rng, (long)clips * f * 3 * r * r)).ToArray();
        var cond = new Conditioning(ClassLabels: [1, Conditioning.NullClass]);
        int[] t = RandomTimesteps(Rng, clips);
        float[][] Forward()
        {
            var streams = data.Select((d, i) => new Variable(B.FromArray(d, clips * model.StreamFrames[i], 3, 8, 8))).ToArray();
            try { return Run(model, streams, t, cond); }
            finally { foreach (var s in streams) s.Dispose(); }
        }
        try
        {
            var outs = Forward();
            Assert.That(outs.Select(o => o.Length), Is.EqualTo(new[] { clips * 4 * 3 * 64, clips * 1 * 3 * 64 }));
            data[0][4 * 3 * 64 + 10] += 1f;                                   // clip 1, frame 0 of the 4-frame stream
            var changed = Forward();
            int clip0 = 4 * 3 * 64;
            Assert.That(Enumerable.Range(0, clip0).Max(i => Math.Abs(outs[0][i] - changed[0][i])), Is.EqualTo(0), "clip 0 must not see clip 1\n" + TestSeed.Describe());
            Assert.That(Enumerable.Range(clip0 + 3 * 3 * 64, 3 * 64).Max(i => Math.Abs(outs[0][i] - changed[0][i])), Is.GreaterThan(0),
                "frame 3 of clip 1 must see its frame 0 (temporal attention / Conv1d)\n" + TestSeed.Describe());

            using var wrong = new Variable(B.FromArray(new float[7 * 3 * 64], 7, 3, 8, 8));
            using var low = new Variable(B.FromArray(new float[2 * 3 * 64], 2, 3, 8, 8));
            var e = Assert.Throws<ArgumentException>(() => Run(model, [wrong, low], t, cond))!;
            Assert.That(e.Message, Does.Contain("noisy input 0").And.Contain("[B·4, 3, 8, 8]"));
        }
        finally { model.DisposeParameters(); }
    }

    [Test]
    public void TinyVideoModelTrainsWithFallingLoss()
    {
        var model = ModelFactory.Create(TinyVideo, B, seed: (ulong)Rng.Next());
        const int clips = 2;
        Variable[] Streams() => model.Resolutions.Zip(model.StreamFrames, (r, f) =>
            new Variable(B.FromArray(TestSeed.Uniform(Rng, (long)clips * f * 3 * r * r), clips * f, 3, r, r))).ToArray();
        var streams = Streams();
        var targets = Streams();
        var cond = new Conditioning(ClassLabels: [0, 2]);
        int[] t = RandomTimesteps(Rng, clips);
        var parameters = model.Parameters().ToList();
        var m = parameters.Select(p => B.Zeros(p.Shape)).ToList();
        var v = parameters.Select(p => B.Zeros(p.Shape)).ToList();
        var losses = new List<float>();
        try
        {
            for (int step = 1; step <= 10; step++)
            {
                using (new Graph())
                {
                    var outs = model.Forward(streams, t, cond);
                    var loss = F.Add(F.MseLoss(outs[0], targets[0]), F.MseLoss(outs[1], targets[1]));
                    loss.Backward();
                    losses.Add(loss.Item());
                }
                Assert.That(model.NamedParameters().Where(p => p.Name.Contains("t_attn.0.up_conv.weight")).All(p => p.Value.Grad is not null),
                    "temporal blocks receive gradients");
                var grads = parameters.Select(p => p.Grad ?? B.Zeros(p.Shape)).ToList();
                Ops.AdamStep(parameters.Select(p => p.Data).ToList(), grads, m, v, AdamOptions.Adam(3e-3), step);
                model.ZeroGrad();
            }
            string text = string.Join(", ", losses.Select(l => l.ToString("F4")));
            TestContext.Out.WriteLine($"losses: {text}");
            Assert.That(losses[^1], Is.LessThan(0.9f * losses[0]), $"losses: {text}\n{TestSeed.Describe()}");
        }
        finally
        {
            model.DisposeParameters();
            foreach (var s in streams.Concat(targets)) s.Dispose();
            foreach (var tt in m.Concat(v)) tt.Dispose();
        }
    }
}
