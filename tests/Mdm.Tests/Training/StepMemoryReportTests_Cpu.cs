using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Config;
using Mdm.Model.Diffusion;
using Mdm.Model.Training;
using Mdm.Tests.Harness;
using static Mdm.Tests.Model.ModelTestUtil;

namespace Mdm.Tests.Training;

/// <summary>The memory report of one training step of a tiny model on the CPU backend, whose allocator counts exact
/// bytes: every category adds up to what the allocator saw.</summary>
[BackendFixtures(BackendKind.Cpu)]
public class StepMemoryReportTests_Cpu
{
    [Test]
    public void CategoriesAddUpToTheAllocatorsBytes()
    {
        var backend = TestBackends.Get(BackendKind.Cpu);
        var config = new ModelConfig { ImageSize = 8, Unet = LoadConfig("tiny-test.json").Innermost with { ConditioningFeatureDim = -1, ConditioningFeatureProjDim = -1, NumClasses = 3 } };
        var model = ModelFactory.Create(config, backend, seed: 5);
        var loss = new DiffusionLoss(model, new DiffusionConfig());
        using var opt = new AdamWOptimizer(model.NamedParameters(), AdamOptions.AdamW(1e-4, 0), 2f);
        using var ema = new ExponentialMovingAverage(model.NamedParameters(), 0.999f);
        using var images = Ops.RandomUniform(backend.Empty(2, config.ImageChannels, 8, 8), 7, 0, -1f, 1f);
        var cond = new Conditioning(ClassLabels: [0, 2]);
        var meter = new StepMemoryMeter(backend);
        try
        {
            meter.StepStarting();
            long liveAtStart = backend.Memory.LiveBytes;
            using (var graph = new Graph())
            {
                using var result = loss.Compute(images, cond, seed: 3, step: 0);
                meter.ForwardDone();
                result.Loss.Backward();
            }
            meter.BackwardDone(model.NamedParameters());
            using (opt.Step(1e-4)) { }
            ema.Update();
            var report = meter.Report(model.NamedParameters(), opt, ema);
            TestContext.Out.WriteLine(report.Format());

            long parameterBytes = model.NamedParameters().Sum(p => p.Value.Data.Bytes);
            Assert.That(report.Parameters, Is.EqualTo(parameterBytes));
            Assert.That(report.Optimizer, Is.EqualTo(2 * parameterBytes), "AdamW keeps m and v, one of each per parameter");
            Assert.That(report.Ema, Is.EqualTo(parameterBytes));
            Assert.That(report.AtStart, Is.EqualTo(liveAtStart));
            Assert.That(report.OtherAtStart, Is.GreaterThanOrEqualTo(images.Bytes), "the batch is live at the start");
            Assert.That(report.Activations, Is.GreaterThan(0));
            Assert.That(report.Gradients, Is.EqualTo(parameterBytes), "every parameter got a gradient");
            Assert.That(report.Peak, Is.GreaterThanOrEqualTo(report.AtStart + report.Activations));
            Assert.That(report.BackwardAtPeak, Is.GreaterThanOrEqualTo(0));
            Assert.That(report.Format(), Does.Contain("allocator peak").And.Contain("activations"));
        }
        finally { model.DisposeParameters(); }
    }
}
