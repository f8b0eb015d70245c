using System.Linq.Expressions;
using System.Reflection;

namespace Mdm.Kernels.Gpu;

/// <summary>One catalogued kernel: its name (for the SASS audit and error messages), the kernel method and its budget.</summary>
public sealed record KernelEntry(string Name, Delegate Kernel, KernelBudgetAttribute Budget);

/// <summary>
/// Puts a static ILGPU kernel method in <see cref="KernelCatalog"/> under <paramref name="name"/>: it is compiled when an
/// ILGPU backend starts, by the PTX compile test and by the SASS audit, and launched with <c>IlgpuBackend.Run</c>.
/// A generic kernel takes one attribute per instantiation, with its type arguments.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class KernelAttribute(string name, params Type[] typeArguments) : Attribute
{
    public string Name { get; } = name;
    public IReadOnlyList<Type> TypeArguments { get; } = typeArguments;
}

static class KernelDiscovery
{
    const BindingFlags Members = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.DeclaredOnly;

    /// <summary>Every [Kernel] method of the program's assemblies, then the catalogue class's own fields; names must be unique.</summary>
    public static IReadOnlyList<KernelEntry> Discover(Type catalogue)
    {
        var entries = new List<KernelEntry>();
        foreach (var assembly in ProgramAssemblies.Using(typeof(KernelDiscovery).Assembly))
            foreach (var type in ProgramAssemblies.TypesOf(assembly).OrderBy(t => t.FullName, StringComparer.Ordinal))
                foreach (var method in type.GetMethods(Members).OrderBy(m => m.MetadataToken))
                    foreach (var k in method.GetCustomAttributes<KernelAttribute>())
                        entries.Add(new KernelEntry(k.Name, DelegateOf(method, k), KernelCatalog.BudgetOf(method)));
        foreach (var f in catalogue.GetFields(Members).Where(f => f.IsInitOnly && typeof(Delegate).IsAssignableFrom(f.FieldType)))
            entries.Add(new KernelEntry(f.Name, (Delegate?)f.GetValue(null) ?? throw new InvalidOperationException($"KernelCatalog.{f.Name} is null"),
                KernelCatalog.BudgetOf(f)));
        var twice = entries.GroupBy(e => e.Name).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null) throw new InvalidOperationException($"KernelCatalog: two kernels are named '{twice.Key}'");
        return entries;
    }

    static Delegate DelegateOf(MethodInfo method, KernelAttribute k)
    {
        string where = $"[Kernel(\"{k.Name}\")] on {method.DeclaringType?.Name}.{method.Name}";
        if (method.IsGenericMethodDefinition != (k.TypeArguments.Count > 0))
            throw new InvalidOperationException($"{where}: a generic kernel needs its type arguments, and only a generic one takes them");
        var kernel = method.IsGenericMethodDefinition ? method.MakeGenericMethod([.. k.TypeArguments]) : method;
        if (kernel.ReturnType != typeof(void)) throw new InvalidOperationException($"{where}: a kernel returns void");
        return Delegate.CreateDelegate(Expression.GetActionType([.. kernel.GetParameters().Select(p => p.ParameterType)]), kernel);
    }
}
