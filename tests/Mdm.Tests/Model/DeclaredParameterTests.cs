using Mdm.Kernels;
using Mdm.Model.Nn;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Model;

/// <summary>A module built to count parameters records specs only: asking it for a tensor names the parameter.</summary>
public class DeclaredParameterTests
{
    [Test]
    public void ShapesOnlyModuleRecordsSpecsAndHoldsNoTensors()
    {
        var conv = new Conv(ParameterFactory.ShapesOnly, 3, 8, 3);
        Assert.That(conv.ParameterSpecs().Select(s => s.ToString()),
            Is.EqualTo(new[] { "weight [8, 3, 3, 3] KaimingUniform", "bias [8] BiasUniform" }));
        var e = Assert.Throws<InvalidOperationException>(() => _ = conv.Weight);
        Assert.That(e!.Message, Does.Contain("weight").And.Contain("count parameters"));
        Assert.That(new Dense(ParameterFactory.ShapesOnly, 4, 2, bias: false).Bias, Is.Null);
    }

    [Test]
    public void AllocatedModuleHoldsItsTensors()
    {
        var dense = new Dense(ParameterFactory.On(TestBackends.Get(BackendKind.Cpu)), 4, 2);
        try
        {
            Assert.That(dense.Weight.Shape, Is.EqualTo(new[] { 2, 4 }));
            Assert.That(dense.Bias!.Shape, Is.EqualTo(new[] { 2 }));
        }
        finally { dense.DisposeParameters(); }
    }
}
