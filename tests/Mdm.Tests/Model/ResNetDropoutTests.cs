using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Config;
using Mdm.Model.Diffusion;
using Mdm.Model.Nn;
using Mdm.Model.Training;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Model;

/// <summary>ResNet dropout (ml-mdm's resnet_config.dropout) in a model: on in training steps, one mask per step, off when sampling.</summary>
public class ResNetDropoutTests
{
    static ModelConfig WithDropout(float p) => ModelConfig.Parse($$"""
        { "imageSize": 8, "imageChannels": 3, "unet": { "resolutionChannels": [8, 16], "numResnetsPerResolution": [1],
          "attentionLevels": [], "temporalDim": 32, "groups": 4, "attentionGroups": 4, "numClasses": 3, "dropout": {{p.ToString(System.Globalization.CultureInfo.InvariantCulture)}} } }
        """);

    static Backend Cpu => TestBackends.Get(BackendKind.Cpu);

    [Test]
    public void ConfigWithDropoutTrainsAStepAndSamplesDeterministically()
    {
        var rng = TestSeed.NewRandom();
        var model = ModelFactory.Create(WithDropout(0.1f), Cpu, (ulong)rng.Next());
        try
        {
            Assert.That(Descendants(model).OfType<ResNet>(), Is.All.Property(nameof(ResNet.Dropout)).EqualTo(0.1f));
            using var images = Cpu.FromArray(TestSeed.Uniform(rng, 2 * 3 * 8 * 8), 2, 3, 8, 8);
            var labels = new Conditioning(ClassLabels: [0, 2]);
            var loss = new DiffusionLoss(model, new DiffusionConfig());
            using var optimizer = new AdamWOptimizer(model.NamedParameters(), AdamOptions.AdamW(1e-3, 0.0));
            using (new Graph())
            {
                using var r = loss.Compute(images, labels, seed: 7, step: 0);
                Assert.That(float.IsFinite(r.Loss.Item()), $"loss {r.Loss.Item()}{TestSeed.Describe()}");
                r.Loss.Backward();
            }
            using (var norm = optimizer.Step(1e-3)) Assert.That(float.IsFinite(norm.Item()));

            var sampler = new Sampler(model, new DiffusionConfig());
            var sampling = new SamplerConfig { NumSteps = 3, DdimEta = 0 };
            float[] first = SampleOnce(sampler, labels, sampling), second = SampleOnce(sampler, labels, sampling);
            Assert.That(second, Is.EqualTo(first), "two samples with the same seed");
        }
        finally { model.DisposeParameters(); }
    }

    static float[] SampleOnce(Sampler sampler, Conditioning labels, SamplerConfig config)
    {
        var outs = sampler.Sample(2, labels, config, seed: 11);
        try { return outs[0].ToArray(); }
        finally { foreach (var t in outs) t.Dispose(); }
    }

    [Test]
    public void EachTrainingStepDrawsItsOwnMaskAndNoneOutsideOne()
    {
        var rng = TestSeed.NewRandom();
        var model = ModelFactory.Create(WithDropout(0.25f), Cpu, 1);
        try
        {
            // Random weights everywhere: at initialisation conv2 and conv_out are zero, which would hide any mask.
            ulong weightSeed = (ulong)rng.NextInt64();
            foreach (var (p, i) in model.Parameters().Select((p, i) => (p, i))) Ops.RandomUniform(p.Data, weightSeed, (ulong)i, -0.5f, 0.5f);
            using var x = Cpu.FromArray(TestSeed.Uniform(rng, 3 * 8 * 8), 1, 3, 8, 8);
            float[] Output()
            {
                using var g = new Graph();
                return model.Forward([new Variable(x)], [500], new Conditioning(ClassLabels: [1]))[0].Data.ToArray();
            }
            float[] OutputAt(ulong step)
            {
                using (ResNetDropout.ForStep(model, 3, step)) return Output();
            }

            var plain = Output();
            float[] step1 = OutputAt(1), step1Again = OutputAt(1), step2 = OutputAt(2);
            Assert.Multiple(() =>
            {
                Assert.That(step1Again, Is.EqualTo(step1), "a step's masks repeat exactly");
                Assert.That(step2, Is.Not.EqualTo(step1), "another step draws other masks");
                Assert.That(step1, Is.Not.EqualTo(plain), "dropout is applied inside a training step");
                Assert.That(Output(), Is.EqualTo(plain), "no dropout after the step's scope");
            });
            model.Eval();
            Assert.That(OutputAt(1), Is.EqualTo(plain), "no dropout in eval mode");
        }
        finally { model.DisposeParameters(); }
    }

    static IEnumerable<Mdm.Autograd.Nn.Module> Descendants(Mdm.Autograd.Nn.Module m) =>
        m.NamedChildren().SelectMany(c => Descendants(c.Value)).Prepend(m);
}
