using Mdm.Autograd;
using Mdm.Autograd.Examples;
using Mdm.Kernels;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Autograd;

/// <summary>The docs/custom-ops.md example (fused RMSNorm) exactly as documented, on every backend.</summary>
[BackendFixtures]
public class CustomOpTests(BackendKind kind) : KernelFixture(kind)
{
    /// <summary>Every registered op with a reference and check shapes: its checks come from the definition alone.</summary>
    public static IEnumerable<string> RegisteredOps()
    {
        _ = RmsNorm.Op;   // the documented example registers itself on first use
        return CustomOp.Registered.Where(o => o.Definition is { Reference: not null, CheckShapes: not null })
            .Select(o => o.Name).OrderBy(n => n, StringComparer.Ordinal);
    }

    [TestCaseSource(nameof(RegisteredOps))]
    public void RegisteredOpPassesFloat64Gradcheck(string name)
    {
        var result = CustomOp.Registered.Single(o => o.Name == name).Gradcheck(B, seed: (ulong)Rng.Next());
        Assert.That(result.Passed, Is.True, result + "\n" + TestSeed.Describe());
    }

    [TestCaseSource(nameof(RegisteredOps))]
    public void RegisteredOpForwardMatchesReference(string name)
    {
        var d = CustomOp.Registered.Single(o => o.Name == name).Definition;
        var inputs = d.CheckShapes!.Select(shape => Input(shape)).ToArray();
        var variables = inputs.Select(i => new Variable(i.t)).ToArray();
        try
        {
            using var y = CustomOp.Registered.Single(o => o.Name == name).Apply(d.Attributes, variables);
            var expected = d.Reference!(inputs.Select(i => i.r).ToArray(), d.CheckShapes!, d.Attributes);
            Compare.AssertClose($"{name} {string.Join(" ", d.CheckShapes!.Select(s => Shape.Format(s)))} on {Backends.KindName(Kind)}",
                y.Data, expected, new Tolerance(1e-5, 1e-5));
        }
        finally { foreach (var v in variables) v.Dispose(); }
    }

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
            var expected = RmsNorm.Op.Definition.Reference!([rx, rg], [[rows, d], [d]], new RmsNorm.Attr(1e-6f));
            Compare.AssertClose($"rms_norm {rows}x{d} on {Backends.KindName(Kind)}", y.Data, expected, new Tolerance(1e-5, 1e-5));
        }
        finally { vx.Dispose(); vg.Dispose(); }
    }

    [Test]
    public void RegistrationIsListed() =>
        Assert.That(CustomOp.Registered.Select(o => o.Name), Does.Contain(RmsNorm.Op.Name));

    [Test]
    public void BadGainShapeNamesTheOp()
    {
        using var x = new Variable(B.Zeros(3, 4));
        using var g = new Variable(B.Zeros(5));
        var e = Assert.Throws<ArgumentException>(() => RmsNorm.Apply(x, g));
        Assert.That(e!.Message, Does.Contain("rms_norm").And.Contain("[5]"));
    }
}

