using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Kernels.Reference;
using Mdm.Tests.Harness;
using Mdm.Tests.Reference;

namespace Mdm.Tests.Kernels;

/// <summary>
/// The elementwise ops that take autocast's BF16 values as they are: GELU with BF16 in and out (f32 inside) and its
/// backward on the BF16 input, and Add with torch's type promotion (BF16 + BF16 → BF16, BF16 + F32 → F32), against
/// float64 of the bf16 values.
/// </summary>
[BackendFixtures]
public class Bf16ElementwiseTests(BackendKind kind) : KernelFixture(kind)
{
    public static IEnumerable<int[]> Shapes() => [[9, 9], [113, 64], [2, 3, 9, 9], [1031]];

    /// <summary>A BF16 x with values in [-6, 6) (GELU's tail and body) and the rounded values as doubles.</summary>
    (Tensor t, double[] r) Bf16Activations(int[] shape) => BF16Of(TestSeed.Uniform(Rng, Shape.Numel(shape), -6f, 6f), shape);

    /// <summary>GELU of a BF16 x is BF16: the f32 budget e of the F32 kernel plus half a bf16 ulp of the f32 value, at
    /// most 2^-8·(|ref| + e) (a naive bf16 GELU, the exact value rounded, is within 2^-9·|ref|).</summary>
    [TestCaseSource(nameof(Shapes))]
    public void GeluForwardBF16(int[] shape)
    {
        var (x, rx) = Bf16Activations(shape);
        using (x)
        {
            using var y = PoisonedBF16(shape);
            Ops.Gelu(x, y);
            using var fresh = Ops.Gelu(x);
            Assert.That(fresh.DType, Is.EqualTo(DType.BF16), "GELU of a BF16 x");
            var expected = Ref.Map(rx, Ref.Gelu);
            var got = Array.ConvertAll(y.ToBF16Bits(), BFloat16.ToFloat);
            Compare.AssertClose(Name("GeluForward bf16", shape), got, expected, new Tolerance(0, 1), Bf16OfF32Bound(expected, Tolerance.F32Transcendental));
            Assert.That(fresh.ToBF16Bits(), Is.EqualTo(y.ToBF16Bits()), Name("GeluForward bf16 into a fresh tensor", shape));
        }
    }

    /// <summary>dx = dy·GELU'(x) on the BF16 x the forward read (dy and dx F32), with the F32 kernel's budget.</summary>
    [TestCaseSource(nameof(Shapes))]
    public void GeluBackwardBF16(int[] shape)
    {
        var (x, rx) = Bf16Activations(shape);
        var (dy, rdy) = Input(shape);
        using (x) using (dy)
        {
            using var dx = Poisoned(shape);
            Ops.GeluBackward(x, dy, dx);
            var expected = new double[rx.Length];
            for (int i = 0; i < rx.Length; i++) expected[i] = rdy[i] * Ref.GeluGrad(rx[i]);
            Compare.AssertClose(Name("GeluBackward bf16 x", shape), dx, expected, Tolerance.F32Transcendental);
        }
    }

    /// <summary>Through autograd: GELU of a BF16 variable rounds its incoming gradient to bf16 values (torch's gradient
    /// of a bf16 output), then dx = dy·GELU'(x) against float64 of the rounded dy.</summary>
    [Test]
    public void GeluOpRoundsTheGradientOfItsBF16Output()
    {
        int[] shape = [3, 37];
        var (x, rx) = Bf16Activations(shape);
        var fdy = TestSeed.Uniform(Rng, Shape.Numel(shape));
        using var xv = new Variable(x, requiresGrad: true);
        using var dy = Upload(fdy, shape);
        using (new Graph())
        {
            var y = F.Gelu(xv);
            Assert.That(y.Data.DType, Is.EqualTo(DType.BF16));
            y.Backward(dy);
        }
        var expected = new double[rx.Length];
        for (int i = 0; i < rx.Length; i++) expected[i] = BFloat16.ToFloat(BFloat16.FromFloat(fdy[i])) * Ref.GeluGrad(rx[i]);
        Compare.AssertClose(Name("gelu op bf16: dx", shape), xv.Grad!, expected, Tolerance.F32Transcendental);
    }

    /// <summary>BF16 + BF16 is BF16: the f32 sum of the widened values rounded once, within 2^-8 of the exact sum
    /// (the f32 sum of two bf16 values loses at most 2^-24 of it first).</summary>
    [TestCaseSource(nameof(Shapes))]
    public void AddBF16(int[] shape)
    {
        var (a, ra) = BF16Input(shape);
        var (b, rb) = BF16Input(shape);
        using (a) using (b)
        {
            using var y = PoisonedBF16(shape);
            Ops.Add(a, b, y);
            var expected = new double[ra.Length];
            for (int i = 0; i < ra.Length; i++) expected[i] = ra[i] + rb[i];
            Compare.AssertClose(Name("Add bf16 + bf16", shape), Array.ConvertAll(y.ToBF16Bits(), BFloat16.ToFloat), expected, new Tolerance(0, 1),
                Bf16OfF32Bound(expected, new Tolerance(0, Math.Pow(2, -24))));
            using var fresh = Ops.Add(a, b);
            Assert.That(fresh.DType, Is.EqualTo(DType.BF16), "BF16 + BF16");
        }
    }

    /// <summary>BF16 + F32 and F32 + BF16 are F32 (torch's promotion): the bf16 value widened exactly, one f32 rounding.</summary>
    [TestCaseSource(nameof(Shapes))]
    public void AddBF16AndF32(int[] shape)
    {
        var (a, ra) = BF16Input(shape);
        var (b, rb) = Input(shape);
        using (a) using (b)
        {
            var expected = new double[ra.Length];
            for (int i = 0; i < ra.Length; i++) expected[i] = ra[i] + rb[i];
            foreach (var (x, z, order) in new[] { (a, b, "bf16 + f32"), (b, a, "f32 + bf16") })
            {
                using var y = Poisoned(shape);
                Ops.Add(x, z, y);
                Compare.AssertClose(Name("Add " + order, shape), y, expected, new Tolerance(0, Math.Pow(2, -24)));
            }
        }
    }

    [Test]
    public void AddWithABF16OperandNeedsOneShape()
    {
        using var a = B.Empty(DType.BF16, 2, 3);
        using var b = B.Zeros(3);
        var e = Assert.Throws<ArgumentException>(() => Ops.Add(a, b))!;
        Assert.That(e.Message, Does.Contain("Add: a BF16 operand needs operands of one shape, got BF16 [2,3] and F32 [3]"));
    }

    /// <summary>Through autograd: BF16 + BF16 rounds its incoming gradient to bf16 values for both operands; BF16 + F32
    /// passes it on as it is.</summary>
    [Test]
    public void AddOpGradients()
    {
        int[] shape = [5, 7];
        var (a, _) = BF16Input(shape);
        var (b, _) = BF16Input(shape);
        var (c, _) = Input(shape);
        var fdy = TestSeed.Uniform(Rng, Shape.Numel(shape));
        var rounded = Array.ConvertAll(fdy, v => BFloat16.ToFloat(BFloat16.FromFloat(v)));
        using var av = new Variable(a, requiresGrad: true);
        using var bv = new Variable(b, requiresGrad: true);
        using var cv = new Variable(c, requiresGrad: true);
        using var dy = Upload(fdy, shape);
        using (new Graph())
        {
            var sum = F.Add(av, bv);
            Assert.That(sum.Data.DType, Is.EqualTo(DType.BF16));
            sum.Backward(dy);
        }
        Assert.That(av.Grad!.ToArray(), Is.EqualTo(rounded), "d(bf16 + bf16)/da");
        Assert.That(bv.Grad!.ToArray(), Is.EqualTo(rounded), "d(bf16 + bf16)/db");
        using (new Graph())
        {
            var mixed = F.Add(bv, cv);
            Assert.That(mixed.Data.DType, Is.EqualTo(DType.F32));
            mixed.Backward(dy);
        }
        Assert.That(cv.Grad!.ToArray(), Is.EqualTo(fdy), "d(bf16 + f32)/dc");
    }

    /// <summary>Per element: the f32 budget e (tol on |ref|) plus half a bf16 ulp of the f32 value, ≤ 2^-8·(|ref| + e).</summary>
    static double[] Bf16OfF32Bound(double[] expected, Tolerance tol)
    {
        var bound = new double[expected.Length];
        for (int i = 0; i < bound.Length; i++)
        {
            double e = tol.Atol + tol.Rtol * Math.Abs(expected[i]);
            bound[i] = e + Math.Pow(2, -8) * (Math.Abs(expected[i]) + e);
        }
        return bound;
    }
}
