using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Config;
using Mdm.Model.Diffusion;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Video;

/// <summary>The diffusion loss and sampler on a video model: per-clip timesteps, frame rows, subsampled inner stream.</summary>
public class VideoDiffusionTests
{
    static ModelConfig SmallVideo() =>
        ModelConfig.Load(Path.Combine(TestContext.CurrentContext.TestDirectory, "..", "..", "..", "..", "..", "configs", "video-small.json"));

    [Test]
    public void LossTrainsAndSamplerReturnsClips()
    {
        var b = TestBackends.Get(BackendKind.Cpu);
        var rng = TestSeed.NewRandom();
        var config = SmallVideo();
        var model = ModelFactory.Create(config, b, (ulong)rng.Next());
        try
        {
            int clips = 2, f = config.Frames, size = config.ImageSize;
            Assert.That(model.StreamFrames, Is.EqualTo(new[] { f, 1 }), "video-small: 8 frames over a 1-frame image stream");
            using var video = b.FromArray(TestSeed.Uniform(rng, clips * f * 3 * size * size), clips * f, 3, size, size);
            var loss = new DiffusionLoss(model, new DiffusionConfig());
            var labels = new Conditioning(ClassLabels: [1, 4]);
            using (new Graph())
            {
                using var r = loss.Compute(video, labels, seed: 3, step: 0);
                Assert.That(r.Timesteps, Has.Count.EqualTo(clips), "one timestep per clip");
                Assert.That(r.PerSampleLosses[0].Shape, Is.EqualTo(new[] { clips * f }), "frame rows at the video stream");
                Assert.That(r.PerSampleLosses[1].Shape, Is.EqualTo(new[] { clips }), "one subsampled frame per clip inside");
                Assert.That(float.IsFinite(r.Loss.Item()));
                r.Loss.Backward();
            }
            Assert.That(model.Parameters().Any(p => p.Grad is not null));
            model.ZeroGrad();

            var sampler = new Sampler(model, new DiffusionConfig());
            var outs = sampler.Sample(clips, labels, new SamplerConfig { NumSteps = 3, DdimEta = 0, GuidanceScale = 2 }, seed: 5);
            try
            {
                Assert.That(outs[0].Shape, Is.EqualTo(new[] { clips * f, 3, size, size }));
                Assert.That(outs[1].Shape, Is.EqualTo(new[] { clips, 3, size, size }));
                Assert.That(outs[0].ToArray(), Has.All.InRange(-1f, 1f));
            }
            finally { foreach (var t in outs) t.Dispose(); }
        }
        finally { model.DisposeParameters(); }
    }
}
