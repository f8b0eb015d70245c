using Mdm.Kernels;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;

namespace Mdm.Tests.Kernels;

/// <summary>Add, Sub, Mul with broadcasting, and SiLU: forward and backward against float64.</summary>
[BackendFixtures]
public class ElementwiseOpTests(BackendKind kind) : KernelFixture(kind)
{
    public static IEnumerable<TestCaseData> BinaryShapes()
    {
        yield return new TestCaseData(new[] { 9, 9 }, new[] { 9, 9 }).SetArgDisplayNames("9x9+9x9");
        yield return new TestCaseData(new[] { 2, 3, 9, 9 }, new[] { 1, 3, 1, 1 }).SetArgDisplayNames("2x3x9x9+bias");
        yield return new TestCaseData(new[] { 2, 3, 9, 9 }, new[] { 2, 3, 1, 1 }).SetArgDisplayNames("2x3x9x9+film");
        yield return new TestCaseData(new[] { 113, 64 }, new[] { 64 }).SetArgDisplayNames("113x64+row");
        yield return new TestCaseData(new[] { 4, 1, 5 }, new[] { 3, 1 }).SetArgDisplayNames("4x1x5+3x1");
        yield return new TestCaseData(new[] { 1 }, new[] { 5, 7 }).SetArgDisplayNames("scalar+5x7");
        yield return new TestCaseData(new[] { 3, 37 }, new[] { 3, 37 }).SetArgDisplayNames("3x37+3x37");
    }

    static readonly (string name, BinaryOp op, Func<double, double, double> f)[] binaryOps =
    [
        ("Add", BinaryOp.Add, (a, b) => a + b), ("Sub", BinaryOp.Sub, (a, b) => a - b), ("Mul", BinaryOp.Mul, (a, b) => a * b),
    ];

    static Tensor Run(BinaryOp op, Tensor a, Tensor b, Tensor y) => op switch
    {
        BinaryOp.Add => Ops.Add(a, b, y), BinaryOp.Sub => Ops.Sub(a, b, y), _ => Ops.Mul(a, b, y),
    };

    [TestCaseSource(nameof(BinaryShapes))]
    public void BinaryForward(int[] sa, int[] sb)
    {
        var (a, ra) = Input(sa);
        var (b, rb) = Input(sb);
        using (a) using (b)
            foreach (var (name, op, f) in binaryOps)
            {
                var expected = Ref.Binary(ra, sa, rb, sb, f, out var outShape);
                using var y = Poisoned(outShape);
                Run(op, a, b, y);
                Compare.AssertClose(Name(name + "Forward", sa, sb), y, expected, Tolerance.F32Elementwise);
            }
    }

    [TestCaseSource(nameof(BinaryShapes))]
    public void AddBackward(int[] sa, int[] sb)
    {
        var outShape = Ref.BroadcastShape(sa, sb);
        var (dy, rdy) = Input(outShape);
        using (dy)
        {
            var (da, db) = Ops.AddBackward(dy, sa, sb);
            using (da) using (db)
            {
                Compare.AssertClose(Name("AddBackward.da", sa, sb), da!, Ref.SumTo(rdy, outShape, sa), new Tolerance(1e-6, 1e-5),
                    Ref.SumTo(Ref.Map(rdy, Math.Abs), outShape, sa));
                Compare.AssertClose(Name("AddBackward.db", sa, sb), db!, Ref.SumTo(rdy, outShape, sb), new Tolerance(1e-6, 1e-5),
                    Ref.SumTo(Ref.Map(rdy, Math.Abs), outShape, sb));
            }
        }
    }

    [TestCaseSource(nameof(BinaryShapes))]
    public void MulBackward(int[] sa, int[] sb)
    {
        var outShape = Ref.BroadcastShape(sa, sb);
        var (a, ra) = Input(sa);
        var (b, rb) = Input(sb);
        var (dy, rdy) = Input(outShape);
        using (a) using (b) using (dy)
        {
            var (da, db) = Ops.MulBackward(dy, a, b);
            using (da) using (db)
            {
                var dyb = Ref.Binary(rdy, outShape, rb, sb, (g, v) => g * v, out _);
                var dya = Ref.Binary(rdy, outShape, ra, sa, (g, v) => g * v, out _);
                Compare.AssertClose(Name("MulBackward.da", sa, sb), da!, Ref.SumTo(dyb, outShape, sa), new Tolerance(1e-6, 1e-5),
                    Ref.SumTo(Ref.Map(dyb, Math.Abs), outShape, sa));
                Compare.AssertClose(Name("MulBackward.db", sa, sb), db!, Ref.SumTo(dya, outShape, sb), new Tolerance(1e-6, 1e-5),
                    Ref.SumTo(Ref.Map(dya, Math.Abs), outShape, sb));
            }
        }
    }

    public static IEnumerable<int[]> UnaryShapes() => [[9, 9], [113, 64], [2, 3, 9, 9], [1], [1031]];

    [TestCaseSource(nameof(UnaryShapes))]
    public void SiluForward(int[] shape)
    {
        var f = TestSeed.Uniform(Rng, Shape.Numel(shape), -8f, 8f);
        using var x = Upload(f, shape);
        using var y = Poisoned(shape);
        Ops.Silu(x, y);
        Compare.AssertClose(Name("SiluForward", shape), y, Ref.Map(TestSeed.ToDouble(f), Ref.Silu), Tolerance.F32Transcendental);
    }

    [TestCaseSource(nameof(UnaryShapes))]
    public void SiluBackward(int[] shape)
    {
        var f = TestSeed.Uniform(Rng, Shape.Numel(shape), -8f, 8f);
        var (dy, rdy) = Input(shape);
        using var x = Upload(f, shape);
        using var dx = Poisoned(shape);
        using (dy) Ops.SiluBackward(x, dy, dx);
        var rx = TestSeed.ToDouble(f);
        var expected = new double[rx.Length];
        for (int i = 0; i < rx.Length; i++) expected[i] = rdy[i] * Ref.SiluGrad(rx[i]);
        Compare.AssertClose(Name("SiluBackward", shape), dx, expected, Tolerance.F32Transcendental);
    }

    [Test]
    public void SiluExtremeValues()
    {
        float[] v = [-100f, -30f, -1e-30f, 0f, 1e-30f, 30f, 100f, float.MaxValue / 2];
        using var x = Upload(v, v.Length);
        using var y = Ops.Silu(x);
        using var ones = B.Full(1f, v.Length);
        using var dx = Ops.SiluBackward(x, ones);
        var rv = TestSeed.ToDouble(v);
        Compare.AssertClose("SiluForward extremes", y, Ref.Map(rv, Ref.Silu), Tolerance.F32Transcendental);
        Compare.AssertClose("SiluBackward extremes", dx, Ref.Map(rv, Ref.SiluGrad), Tolerance.F32Transcendental);
    }

    [Test]
    public void ScaleAndCopy()
    {
        var (x, rx) = Input(113, 3);
        using (x)
        {
            using var y = Poisoned(113, 3);
            Ops.Scale(x, -2.5f, y);
            Compare.AssertClose("Scale", y, Ref.Map(rx, v => -2.5 * v), Tolerance.F32Elementwise);
            using var c = Poisoned(113, 3);
            Ops.Copy(x, c);
            Compare.AssertClose("Copy", c, rx, Tolerance.F32Exact);
        }
    }
}

