using Mdm.Kernels;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;
using NUnit.Framework.Internal.Builders;

namespace Mdm.Tests.Harness;

/// <summary>
/// Runs a fixture class once per backend: one fixture per kind, named <c>&lt;Class&gt;_&lt;Backend&gt;</c> (Cpu,
/// IlgpuCpu, Cuda), its constructor given the <see cref="BackendKind"/> when it takes one. Cuda fixtures are in the
/// "Gpu" category and, without a usable GPU, built as one skipped entry with the CUDA probe's reason.
/// A class for one backend only (extra shapes, tensor-core routes) is named for that backend
/// (<c>MatmulTensorCoreTests_Cuda</c>) and lists just that kind; it may derive from a shared fixture for its helpers,
/// and then runs only its own tests, not the ones it inherits from that fixture.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class BackendFixturesAttribute(params BackendKind[] kinds) : NUnitAttribute, IFixtureBuilder2
{
    /// <summary>Every backend: the CPU backend, the ILGPU CPU accelerator and CUDA.</summary>
    public BackendFixturesAttribute() : this(BackendKind.Cpu, BackendKind.IlgpuCpu, BackendKind.Cuda) { }

    public IReadOnlyList<BackendKind> Kinds { get; } = kinds;

    public IEnumerable<TestSuite> BuildFrom(ITypeInfo typeInfo) => BuildFrom(typeInfo, new EveryMethod());

    public IEnumerable<TestSuite> BuildFrom(ITypeInfo typeInfo, IPreFilter filter)
    {
        var type = typeInfo.Type;
        bool takesKind = type.GetConstructors().Any(c => c.GetParameters() is [{ ParameterType: var p }] && p == typeof(BackendKind));
        foreach (var kind in Kinds)
        {
            var data = new TestFixtureData(takesKind ? [kind] : []);
            var fixture = new NUnitTestFixtureBuilder().BuildFrom(typeInfo, filter, data);
            string name = type.Name.EndsWith("_" + kind, StringComparison.Ordinal) ? type.Name : type.Name + "_" + kind;
            Rename(fixture, fixture.FullName, (type.Namespace is { } ns ? ns + "." : "") + name);
            fixture.Name = name;
            DropInheritedFixtureTests(fixture, type);
            if (kind == BackendKind.Cuda) MarkGpu(fixture);
            yield return fixture;
        }
    }

    /// <summary>Full names carry the backend suffix (so <c>FullyQualifiedName~_IlgpuCpu</c> selects one backend).</summary>
    static void Rename(ITest test, string from, string to)
    {
        if (test is Test t && t.FullName.StartsWith(from, StringComparison.Ordinal)) t.FullName = to + t.FullName[from.Length..];
        foreach (var child in test.Tests) Rename(child, from, to);
    }

    /// <summary>Tests declared by a concrete ancestor that is itself a backend fixture already run there.</summary>
    static void DropInheritedFixtureTests(TestSuite fixture, Type type)
    {
        var inherited = fixture.Tests.Where(t => t.Method?.MethodInfo.DeclaringType is { } d && d != type && !d.IsAbstract
            && d.GetCustomAttributes(typeof(BackendFixturesAttribute), false).Length > 0).ToList();
        foreach (var t in inherited) fixture.Tests.Remove(t);
    }

    static void MarkGpu(TestSuite fixture)
    {
        fixture.Properties.Add(PropertyNames.Category, "Gpu");
        var (ok, reason) = Backends.CudaStatus();
        if (!ok) SkipAsOneEntry(fixture, reason);
    }

    /// <summary>Without a GPU: the fixture keeps one test, renamed "Name (N Gpu tests)" and skipped with the reason.
    /// MDM_LIST_EVERY_GPU_TEST=1 keeps every test (skipped as a whole fixture), for scripts/test-matrix.py.</summary>
    static void SkipAsOneEntry(TestSuite fixture, string reason)
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

    sealed class EveryMethod : IPreFilter
    {
        public bool IsMatch(Type type) => true;
        public bool IsMatch(Type type, System.Reflection.MethodInfo method) => true;
    }
}
