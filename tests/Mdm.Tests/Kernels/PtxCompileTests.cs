using Mdm.Kernels;
using Mdm.Kernels.Gpu;
using Mdm.Tests.Harness;

namespace Mdm.Tests.Kernels;

/// <summary>Without a GPU: every catalogued kernel compiles to PTX for sm_90, and the backends load exactly the catalogue.</summary>
public class PtxCompileTests
{
    [Test]
    public void EveryKernelCompilesToPtxForSm90()
    {
        var results = PtxCompiler.CompileAll();
        Assert.That(results, Has.Count.EqualTo(KernelCatalog.All.Count));
        foreach (var r in results)
        {
            Assert.That(r.Ptx, Does.Contain(".visible .entry " + r.EntryName), $"{r.Name}: no entry point in its PTX");
            Assert.That(r.Ptx, Does.Not.Contain(".extern .func"), $"{r.Name}: calls an unresolved extern function (ptxas would fail)");
            TestContext.Out.WriteLine($"{r.Name}: {r.Ptx.Length} chars of PTX");
        }
    }

    [Test]
    public void IlgpuBackendLoadsTheWholeCatalogue()
    {
        var backend = (IlgpuBackend)TestBackends.Get(BackendKind.IlgpuCpu);
        Assert.That(backend.KernelNames, Is.EquivalentTo(KernelCatalog.All.Select(k => k.Name)));
    }

    [Test]
    public void CustomOpAndDiffusionKernelsJoinTheCatalogue()
    {
        var names = KernelCatalog.All.Select(k => k.Name).ToList();
        Assert.That(names, Is.SupersetOf(new[] { "RmsNorm.Kernels.Forward", "RmsNorm.Kernels.BackwardInput", "RmsNorm.Kernels.BackwardGain",
            "Thresholding.Kernels.Clamp", "Thresholding.Kernels.Dynamic" }));
        Assert.That(names, Is.Unique);
    }
}
