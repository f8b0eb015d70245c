using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Config;
using Mdm.Model.Diffusion;
using Mdm.Model.Training;
using Mdm.Tests.Harness;
using static Mdm.Tests.Model.ModelTestUtil;

namespace Mdm.Tests.Model;

/// <summary>
/// <c>activationCheckpointing</c> on every level: the same loss and gradients as keeping the activations (with ResNet
/// dropout on, so the recomputation must reuse the forward's masks after the step's dropout scope has closed), and
/// less activation memory. CPU backend, whose allocator counts exact bytes. In f32: under bf16 autocast a gradient
/// summed in another order can round a value to the neighbouring bf16; CheckpointTests checks the autocast restore.
/// </summary>
[BackendFixtures(BackendKind.Cpu)]
public class ActivationCheckpointingTests_Cpu
{
    static ModelConfig Configured(bool checkpointing)
    {
        var tiny = LoadConfig("tiny-test.json");
        UNetConfig Set(UNetConfig u) => u with { ActivationCheckpointing = checkpointing, Dropout = 0.2f };
        return tiny with { Nested = tiny.Nested! with { Outer = Set(tiny.Nested!.Outer), InnerUnet = Set(tiny.Nested.InnerUnet!) } };
    }

    static (float Loss, Dictionary<string, float[]> Grads, long Peak) Step(ModelConfig config, int seed)
    {
        var backend = TestBackends.Get(BackendKind.Cpu);
        var model = ModelFactory.Create(config, backend, seed: 5);
        PerturbZeroInit(model, new Random(seed));
        var loss = new DiffusionLoss(model, new DiffusionConfig());
        using var images = Ops.RandomUniform(backend.Empty(3, 3, 16, 16), (ulong)seed, 0, -1f, 1f);
        var text = RandomText(backend, new Random(seed), [4, 2, 5], 5, 6);
        var meter = new StepMemoryMeter(backend);
        try
        {
            meter.StepStarting();
            float value;
            using (var graph = new Graph())
            {
                using var result = loss.Compute(images, text, seed: 3, step: 7);
                meter.ForwardDone();
                value = result.Loss.Item();
                result.Loss.Backward();
            }
            var grads = model.NamedParameters().ToDictionary(p => p.Name, p => p.Value.Grad!.ToArray());
            return (value, grads, backend.Memory.PeakLiveBytes);
        }
        finally { model.DisposeParameters(); Dispose(text); }
    }

    [Test]
    public void SameGradientsWithLessActivationMemory()
    {
        int seed = TestSeed.NewRandom().Next();
        var kept = Step(Configured(false), seed);
        var recomputed = Step(Configured(true), seed);
        Assert.That(recomputed.Loss, Is.EqualTo(kept.Loss), $"loss\n{TestSeed.Describe()}");
        Assert.That(recomputed.Grads.Keys, Is.EquivalentTo(kept.Grads.Keys));
        foreach (var (name, g) in kept.Grads)
        {
            var r = recomputed.Grads[name];
            // The recomputed block's parameter gradients join the sums in another order: f32 rounding of the largest.
            double scale = Math.Max(1e-6, g.Max(Math.Abs));
            for (int i = 0; i < g.Length; i++)
                Assert.That(Math.Abs(r[i] - g[i]), Is.LessThanOrEqualTo(1e-4 * scale), $"d{name}[{i}]: {r[i]} vs {g[i]}\n{TestSeed.Describe()}");
        }
        TestContext.Out.WriteLine($"peak bytes of the step: {kept.Peak:N0} kept, {recomputed.Peak:N0} recomputed");
        Assert.That(recomputed.Peak, Is.LessThan(kept.Peak), "checkpointing lowers the step's peak");
    }
}
