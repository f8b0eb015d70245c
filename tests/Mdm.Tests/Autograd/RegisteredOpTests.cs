using Mdm.Autograd;
using Mdm.Kernels;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Autograd;

/// <summary>
/// Every registered op definition — built-in (<see cref="F"/>), the documented example, the model's own — checked
/// from the definition alone on every backend: float64 gradcheck and forward against the reference.
/// </summary>
[BackendFixtures]
public class RegisteredOpTests(BackendKind kind) : KernelFixture(kind)
{
    /// <summary>Every registered op with a reference, check shapes and check attributes.</summary>
    public static IEnumerable<string> CheckableOps() => OpDefinition.Registered.Where(o => o.Checkable).Select(o => o.Name);

    [TestCaseSource(nameof(CheckableOps))]
    public void RegisteredOpPassesFloat64Gradcheck(string name)
    {
        var result = OpDefinition.Find(name).Gradcheck(B, seed: (ulong)Rng.Next());
        Assert.That(result.Passed, Is.True, result + "\n" + TestSeed.Describe());
    }

    [TestCaseSource(nameof(CheckableOps))]
    public void RegisteredOpForwardMatchesReference(string name)
    {
        var d = OpDefinition.Find(name);
        var shapes = d.CheckShapes!;
        var inputs = shapes.Select(shape => Input(shape)).ToArray();
        var variables = inputs.Select(i => new Variable(i.t)).ToArray();
        try
        {
            using var y = d.ApplyForCheck(variables);
            var expected = d.ReferenceForCheck(inputs.Select(i => i.r).ToArray(), shapes);
            Compare.AssertClose(Name(name, shapes), y.Data, expected, new Tolerance(1e-5, 1e-5));
        }
        finally { foreach (var v in variables) v.Dispose(); }
    }
}

/// <summary>The registry itself: names are unique and every built-in family is registered through it.</summary>
public class OpRegistryTests
{
    [Test]
    public void ANameRegisteredTwiceIsRefused()
    {
        var duplicate = new OpDefinition<NoAttributes>("add", (x, _) => (Ops.Copy(x[0]), []), (_, g) => [Ops.Copy(g)]);
        var e = Assert.Throws<InvalidOperationException>(() => OpDefinition.Register(duplicate));
        Assert.That(e!.Message, Does.Contain("'add'").And.Contain("already registered"));
    }

    [Test]
    public void EveryBuiltInFamilyIsRegistered() =>
        Assert.That(OpDefinition.Registered.Select(o => o.Name), Is.SupersetOf(new[] { "add", "sum", "reshape", "gelu", "concat",
            "permute", "group_norm", "layer_norm", "conv2d", "conv1d", "matmul", "linear", "attention", "rotary", "mse", "cast_bf16" }));

    [Test]
    public void DefinitionsOutsideAutogradAreFoundWithoutBeingTouched() =>
        Assert.That(OpDefinition.Registered.Select(o => o.Name), Is.SupersetOf(new[] { "rms_norm", "std_normalize" }));

    [Test]
    public void EveryBuiltInOpHasBenchShapes() =>
        Assert.That(OpDefinition.Registered.Where(o => o.BenchShapes is null).Select(o => o.Name), Is.Empty);

    [Test]
    public void AnOpWithoutAReferenceSaysSoWhenChecked()
    {
        var e = Assert.Throws<InvalidOperationException>(() => F.CastBF16Op.Gradcheck(TestBackends.Get(BackendKind.Cpu)));
        Assert.That(e!.Message, Does.Contain("cast_bf16").And.Contain("Reference"));
    }
}
