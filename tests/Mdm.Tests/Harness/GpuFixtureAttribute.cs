using Mdm.Kernels;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;
using NUnit.Framework.Internal.Builders;

namespace Mdm.Tests.Harness;

/// <summary>
/// Marks a CUDA fixture: puts it in the "Gpu" category. Without a usable GPU the fixture is built as a single
/// skipped entry ("Name (N Gpu tests)") carrying the probe's reason, so `dotnet test` shows one block per fixture
/// instead of one per test.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class GpuFixtureAttribute : CategoryAttribute, IApplyToTest, IFixtureBuilder2
{
    public GpuFixtureAttribute() : base("Gpu") { }

    void IApplyToTest.ApplyToTest(Test test) => ApplyToTest(test);   // the category

    IEnumerable<TestSuite> IFixtureBuilder.BuildFrom(ITypeInfo typeInfo) => Build(new NUnitTestFixtureBuilder().BuildFrom(typeInfo, AllMethods.Instance));

    IEnumerable<TestSuite> IFixtureBuilder2.BuildFrom(ITypeInfo typeInfo, IPreFilter filter) => Build(new NUnitTestFixtureBuilder().BuildFrom(typeInfo, filter));

    sealed class AllMethods : IPreFilter
    {
        public static readonly AllMethods Instance = new();
        public bool IsMatch(Type type) => true;
        public bool IsMatch(Type type, System.Reflection.MethodInfo method) => true;
    }

    static IEnumerable<TestSuite> Build(TestSuite fixture)
    {
        var (ok, reason) = Backends.CudaStatus();
        if (!ok) SkipAsOneEntry(fixture, reason);
        return [fixture];
    }

    /// <summary>Without a GPU: the fixture keeps one test, renamed "Name (N Gpu tests)" and skipped with the reason.
    /// MDM_LIST_EVERY_GPU_TEST=1 keeps every test (skipped as a whole fixture), for scripts/test-matrix.py.</summary>
    public static void SkipAsOneEntry(TestSuite fixture, string reason)
    {
        if (fixture.RunState == RunState.NotRunnable || fixture.Tests.Count == 0) return;
        if (Environment.GetEnvironmentVariable("MDM_LIST_EVERY_GPU_TEST") == "1")
        {
            fixture.RunState = RunState.Ignored;
            fixture.Properties.Set(PropertyNames.SkipReason, $"Gpu tests skipped: {reason}");
            return;
        }
        int count = fixture.TestCaseCount;
        while (fixture.Tests.Count > 1) fixture.Tests.RemoveAt(fixture.Tests.Count - 1);
        var entry = (Test)fixture.Tests[0];
        if (entry is TestSuite parameterized) { entry = (Test)parameterized.Tests[0]; fixture.Tests[0] = entry; entry.Parent = fixture; }
        entry.Name = $"{fixture.Name} ({count} Gpu tests)";
        entry.RunState = RunState.Ignored;
        entry.Properties.Set(PropertyNames.SkipReason, $"Gpu tests skipped: {reason}");
    }
}
