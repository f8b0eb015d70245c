using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Kernels.Reference;
using Mdm.Tests.Harness;
using Gradcheck = Mdm.Autograd.Gradcheck;

namespace Mdm.Tests.Kernels;

/// <summary>Dropout (Ops.Dropout, F.Dropout): forward and backward against float64 with the Philox mask rebuilt on the host.</summary>
[BackendFixtures]
public class DropoutOpTests(BackendKind kind) : KernelFixture(kind)
{
    public static IEnumerable<TestCaseData> Cases()
    {
        yield return new TestCaseData(new[] { 1 }, 0.5f).SetArgDisplayNames("1,p0.5");
        yield return new TestCaseData(new[] { 7 }, 0.1f).SetArgDisplayNames("7,p0.1");
        yield return new TestCaseData(new[] { 3, 5, 9 }, 0.5f).SetArgDisplayNames("3x5x9,p0.5");
        yield return new TestCaseData(new[] { 2, 3, 11, 13 }, 0.9f).SetArgDisplayNames("2x3x11x13,p0.9");
    }

    /// <summary>A fresh key from the test's seed, with an offset that crosses the 32-bit block-counter boundary.</summary>
    DropoutKey FreshKey() => new((ulong)Rng.NextInt64(), (ulong)Rng.NextInt64(), ((ulong)Rng.Next(0, 8) << 32) + (ulong)Rng.Next());

    [TestCaseSource(nameof(Cases))]
    public void ForwardMatchesReference(int[] shape, float p)
    {
        var key = FreshKey();
        var (x, rx) = Input(shape);
        using (x)
        using (var y = Poisoned(shape))
        {
            Ops.Dropout(x, p, key, y);
            Compare.AssertClose(Name($"Dropout p={p}", shape), y, Ref.Dropout(rx, p, key), Tolerance.F32Elementwise);
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void BackwardMatchesReference(int[] shape, float p)
    {
        var key = FreshKey();
        var (x, _) = Input(shape);
        var (dy, rdy) = Input(shape);
        using var xv = new Variable(x, requiresGrad: true);
        using (dy)
        using (var graph = new Graph())
        {
            var y = F.Dropout(xv, p, key);
            F.Sum(F.Mul(y, new Variable(dy))).Backward();
            Compare.AssertClose(Name($"Dropout backward p={p}", shape), xv.Grad!, Ref.Dropout(rdy, p, key), Tolerance.F32Elementwise);
        }
    }

    [Test]
    public void KeepsAboutOneMinusPAndEachKeyDrawsItsOwnMask()
    {
        const int n = 4099;
        const float p = 0.3f;
        using var ones = B.Full(1f, n);
        using var a = Ops.Dropout(ones, p, FreshKey());
        using var b = Ops.Dropout(ones, p, FreshKey());
        float[] ma = a.ToArray(), mb = b.ToArray();
        double kept = ma.Count(v => v != 0) / (double)n, sigma = Math.Sqrt(p * (1 - p) / n);
        Assert.That(Math.Abs(kept - (1 - p)), Is.LessThan(5 * sigma), $"fraction kept {kept} on {Kind}{TestSeed.Describe()}");
        Assert.That(ma.Where(v => v != 0), Is.All.EqualTo(1f / (1f - p)).Within(1e-6f));
        int differing = ma.Zip(mb).Count(t => (t.First == 0) != (t.Second == 0));
        Assert.That(differing, Is.GreaterThan(n / 5), $"two keys gave nearly the same mask{TestSeed.Describe()}");
    }

    [Test]
    public void IdentityWhenNotTrainingOrPZero()
    {
        var (x, _) = Input(3, 4);
        using var xv = new Variable(x, requiresGrad: true);
        Assert.That(F.Dropout(xv, 0f, FreshKey()), Is.SameAs(xv));
        Assert.That(F.Dropout(xv, 0.5f, FreshKey(), training: false), Is.SameAs(xv));
    }

    [Test]
    public void FloatGradcheckAgainstReference()
    {
        var key = FreshKey();
        var x = new Variable(B.FromArray(TestSeed.Uniform(Rng, 15), 3, 5), requiresGrad: true);
        try
        {
            var r = Gradcheck.CheckAgainstReference(v => F.Dropout(v[0], 0.4f, key), a => Ref.Dropout(a[0], 0.4f, key), [x]);
            Assert.That(r.Passed, r + "\n" + TestSeed.Describe());
        }
        finally { x.Dispose(); }
    }

    [TestCase(1f)]
    [TestCase(-0.1f)]
    [TestCase(float.NaN)]
    public void RefusesPOutsideZeroToOne(float p)
    {
        using var x = B.Full(1f, 4);
        var e = Assert.Throws<ArgumentException>(() => Ops.Dropout(x, p, default));
        Assert.That(e!.Message, Does.Contain($"Dropout: p must be in [0, 1), got {p}"));
    }
}
