using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model;
using Mdm.Model.Config;
using Mdm.Model.Diffusion;
using Mdm.Tests.Harness;
using static Mdm.Tests.Model.ModelTestUtil;

namespace Mdm.Tests.Model;

/// <summary>
/// One NestedUNet training step (diffusion loss forward, backward to every parameter) under bf16 autocast with BF16
/// storage and the bf16-writing norms, against the rounded-f32 autocast, both measured against the same step in f32.
/// Both autocasts compute bf16 products of the same bf16 values with f32 accumulation, but a bf16 kernel may sum in
/// another order; when a later rounding then lands on the neighbouring bf16, the difference travels through the rest
/// of the step, and bias and norm gradients, which sum many cancelling terms, show it at several bf16 ulps of their
/// largest value. So the check is the FlashAttention rule in the L2 norm: ‖stored − f32‖ ≤ 2‖rounded − f32‖ + floor,
/// with a floor of 2^-5 of each gradient tensor's norm (seed sweeps on ilgpu-cpu needed at most 2^-7.7), 2^-8 of the
/// norm of all gradients together, and 2^-8 of the loss. A wrong or missing gradient misses it by far.
/// The CPU backend runs the tiny text-conditioned test model; the ILGPU CPU accelerator, where every launch is slow, a
/// class-conditional one at 8² with one sample.
/// </summary>
[BackendFixtures(BackendKind.Cpu, BackendKind.IlgpuCpu)]
public class MixedPrecisionStepTests(BackendKind kind) : KernelFixture(kind)
{
    internal sealed record StepResult(float Loss, Dictionary<string, float[]> Grads, long Activations);

    /// <summary>One step of the tiny test model (text-conditioned, or class-conditional at 8²); Activations = bytes the
    /// forward left alive for the backward.</summary>
    internal static StepResult Step(Backend b, int batch, bool textConditioned, AutocastStorage? storage, int seed)
    {
        var tiny = LoadConfig("tiny-test.json");
        var config = textConditioned ? tiny : new ModelConfig
        {
            ImageSize = 8,
            Nested = tiny.Nested! with { InnerUnet = tiny.Innermost with { ConditioningFeatureDim = -1, ConditioningFeatureProjDim = -1, NumClasses = 3 } },
        };
        var model = ModelFactory.Create(config, b, seed: 5);
        PerturbZeroInit(model, new Random(seed));
        var loss = new DiffusionLoss(model, new DiffusionConfig());
        int size = config.ImageSize;
        using var images = Ops.RandomUniform(b.Empty(batch, 3, size, size), (ulong)seed, 0, -1f, 1f);
        var cond = textConditioned ? RandomText(b, new Random(seed), [.. new[] { 4, 2, 5 }.Take(batch)], 5, 6)
            : new Conditioning(ClassLabels: [.. Enumerable.Range(0, batch).Select(i => i % 3)]);
        try
        {
            float value;
            long atStart = b.Memory.LiveBytes, activations;
            using (var graph = new Graph())
            using (MixedPrecision.Bf16(enabled: storage != null, storage: storage ?? AutocastStorage.RoundedF32))
            {
                using var result = loss.Compute(images, cond, seed: 3, step: 7);
                activations = b.Memory.LiveBytes - atStart;
                value = result.Loss.Item();
                result.Loss.Backward();
            }
            var grads = model.NamedParameters().ToDictionary(p => p.Name, p => p.Value.Grad!.ToArray());
            return new StepResult(value, grads, activations);
        }
        finally { model.DisposeParameters(); Dispose(cond); }
    }

    [Test]
    public void Bf16StorageIsAsCloseToF32AsTheRoundedAutocast()
    {
        int seed = TestSeed.NewRandom().Next();
        bool cpu = Kind == BackendKind.Cpu;
        int batch = cpu ? 3 : 1;
        var f32 = Step(B, batch, cpu, storage: null, seed);
        var rounded = Step(B, batch, cpu, AutocastStorage.RoundedF32, seed);
        var stored = Step(B, batch, cpu, AutocastStorage.Bf16, seed);
        AssertFlashAttentionRule("loss", [stored.Loss], [rounded.Loss], [f32.Loss], floor: 1.0 / 256);
        Assert.That(stored.Grads.Keys, Is.EquivalentTo(f32.Grads.Keys));
        foreach (var (name, g) in f32.Grads) AssertFlashAttentionRule("d" + name, stored.Grads[name], rounded.Grads[name], g, floor: 1.0 / 32);
        var all = f32.Grads.Keys.ToArray();
        AssertFlashAttentionRule("all gradients", [.. all.SelectMany(n => stored.Grads[n])], [.. all.SelectMany(n => rounded.Grads[n])],
            [.. all.SelectMany(n => f32.Grads[n])], floor: 1.0 / 256);
    }

    /// <summary>‖stored − f32‖ ≤ 2‖rounded − f32‖ + floor·‖f32‖.</summary>
    static void AssertFlashAttentionRule(string what, float[] stored, float[] rounded, float[] f32, double floor)
    {
        Assert.That(stored.All(float.IsFinite), $"{what}: non-finite values\n{TestSeed.Describe()}");
        double storedError = Distance(stored, f32), roundedError = Distance(rounded, f32), norm = Distance(f32, new float[f32.Length]);
        Assert.That(storedError, Is.LessThanOrEqualTo(2 * roundedError + floor * norm),
            $"{what}: ‖bf16 storage − f32‖ against ‖rounded autocast − f32‖ {roundedError:G3}, ‖f32‖ {norm:G3}\n{TestSeed.Describe()}");
    }

    static double Distance(float[] a, float[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        return Math.Sqrt(sum);
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
        var rounded = MixedPrecisionStepTests.Step(cpu, 3, textConditioned: true, AutocastStorage.RoundedF32, seed);
        var stored = MixedPrecisionStepTests.Step(cpu, 3, textConditioned: true, AutocastStorage.Bf16, seed);
        TestContext.Out.WriteLine($"bytes kept for the backward: rounded f32 autocast {rounded.Activations:N0}, bf16 storage {stored.Activations:N0}");
        Assert.That(stored.Activations, Is.LessThan(0.8 * rounded.Activations), $"bf16 storage keeps at least a fifth fewer bytes\n{TestSeed.Describe()}");
    }
}
