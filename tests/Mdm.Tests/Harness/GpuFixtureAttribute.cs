using Mdm.Kernels;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;

namespace Mdm.Tests.Harness;

/// <summary>
/// Marks a CUDA fixture: puts it in the "Gpu" category and, when no usable GPU is present, marks it skipped at
/// discovery with the probe's reason (so every skipped test shows why, once, without starting the fixture).
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
        test.RunState = RunState.Ignored;
        test.Properties.Set(PropertyNames.SkipReason, $"Gpu test skipped: {reason}");
    }
}
