using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Autograd;

/// <summary>
/// Autocast's bf16 storage (<see cref="AutocastStorage.Bf16"/>): operands are BF16 tensors, gradients reaching f32 values
/// are F32 and rounded to bf16, the f32 value is not kept alive by its cast, and conv, linear, attention and the
/// bf16-writing norms give the numbers of the rounded-f32 autocast.
/// </summary>
[BackendFixtures(BackendKind.Cpu, BackendKind.IlgpuCpu)]
public class MixedPrecisionStorageTests(BackendKind kind) : KernelFixture(kind)
{
    [Test]
    public void CastStoresBf16AndHandsBackAnF32GradientRoundedToBf16()
    {
        var xs = TestSeed.Uniform(Rng, 37);
        var gs = TestSeed.Uniform(Rng, 37);
        using var x = new Variable(Upload(xs, 37), requiresGrad: true);
        using var g = Upload(gs, 37);
        using (new Graph())
        using (MixedPrecision.Bf16(storage: AutocastStorage.Bf16))
        {
            Assert.That(MixedPrecision.StoresBf16);
            var y = F.Autocast(x);
            Assert.That(y.Data.DType, Is.EqualTo(DType.BF16));
            Assert.That(F.Autocast(y), Is.SameAs(y), "a BF16 value is not cast again");
            var bits = y.Data.ToBF16Bits();
            for (int i = 0; i < 37; i++) Assert.That(bits[i], Is.EqualTo(BFloat16.FromFloat(xs[i])), $"value {i}\n{TestSeed.Describe()}");
            y.Backward(g);
        }
        Assert.That(x.Grad!.DType, Is.EqualTo(DType.F32));
        var dx = x.Grad.ToArray();
        for (int i = 0; i < 37; i++) Assert.That(dx[i], Is.EqualTo(BFloat16.ToFloat(BFloat16.FromFloat(gs[i]))), $"gradient {i}\n{TestSeed.Describe()}");
    }

    [Test]
    public void TheCastKeepsNoF32ValueAlive()
    {
        using var x = new Variable(Upload(TestSeed.Uniform(Rng, 6 * 5), 6, 5), requiresGrad: true);
        using var w = new Variable(Upload(TestSeed.Uniform(Rng, 4 * 5), 4, 5), requiresGrad: true);
        using (new Graph())
        using (MixedPrecision.Bf16(storage: AutocastStorage.Bf16))
        {
            var h = F.Silu(x);                     // SiLU's backward reads x, not h: only the casts below read h
            var kept = F.Autocast(h);
            Assert.That(h.Data.IsDisposed, Is.False, "plain Autocast leaves the value to its owner");
            var hb = F.AutocastLastUse(F.Silu(x));
            Assert.That(hb.Data.DType, Is.EqualTo(DType.BF16));
            var y = F.Linear(hb, F.Autocast(w), null, bf16Operands: true);
            var yKept = F.Linear(kept, F.Autocast(w), null, bf16Operands: true);
            Assert.That(y.Data.ToArray(), Is.EqualTo(yKept.Data.ToArray()));
            F.Sum(F.Add(y, yKept)).Backward();
            Assert.That(h.Data.IsDisposed, "the backward frees a value only casts read once they are done");
        }
        Assert.That(x.Grad!.ToArray().All(float.IsFinite));
        Assert.That(w.Grad!.ToArray().All(float.IsFinite));
    }

    [Test]
    public void FreesTheF32ValueAtItsLastUse()
    {
        using var x = new Variable(Upload(TestSeed.Uniform(Rng, 8), 8), requiresGrad: true);
        using (new Graph())
        using (MixedPrecision.Bf16(storage: AutocastStorage.Bf16))
        {
            var h = F.Silu(x);
            var hb = F.AutocastLastUse(h);
            Assert.That(h.Data.IsDisposed, "no recorded backward reads h");
            var k = F.Silu(x);
            F.Mul(k, k);                            // Mul's backward reads k
            var kb = F.AutocastLastUse(k);
            Assert.That(k.Data.IsDisposed, Is.False, "Mul's backward still reads k");
            Assert.That(hb.Data.DType, Is.EqualTo(DType.BF16));
            Assert.That(kb.Data.DType, Is.EqualTo(DType.BF16));
        }
    }

    /// <summary>A GroupNorm + FiLM + SiLU that writes BF16 gives exactly the rounded norm's values and gradients.</summary>
    [Test]
    public void Bf16WritingNormMatchesTheNormThenTheCast()
    {
        int[] shape = [2, 6, 3, 5];
        var inputs = new[] { shape, [6], [6], [2, 6], [2, 6] }.Select(s => TestSeed.Uniform(Rng, Shape.Numel(s))).ToArray();
        var gs = TestSeed.Uniform(Rng, Shape.Numel(shape));

        (float[] Y, float[][] Grads) Run(bool fused)
        {
            var vs = inputs.Select((v, i) => new Variable(Upload(v, i == 0 ? shape : i < 3 ? [6] : [2, 6]), requiresGrad: true)).ToArray();
            using var g = Upload(gs, shape);
            try
            {
                float[] y;
                using (new Graph())
                {
                    var out_ = fused
                        ? F.GroupNormFilmSilu(vs[0], 3, vs[1], vs[2], vs[3], vs[4], bf16Output: true)
                        : F.CastBF16(F.GroupNormFilmSilu(vs[0], 3, vs[1], vs[2], vs[3], vs[4]));
                    Assert.That(out_.Data.DType, Is.EqualTo(fused ? DType.BF16 : DType.F32));
                    y = out_.Data.ToArray();
                    out_.Backward(g);
                }
                return (y, vs.Select(v => v.Grad!.ToArray()).ToArray());
            }
            finally { foreach (var v in vs) v.Dispose(); }
        }

        var fusedRun = Run(true);
        var rounded = Run(false);
        Assert.That(fusedRun.Y, Is.EqualTo(rounded.Y), $"values\n{TestSeed.Describe()}");
        for (int i = 0; i < inputs.Length; i++)
            Assert.That(fusedRun.Grads[i], Is.EqualTo(rounded.Grads[i]), $"gradient of input {i}\n{TestSeed.Describe()}");
    }

    /// <summary>
    /// norm → conv → linear → attention under both storages: the forward values are the same bf16 products (summed in
    /// f32), and the gradients differ only where bf16 storage rounds a conv's output gradient to bf16, as torch.autocast
    /// does: at most twice the rounded autocast's own distance from f32, plus a floor.
    /// </summary>
    [Test]
    public void ConvLinearAndAttentionMatchTheRoundedAutocast()
    {
        int[] xShape = [2, 4, 3, 5], wShape = [12, 4, 3, 3];
        var xs = TestSeed.Uniform(Rng, Shape.Numel(xShape));
        var ws = TestSeed.Uniform(Rng, Shape.Numel(wShape), -0.3f, 0.3f);
        var ls = TestSeed.Uniform(Rng, 6 * 6, -0.5f, 0.5f);
        var gammas = TestSeed.Uniform(Rng, 4, 0.5f, 1.5f);

        (float[] Y, float[][] Grads) Run(bool autocast, AutocastStorage storage)
        {
            using var x = new Variable(Upload(xs, xShape), requiresGrad: true);
            using var w = new Variable(Upload(ws, wShape), requiresGrad: true);
            using var l = new Variable(Upload(ls, 6, 6), requiresGrad: true);
            using var gamma = new Variable(Upload(gammas, 4), requiresGrad: true);
            using var beta = new Variable(B.Zeros(4), requiresGrad: true);
            float[] y;
            using (new Graph())
            using (MixedPrecision.Bf16(autocast, storage))
            {
                var h = F.GroupNormSilu(x, 2, gamma, beta, bf16Output: MixedPrecision.StoresBf16);
                var c = F.Conv2d(F.Autocast(h), F.Autocast(w), null, 1, 1, MixedPrecision.Enabled);       // [2, 12, 3, 5]
                var t = F.Permute(F.Reshape(c, 2, 2, 6, 15), 0, 1, 3, 2);                                   // [2, 2, 15, 6]
                var p = F.Linear(F.AutocastLastUse(t), F.Autocast(l), null, MixedPrecision.Enabled);        // [2, 2, 15, 6]
                var parts = F.Split(p, [2, 2, 2], 3);                                                        // q, k, v [2, 2, 15, 2]
                var o = F.Attention(F.AutocastLastUse(parts[0]), F.AutocastLastUse(parts[1]), F.AutocastLastUse(parts[2]));
                var loss = F.Sum(F.Mul(o, o));
                y = o.Data.ToArray();
                loss.Backward();
            }
            return (y, [x.Grad!.ToArray(), w.Grad!.ToArray(), l.Grad!.ToArray(), gamma.Grad!.ToArray()]);
        }

        var f32 = Run(false, AutocastStorage.RoundedF32);
        var rounded = Run(true, AutocastStorage.RoundedF32);
        var stored = Run(true, AutocastStorage.Bf16);
        AssertWithinBf16Rule("attention output", stored.Y, rounded.Y, f32.Y);
        string[] names = ["dx", "dw", "dlinear", "dgamma"];
        for (int i = 0; i < names.Length; i++) AssertWithinBf16Rule(names[i], stored.Grads[i], rounded.Grads[i], f32.Grads[i]);
    }

    /// <summary>The noise floor of the rule: one bf16 rounding step (2^-8) of the tensor's largest f32 value.</summary>
    const double Bf16Floor = 1.0 / 256;

    /// <summary>|bf16 storage − rounded autocast| ≤ 2·|rounded autocast − f32| + the floor, on the worst element.</summary>
    internal static void AssertWithinBf16Rule(string what, float[] stored, float[] rounded, float[] f32)
    {
        double scale = f32.Max(v => Math.Abs((double)v)), apart = 0, bf16Error = 0;
        for (int i = 0; i < f32.Length; i++)
        {
            apart = Math.Max(apart, Math.Abs((double)stored[i] - rounded[i]));
            bf16Error = Math.Max(bf16Error, Math.Abs((double)rounded[i] - f32[i]));
        }
        TestContext.Out.WriteLine($"{what}: bf16 storage vs rounded autocast {apart:G3}, rounded autocast vs f32 {bf16Error:G3}, max |f32| {scale:G3}");
        Assert.That(stored.All(float.IsFinite), $"{what}: non-finite values\n{TestSeed.Describe()}");
        Assert.That(apart, Is.LessThanOrEqualTo(2 * bf16Error + Bf16Floor * scale + 1e-7), $"{what}\n{TestSeed.Describe()}");
    }
}
