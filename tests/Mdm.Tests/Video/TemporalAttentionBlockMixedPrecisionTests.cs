using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model.Nn;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Video;

/// <summary>
/// The temporal attention block under bf16 autocast (its attention output, MLP and up conv write bf16 with BF16 storage;
/// the rounded autocast rounds the same values in f32 tensors), forward and backward against the same block in f32: the
/// FlashAttention rule in the L2 norm, ‖stored − f32‖ ≤ 2‖rounded − f32‖ + 2^-5‖f32‖ per tensor, as in
/// MixedPrecisionStepTests.
/// </summary>
[BackendFixtures(BackendKind.Cpu, BackendKind.IlgpuCpu)]
public class TemporalAttentionBlockMixedPrecisionTests(BackendKind kind) : KernelFixture(kind)
{
    [TestCase(2, 5, 16, 5, 7, true)]
    [TestCase(1, 3, 32, 4, 4, false)]
    public void Bf16StorageIsAsCloseToF32AsTheRoundedAutocast(int clips, int frames, int channels, int h, int w, bool rotary)
    {
        var block = new TemporalAttentionBlock(ParameterFactory.On(B), channels, rotary);
        block.Initialize((ulong)Rng.Next());
        try
        {
            var named = block.NamedParameters().ToDictionary(p => p.Name, p => p.Value);
            foreach (var s in block.ParameterSpecs().Where(s => s.Init == ParameterInit.Zeros))
                named[s.Name].Data.CopyFrom(TestSeed.Uniform(Rng, s.Numel, -0.5f, 0.5f));   // every branch contributes
            int n = clips * frames;
            var xs = TestSeed.Uniform(Rng, (long)n * channels * h * w);
            var dys = TestSeed.Uniform(Rng, xs.Length);
            var f32 = Step(block, xs, dys, [n, channels, h, w], frames, null);
            var rounded = Step(block, xs, dys, [n, channels, h, w], frames, AutocastStorage.RoundedF32);
            var stored = Step(block, xs, dys, [n, channels, h, w], frames, AutocastStorage.Bf16);
            foreach (var name in f32.Keys) AssertFlashAttentionRule(name, stored[name], rounded[name], f32[name]);
        }
        finally { block.DisposeParameters(); }
    }

    /// <summary>y, dx and every parameter gradient of one forward and backward (dy given).</summary>
    Dictionary<string, float[]> Step(TemporalAttentionBlock block, float[] xs, float[] dys, int[] shape, int frames, AutocastStorage? storage)
    {
        foreach (var (_, p) in block.NamedParameters()) p.ZeroGrad();
        MixedPrecision.MasterWeightsChanged();
        using var x = new Variable(B.FromArray(xs, shape), requiresGrad: true);
        using var dy = B.FromArray(dys, shape);
        var result = new Dictionary<string, float[]>();
        using (var graph = new Graph())
        using (MixedPrecision.Bf16(enabled: storage != null, storage: storage ?? AutocastStorage.RoundedF32))
        {
            var y = block.Forward(x, frames);
            Assert.That(y.Data.DType, Is.EqualTo(DType.F32), "the residual stream stays f32");
            result["y"] = y.Data.ToArray();
            y.Backward(dy);
        }
        result["dx"] = x.Grad!.ToArray();
        foreach (var (name, p) in block.NamedParameters()) result["d" + name] = p.Grad!.ToArray();
        return result;
    }

    static void AssertFlashAttentionRule(string what, float[] stored, float[] rounded, float[] f32)
    {
        Assert.That(stored.All(float.IsFinite), $"{what}: non-finite values\n{TestSeed.Describe()}");
        double storedError = Distance(stored, f32), roundedError = Distance(rounded, f32), norm = Distance(f32, new float[f32.Length]);
        Assert.That(storedError, Is.LessThanOrEqualTo(2 * roundedError + norm / 32),
            $"{what}: ‖bf16 storage − f32‖ against ‖rounded autocast − f32‖ {roundedError:G3}, ‖f32‖ {norm:G3}\n{TestSeed.Describe()}");
    }

    static double Distance(float[] a, float[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        return Math.Sqrt(sum);
    }
}
