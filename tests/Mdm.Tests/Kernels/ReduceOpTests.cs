using Mdm.Kernels;
using Mdm.Tests.Harness;
using Mdm.Kernels.Reference;

namespace Mdm.Tests.Kernels;

/// <summary>Sum over axes (contiguous or not, keepdims or not) and its backward, against float64.</summary>
[BackendFixtures]
public class ReduceOpTests(BackendKind kind) : KernelFixture(kind)
{
    public static IEnumerable<TestCaseData> SumCases()
    {
        yield return new TestCaseData(new[] { 9, 9 }, Array.Empty<int>(), false).SetArgDisplayNames("9x9 all");
        yield return new TestCaseData(new[] { 113, 64 }, new[] { 1 }, false).SetArgDisplayNames("113x64 axis1");
        yield return new TestCaseData(new[] { 113, 64 }, new[] { 0 }, true).SetArgDisplayNames("113x64 axis0 keep");
        yield return new TestCaseData(new[] { 2, 3, 9, 9 }, new[] { 0, 2, 3 }, true).SetArgDisplayNames("2x3x9x9 NHW keep");
        yield return new TestCaseData(new[] { 2, 3, 9, 9 }, new[] { 1 }, false).SetArgDisplayNames("2x3x9x9 C");
        yield return new TestCaseData(new[] { 3, 4, 5 }, new[] { 0, -2 }, false).SetArgDisplayNames("3x4x5 leading");
        yield return new TestCaseData(new[] { 5, 1000 }, new[] { -1 }, false).SetArgDisplayNames("5x1000 rows");
        yield return new TestCaseData(new[] { 4097 }, Array.Empty<int>(), false).SetArgDisplayNames("4097 all");
    }

    [TestCaseSource(nameof(SumCases))]
    public void SumForward(int[] shape, int[] axes, bool keep)
    {
        var (x, rx) = Input(shape);
        using (x)
        {
            var expected = Ref.Sum(rx, shape, axes, out var keepShape, out var absSum);
            var outShape = keep ? keepShape : ReducedShape(shape, axes);
            using var y = Poisoned(outShape);
            Ops.Sum(x, axes, keep, y);
            // Summation error grows with the count: allow a few float eps per sqrt(n) of the sum of magnitudes.
            long n = x.Numel / Math.Max(y.Numel, 1);
            var tol = new Tolerance(1e-6, 4 * 6e-8 * Math.Sqrt(n) + 1e-6);
            Compare.AssertClose(Name("SumForward", shape) + $" axes [{string.Join(",", axes)}]", y, expected, tol, absSum);
        }
    }

    [TestCaseSource(nameof(SumCases))]
    public void SumBackward(int[] shape, int[] axes, bool keep)
    {
        Ref.Sum(new double[Ref.Numel(shape)], shape, axes, out var keepShape, out _);
        var outShape = keep ? keepShape : ReducedShape(shape, axes);
        var (dy, rdy) = Input(outShape);
        using (dy)
        {
            using var dx = Poisoned(shape);
            Ops.SumBackward(dy, shape, axes, keep, dx);
            var expected = new double[Ref.Numel(shape)];
            for (long i = 0; i < expected.Length; i++) expected[i] = rdy[Ref.BroadcastIndex(Ref.Unflatten(i, shape), keepShape)];
            Compare.AssertClose(Name("SumBackward", shape), dx, expected, Tolerance.F32Exact);
        }
    }

    [Test]
    public void MeanMatchesSumOverCount()
    {
        var (x, rx) = Input(7, 11);
        using (x)
        {
            using var m = Ops.Mean(x, [1]);
            var expected = Ref.Sum(rx, [7, 11], [1], out _, out var abs).Select(v => v / 11).ToArray();
            Compare.AssertClose("Mean 7x11 axis1", m, expected, new Tolerance(1e-6, 1e-5), abs.Select(v => v / 11).ToArray());
        }
    }

    static int[] ReducedShape(int[] shape, int[] axes)
    {
        if (axes.Length == 0) return [];
        var set = axes.Select(a => a < 0 ? a + shape.Length : a).ToHashSet();
        return shape.Where((_, i) => !set.Contains(i)).ToArray();
    }
}

