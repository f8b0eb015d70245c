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
/// storage and the bf16-writing norms, against the rounded-f32 autocast. Both compute the same bf16 products with f32
/// accumulation, and both keep dy f32 off tensor cores, so they differ only where a kernel sums in another order and a
/// later rounding to bf16 lands on the neighbouring value: one bf16 ulp, 2^(e−7) for v in [2^e, 2^(e+1)), so up to
/// 2^-7·|v| (2^-8 holds only at the top of a binade). A gradient term carries such a value from the forward and a
/// gradient that was itself rounded to bf16 at a cast, each of which can flip: a term moves by at most 2·2^-7 = 2^-6 of
/// itself, and a gradient element by at most 2^-6·Σ|terms|. Where the terms cancel (norm weights and biases, the time
/// embedding) that is far more than 2^-6 of the element, and Σ|terms| is not visible here; over a tensor the flips add
/// like independent errors, so the bound is on the L2 norm: ‖stored − rounded‖ ≤ 2^-6·‖rounded‖ + 1e-7·√n (the floor
/// for f32 sums near zero). The loss is one value: |Δ| ≤ 2^-6·|loss|.
/// The CPU backend runs the tiny text-conditioned test model; the ILGPU CPU accelerator, where every launch is slow, a
/// class-conditional one at 8² with one sample.
/// </summary>
[BackendFixtures(BackendKind.Cpu, BackendKind.IlgpuCpu)]
public class MixedPrecisionStepTests(BackendKind kind) : KernelFixture(kind)
{
    internal sealed record StepResult(float Loss, Dictionary<string, float[]> Grads, long Activations);

    /// <summary>One step of the tiny test model (text-conditioned, or class-conditional at 8²); Activations = bytes the
    /// forward left alive for the backward.</summary>
    internal static StepResult Step(Backend b, int batch, bool textConditioned, AutocastStorage storage, int seed)
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
            using (MixedPrecision.Bf16(storage: storage))
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
    public void Bf16StorageGivesTheRoundedAutocastsLossAndGradients()
    {
        int seed = TestSeed.NewRandom().Next();
        bool cpu = Kind == BackendKind.Cpu;
        var rounded = Step(B, cpu ? 3 : 1, cpu, AutocastStorage.RoundedF32, seed);
        var stored = Step(B, cpu ? 3 : 1, cpu, AutocastStorage.Bf16, seed);
        AssertWithinOneBf16Ulp("loss", [stored.Loss], [rounded.Loss]);
        Assert.That(stored.Grads.Keys, Is.EquivalentTo(rounded.Grads.Keys));
        foreach (var (name, g) in rounded.Grads) AssertWithinOneBf16Ulp("d" + name, stored.Grads[name], g);
    }

    static void AssertWithinOneBf16Ulp(string what, float[] stored, float[] rounded)
    {
        double diff = 0, norm = 0, worst = 0;
        for (int i = 0; i < rounded.Length; i++)
        {
            double d = (double)stored[i] - rounded[i];
            diff += d * d; norm += (double)rounded[i] * rounded[i]; worst = Math.Max(worst, Math.Abs(d));
        }
        (diff, norm) = (Math.Sqrt(diff), Math.Sqrt(norm));
        double bound = norm / 64 + 1e-7 * Math.Sqrt(rounded.Length);
        Assert.That(stored.All(float.IsFinite), $"{what}: non-finite values\n{TestSeed.Describe()}");
        Assert.That(diff, Is.LessThanOrEqualTo(bound),
            $"{what}: ‖bf16 storage − rounded autocast‖ against ‖value‖ {norm:G3} (largest element difference {worst:G3})\n{TestSeed.Describe()}");
        TestContext.Out.WriteLine($"{what}: ‖Δ‖ {diff:G3} = {100 * diff / bound:F0}% of the bound");
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
