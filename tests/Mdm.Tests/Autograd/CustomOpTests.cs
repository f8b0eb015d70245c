using Mdm.Autograd;
using Mdm.Autograd.Examples;
using Mdm.Kernels;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Autograd;

/// <summary>The docs/custom-ops.md example (fused RMSNorm) beyond its definition's own checks (<see cref="RegisteredOpTests"/>): more shapes, errors.</summary>
[BackendFixtures]
public class CustomOpTests(BackendKind kind) : KernelFixture(kind)
{
    [TestCase(9, 9)]
    [TestCase(113, 24)]
    [TestCase(1, 1)]
    public void RmsNormForwardMatchesReference(int rows, int d)
    {
        var (x, rx) = Input(rows, d);
        var (g, rg) = Input(d);
        var vx = new Variable(x); var vg = new Variable(g);
        try
        {
            using var y = RmsNorm.Apply(vx, vg, 1e-6f);
            var expected = RmsNorm.Op.Reference!([rx, rg], [[rows, d], [d]], new RmsNorm.Attr(1e-6f));
            Compare.AssertClose($"rms_norm {rows}x{d} on {Backends.KindName(Kind)}", y.Data, expected, new Tolerance(1e-5, 1e-5));
        }
        finally { vx.Dispose(); vg.Dispose(); }
    }

    [Test]
    public void RegistrationIsListed() =>
        Assert.That(OpDefinition.Registered.Select(o => o.Name), Does.Contain(RmsNorm.Op.Name));

    [Test]
    public void BadGainShapeNamesTheOp()
    {
        using var x = new Variable(B.Zeros(3, 4));
        using var g = new Variable(B.Zeros(5));
        var e = Assert.Throws<ArgumentException>(() => RmsNorm.Apply(x, g));
        Assert.That(e!.Message, Does.Contain("rms_norm").And.Contain("[5]"));
    }
}

