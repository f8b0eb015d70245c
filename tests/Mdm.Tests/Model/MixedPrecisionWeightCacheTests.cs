using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Model.Checkpoints;
using Mdm.Model.Training;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Model;

/// <summary>
/// The BF16 weight copies of autocast's bf16 storage (<see cref="F.AutocastWeight"/>): one copy per weight until the
/// master weight changes, remade after an optimizer step, a checkpoint load or an EMA copy, freed with the weight.
/// </summary>
[BackendFixtures(BackendKind.Cpu, BackendKind.IlgpuCpu)]
public class MixedPrecisionWeightCacheTests(BackendKind kind) : KernelFixture(kind)
{
    const int Rows = 3, In = 5, Out = 4;

    [Test]
    public void OneCopyPerStepAndTheStepAfterAnUpdateReadsTheNewValues()
    {
        var ws = TestSeed.Uniform(Rng, Out * In);
        var (x, rx) = BF16Input(Rows, In);
        using var w = new Variable(Upload(ws, Out, In), requiresGrad: true);
        using var optimizer = new AdamWOptimizer([("w", w)], AdamOptions.Adam(0.05), maxGradNorm: 0);
        Tensor copy;
        using (x)
        {
            using (new Graph())
            using (MixedPrecision.Bf16(storage: AutocastStorage.Bf16))
            {
                var a = F.AutocastWeight(w);
                var b = F.AutocastWeight(w);
                Assert.That(b.Data, Is.SameAs(a.Data), "two uses in one step share one copy");
                AssertHoldsBf16Of(a.Data, ws, "first step");
                F.Sum(F.Add(F.Linear(new Variable(x), a, null, bf16Operands: true), F.Linear(new Variable(x), b, null, bf16Operands: true))).Backward();
                copy = a.Data;
            }
            Assert.That(copy.IsDisposed, Is.False, "the copy belongs to the weight, not to the step's graph");
            Assert.That(w.Grad!.DType, Is.EqualTo(DType.F32));
            // Each use hands back round_bf16(s) with s = Σ_r x[r, i] (dy = 1), so dW = 2·round_bf16(s_f32): the f32 sum is
            // within 2^-23·Σ|x| of s, and rounding to nearest bf16 moves a value by at most half an ulp, ≤ 2^-8 of it.
            var dw = w.Grad.ToArray();
            for (int o = 0; o < Out; o++)
                for (int i = 0; i < In; i++)
                {
                    double sum = 0, scale = 0;
                    for (int r = 0; r < Rows; r++) { sum += rx[r * In + i]; scale += Math.Abs(rx[r * In + i]); }
                    double bound = 2 * (Math.Pow(2, -8) * (Math.Abs(sum) + Math.Pow(2, -23) * scale) + Math.Pow(2, -23) * scale);
                    Assert.That(dw[o * In + i], Is.EqualTo(2 * sum).Within(bound), $"dW[{o},{i}]\n{TestSeed.Describe()}");
                }

            optimizer.Step(0.05);
            var updated = w.Data.ToArray();
            Assert.That(updated, Is.Not.EqualTo(ws), "the optimizer moved the weight");
            using (new Graph())
            using (MixedPrecision.Bf16(storage: AutocastStorage.Bf16))
            {
                var c = F.AutocastWeight(w);
                Assert.That(c.Data, Is.SameAs(copy), "the copy's memory is reused");
                AssertHoldsBf16Of(c.Data, updated, "after the optimizer step");
                var y = F.Linear(new Variable(x), c, null, bf16Operands: true).Data.ToArray();
                for (int r = 0; r < Rows; r++)
                    for (int o = 0; o < Out; o++)
                    {
                        double e = 0, scale = 0;
                        for (int i = 0; i < In; i++)
                        {
                            double t = rx[r * In + i] * BFloat16.ToFloat(BFloat16.FromFloat(updated[o * In + i]));
                            e += t; scale += Math.Abs(t);
                        }
                        Assert.That(y[r * Out + o], Is.EqualTo(e).Within(1e-6 * scale + 1e-30), $"y[{r},{o}] after the update\n{TestSeed.Describe()}");
                    }
            }
        }
        w.Dispose();
        Assert.That(copy.IsDisposed, "disposing the weight frees its copy");
    }

    [Test]
    public void CheckpointLoadsAndEmaCopiesRemakeTheCopy()
    {
        var ws = TestSeed.Uniform(Rng, Out * In);
        var loaded = TestSeed.Uniform(Rng, Out * In);
        using var w = new Variable(Upload(ws, Out, In), requiresGrad: true);
        Tensor Copy()
        {
            using (MixedPrecision.Bf16(storage: AutocastStorage.Bf16)) return F.AutocastWeight(w).Data;
        }
        AssertHoldsBf16Of(Copy(), ws, "before");

        using (var source = Upload(loaded, Out, In)) Ops.Copy(source, w.Data);
        AssertHoldsBf16Of(Copy(), ws, "a write the cache is not told about keeps the copy (no cast per use)");

        using var file = SafeTensorsFile.Read(new MemoryStream(SafeTensors(loaded)), "weights.safetensors");
        StateDict.Load([("w", w.Data)], file);
        AssertHoldsBf16Of(Copy(), loaded, "after a checkpoint load");

        using var averaged = new Variable(Upload(ws, Out, In));
        using var ema = new ExponentialMovingAverage([("w", averaged)]);
        ema.CopyTo([("w", w)]);
        AssertHoldsBf16Of(Copy(), ws, "after an EMA copy");
    }

    [Test]
    public void OutsideBf16StorageTheWeightIsCastAsBefore()
    {
        using var w = new Variable(Upload(TestSeed.Uniform(Rng, Out * In), Out, In), requiresGrad: true);
        Assert.That(F.AutocastWeight(w), Is.SameAs(w), "no autocast: the weight itself");
        using (new Graph())
        using (MixedPrecision.Bf16(storage: AutocastStorage.RoundedF32))
        {
            var a = F.AutocastWeight(w);
            var b = F.AutocastWeight(w);
            Assert.That(a.Data.DType, Is.EqualTo(DType.F32), "rounded autocast: an f32 tensor of bf16 values");
            Assert.That(b.Data, Is.Not.SameAs(a.Data), "the reference emulation casts at every use");
        }
    }

    static byte[] SafeTensors(float[] values)
    {
        using var stream = new MemoryStream();
        new SafeTensorsWriter().AddF32("w", [Out, In], values).WriteTo(stream);
        return stream.ToArray();
    }

    static void AssertHoldsBf16Of(Tensor copy, float[] values, string when)
    {
        Assert.That(copy.DType, Is.EqualTo(DType.BF16), when);
        var bits = copy.ToBF16Bits();
        for (int i = 0; i < values.Length; i++)
            Assert.That(bits[i], Is.EqualTo(BFloat16.FromFloat(values[i])), $"{when}: element {i}\n{TestSeed.Describe()}");
    }
}
