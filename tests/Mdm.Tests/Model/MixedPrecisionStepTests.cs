using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Diffusion;
using Mdm.Tests.Autograd;
using Mdm.Tests.Harness;
using static Mdm.Tests.Model.ModelTestUtil;

namespace Mdm.Tests.Model;

/// <summary>
/// One NestedUNet training step (diffusion loss forward, backward to every parameter) under bf16 autocast with BF16
/// storage and the bf16-writing norms, against the rounded-f32 autocast: the same loss and gradients within the bf16 rule
/// (their distance at most twice the rounded autocast's distance from f32, plus a floor), and fewer activation bytes
/// kept for the backward. The tiny test model, one sample on the ILGPU CPU accelerator (every launch is slow there).
/// </summary>
[BackendFixtures(BackendKind.Cpu, BackendKind.IlgpuCpu)]
public class MixedPrecisionStepTests(BackendKind kind) : KernelFixture(kind)
{
    internal sealed record StepResult(float Loss, Dictionary<string, float[]> Grads, long Activations);

    /// <summary>One step of the tiny test model; Activations = bytes the forward left alive for the backward.</summary>
    internal static StepResult Step(Backend b, int batch, bool autocast, AutocastStorage storage, int seed)
    {
        var model = ModelFactory.Create(LoadConfig("tiny-test.json"), b, seed: 5);
        PerturbZeroInit(model, new Random(seed));
        var loss = new DiffusionLoss(model, new DiffusionConfig());
        using var images = Ops.RandomUniform(b.Empty(batch, 3, 16, 16), (ulong)seed, 0, -1f, 1f);
        var text = RandomText(b, new Random(seed), [.. new[] { 4, 2, 5 }.Take(batch)], 5, 6);
        try
        {
            float value;
            long atStart = b.Memory.LiveBytes, activations;
            using (var graph = new Graph())
            using (MixedPrecision.Bf16(autocast, storage))
            {
                using var result = loss.Compute(images, text, seed: 3, step: 7);
                activations = b.Memory.LiveBytes - atStart;
                value = result.Loss.Item();
                result.Loss.Backward();
            }
            var grads = model.NamedParameters().ToDictionary(p => p.Name, p => p.Value.Grad!.ToArray());
            return new StepResult(value, grads, activations);
        }
        finally { model.DisposeParameters(); Dispose(text); }
    }

    [Test]
    public void Bf16StorageGivesTheRoundedAutocastsLossAndGradients()
    {
        int seed = TestSeed.NewRandom().Next(), batch = Kind == BackendKind.Cpu ? 3 : 1;
        var f32 = Step(B, batch, false, AutocastStorage.RoundedF32, seed);
        var rounded = Step(B, batch, true, AutocastStorage.RoundedF32, seed);
        var stored = Step(B, batch, true, AutocastStorage.Bf16, seed);
        MixedPrecisionStorageTests.AssertWithinBf16Rule("loss", [stored.Loss], [rounded.Loss], [f32.Loss]);
        Assert.That(stored.Grads.Keys, Is.EquivalentTo(rounded.Grads.Keys));
        foreach (var (name, g) in f32.Grads)
            MixedPrecisionStorageTests.AssertWithinBf16Rule("d" + name, stored.Grads[name], rounded.Grads[name], g);
    }
}

/// <summary>The CPU allocator counts exact bytes: BF16 operands and the norms' bf16 copies keep fewer bytes alive
/// between the forward and the backward than the rounded-f32 autocast.</summary>
[BackendFixtures(BackendKind.Cpu)]
public class MixedPrecisionMemoryTests_Cpu
{
    [Test]
    public void Bf16StorageKeepsFewerActivationBytes()
    {
        var cpu = TestBackends.Get(BackendKind.Cpu);
        int seed = TestSeed.NewRandom().Next();
        var rounded = MixedPrecisionStepTests.Step(cpu, 3, true, AutocastStorage.RoundedF32, seed);
        var stored = MixedPrecisionStepTests.Step(cpu, 3, true, AutocastStorage.Bf16, seed);
        TestContext.Out.WriteLine($"bytes kept for the backward: rounded f32 autocast {rounded.Activations:N0}, bf16 storage {stored.Activations:N0}");
        Assert.That(stored.Activations, Is.LessThan(0.8 * rounded.Activations), $"bf16 storage keeps at least a fifth fewer bytes\n{TestSeed.Describe()}");
    }
}
