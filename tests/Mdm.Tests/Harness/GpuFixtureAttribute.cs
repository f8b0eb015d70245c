using Mdm.Kernels;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;

namespace Mdm.Tests.Harness;

/// <summary>
/// Marks a CUDA fixture: puts it in the "Gpu" category and, when no usable GPU is present, makes it explicit at
/// discovery, so a plain `dotnet test` leaves its tests out instead of printing a skip block for each of them;
/// `--filter TestCategory=Gpu` selects them and reports each as skipped with the probe's reason.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class GpuFixtureAttribute : CategoryAttribute, IApplyToTest
{
    public GpuFixtureAttribute() : base("Gpu") { }

    void IApplyToTest.ApplyToTest(Test test)
    {
        ApplyToTest(test);   // the category
        var (ok, reason) = Backends.CudaStatus();
        if (ok || test.RunState == RunState.NotRunnable) return;
        test.RunState = RunState.Explicit;
        test.Properties.Set(PropertyNames.SkipReason, $"Gpu test skipped: {reason}");
    }
}
