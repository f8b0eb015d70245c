using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Autograd;

/// <summary>bf16 autocast: operands and their gradients are rounded to bf16; products accumulate in f32.</summary>
public class MixedPrecisionTests
{
    static Backend Cpu => TestBackends.Get(BackendKind.Cpu);

    [Test]
    public void CastRoundsValuesAndGradientsToBF16()
    {
        var rng = TestSeed.NewRandom();
        var xs = TestSeed.Uniform(rng, 64);
        var gs = TestSeed.Uniform(rng, 64);
        using var x = new Variable(Cpu.FromArray(xs, 64), requiresGrad: true);
        using var g = Cpu.FromArray(gs, 64);
        using (new Graph())
        {
            var y = F.CastBF16(x);
            var yv = y.Data.ToArray();
            for (int i = 0; i < 64; i++) Assert.That(yv[i], Is.EqualTo(BFloat16.ToFloat(BFloat16.FromFloat(xs[i]))), $"value {i}");
            y.Backward(g);
        }
        var dx = x.Grad!.ToArray();
        for (int i = 0; i < 64; i++) Assert.That(dx[i], Is.EqualTo(BFloat16.ToFloat(BFloat16.FromFloat(gs[i]))), $"gradient {i}");
    }

    [Test]
    public void AutocastOnlyInsideTheScope()
    {
        using var x = new Variable(Cpu.FromArray([1.00390625f + 1e-4f], 1), requiresGrad: true);
        using (new Graph())
        {
            Assert.That(F.Autocast(x), Is.SameAs(x));
            using (MixedPrecision.Bf16())
            {
                Assert.That(MixedPrecision.Enabled);
                Assert.That(F.Autocast(x).Data.Item(), Is.EqualTo(1.0078125f));
            }
            Assert.That(MixedPrecision.Enabled, Is.False);
        }
    }

    [Test]
    public void Bf16LinearMatchesTheBf16MatmulKernel()
    {
        // Autocast emulation (rounded f32 operands) must give the same numbers as the BF16-storage kernel.
        var rng = TestSeed.NewRandom();
        using var x = new Variable(Cpu.FromArray(TestSeed.Uniform(rng, 9 * 24), 9, 24));
        using var w = new Variable(Cpu.FromArray(TestSeed.Uniform(rng, 7 * 24), 7, 24));
        using var xb = Ops.ToBF16(x.Data);
        using var wb = Ops.ToBF16(w.Data);
        using var kernel = Ops.Linear(xb, wb);
        using (new Graph())
        using (MixedPrecision.Bf16())
        {
            var y = F.Linear(F.Autocast(x), F.Autocast(w));
            Assert.That(y.Data.ToArray(), Is.EqualTo(kernel.ToArray()).Within(1e-5));
        }
    }
}
