using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;
using Mdm.Tests.Reference;

namespace Mdm.Tests.Core;

/// <summary>The float64 references' backward formulas equal finite differences of their forwards.</summary>
public class ReferenceGradcheckTests
{
    Random rng = null!;
    [SetUp] public void Seed() => rng = TestSeed.NewRandom();

    double[] R(int n) => TestSeed.ToDouble(TestSeed.Uniform(rng, n, -3f, 3f));

    [Test]
    public void Silu()
    {
        var x = R(40); var dy = R(40);
        var g = new double[40];
        for (int i = 0; i < 40; i++) g[i] = dy[i] * Ref.SiluGrad(x[i]);
        Gradcheck.Check("Silu", v => Ref.Map(v, Ref.Silu), x, dy, g);
    }

    [Test]
    public void BroadcastMulBothInputs()
    {
        int[] sa = [2, 3, 4], sb = [3, 1];
        var a = R(24); var b = R(3); var dy = R(24);
        Gradcheck.Check("Mul.da", v => Ref.Binary(v, sa, b, sb, (p, q) => p * q, out _), a, dy,
            Ref.SumTo(Ref.Binary(dy, sa, b, sb, (g, q) => g * q, out _), sa, sa));
        Gradcheck.Check("Mul.db", v => Ref.Binary(a, sa, v, sb, (p, q) => p * q, out _), b, dy,
            Ref.SumTo(Ref.Binary(dy, sa, a, sa, (g, p) => g * p, out _), sa, sb));
        Gradcheck.Check("Add.db", v => Ref.Binary(a, sa, v, sb, (p, q) => p + q, out _), b, dy, Ref.SumTo(dy, sa, sb));
    }

    [Test]
    public void SumOverNonContiguousAxes()
    {
        int[] shape = [2, 3, 4];
        var x = R(24);
        var s = Ref.Sum(x, shape, [0, 2], out var keep, out _);
        var dy = R(s.Length);
        var g = new double[24];
        for (int i = 0; i < 24; i++) g[i] = dy[Ref.BroadcastIndex(Ref.Unflatten(i, shape), keep)];
        Gradcheck.Check("Sum[0,2]", v => Ref.Sum(v, shape, [0, 2], out _, out _), x, dy, g);
    }
}
