using System.Reflection;

namespace Mdm.Kernels.Gpu;

/// <summary>One catalogued kernel: its name (for the SASS audit and error messages), the kernel method and its budget.</summary>
public sealed record KernelEntry(string Name, Delegate Kernel, KernelBudgetAttribute Budget);

/// <summary>
/// Marks a static class whose static <see cref="Delegate"/> fields are kernels (<c>static readonly Delegate Forward =
/// ForwardKernel;</c>, optionally with a <see cref="KernelBudgetAttribute"/>). Every such class in the program's
/// assemblies joins <see cref="KernelCatalog"/>: its kernels (named Class.Field) are compiled when an ILGPU backend starts, by the PTX
/// compile test and by the SASS audit, exactly like the built-in ones.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class KernelCatalogPartAttribute : Attribute;

static class KernelCatalogParts
{
    const BindingFlags Fields = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.DeclaredOnly;

    /// <summary>The built-in fields under their names, then every part's fields as Class.Field; duplicate names fail.</summary>
    public static IReadOnlyList<KernelEntry> Discover(Type builtIn)
    {
        var entries = new List<KernelEntry>(FieldsOf(builtIn, prefix: ""));
        foreach (var assembly in ProgramAssemblies())
            foreach (var type in TypesOf(assembly).Where(t => t.GetCustomAttribute<KernelCatalogPartAttribute>() is not null)
                         .OrderBy(t => t.FullName, StringComparer.Ordinal))
                entries.AddRange(FieldsOf(type, prefix: NestedName(type) + "."));
        var twice = entries.GroupBy(e => e.Name).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null) throw new InvalidOperationException($"KernelCatalog: two kernels are named '{twice.Key}'");
        return entries;
    }

    /// <summary>The class name with its enclosing classes (RmsNorm.Kernels), without the namespace.</summary>
    static string NestedName(Type type) => type.DeclaringType is { } outer ? NestedName(outer) + "." + type.Name : type.Name;

    static IEnumerable<KernelEntry> FieldsOf(Type type, string prefix) =>
        type.GetFields(Fields).Where(f => f.IsInitOnly && typeof(Delegate).IsAssignableFrom(f.FieldType))
            .Select(f => new KernelEntry(prefix + f.Name,
                (Delegate?)f.GetValue(null) ?? throw new InvalidOperationException($"KernelCatalog: {type.Name}.{f.Name} is null"),
                KernelCatalog.BudgetOf(f)));

    /// <summary>The entry assembly and every assembly it reaches that uses Mdm.Kernels (loaded now if need be), plus any
    /// already loaded that use it, in a stable order.</summary>
    static IEnumerable<Assembly> ProgramAssemblies()
    {
        var self = typeof(KernelCatalogParts).Assembly.GetName().Name;
        bool UsesKernels(Assembly a) => a.GetReferencedAssemblies().Any(r => r.Name == self);
        var found = new Dictionary<string, Assembly>();
        var pending = new Stack<Assembly>();
        if (Assembly.GetEntryAssembly() is { } entry) pending.Push(entry);
        foreach (var a in AppDomain.CurrentDomain.GetAssemblies().Where(a => !a.IsDynamic && UsesKernels(a))) pending.Push(a);
        while (pending.Count > 0)
        {
            var a = pending.Pop();
            if (!found.TryAdd(a.FullName!, a)) continue;
            foreach (var name in a.GetReferencedAssemblies())
            {
                Assembly referenced;
                try { referenced = Assembly.Load(name); }
                catch (IOException) { continue; }   // an optional reference not deployed with the program
                if (UsesKernels(referenced)) pending.Push(referenced);
            }
        }
        return found.Values.Where(a => a.GetName().Name != self).OrderBy(a => a.FullName, StringComparer.Ordinal);
    }

    static Type[] TypesOf(Assembly assembly)
    {
        try { return assembly.GetTypes(); }
        catch (ReflectionTypeLoadException e) { return e.Types.Where(t => t is not null).ToArray()!; }
    }
}
