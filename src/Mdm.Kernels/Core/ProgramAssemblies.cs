using System.Reflection;

namespace Mdm.Kernels;

/// <summary>
/// The assemblies of the running program that build on a library: the entry assembly and every assembly it reaches
/// that references the library (loaded now if need be), plus any already loaded that do. Reflection-based registries
/// (the kernel catalogue, the op definitions) scan these, so a new op or kernel needs no list to be added to.
/// </summary>
public static class ProgramAssemblies
{
    /// <summary>The library first, then the others in a stable order.</summary>
    public static IReadOnlyList<Assembly> Using(Assembly library)
    {
        string libraryName = library.GetName().Name!;
        bool Uses(Assembly a) => a.GetReferencedAssemblies().Any(r => r.Name == libraryName);
        var found = new Dictionary<string, Assembly>();
        var pending = new Stack<Assembly>();
        if (Assembly.GetEntryAssembly() is { } entry) pending.Push(entry);
        foreach (var a in AppDomain.CurrentDomain.GetAssemblies().Where(a => !a.IsDynamic && Uses(a))) pending.Push(a);
        while (pending.Count > 0)
        {
            var a = pending.Pop();
            if (!found.TryAdd(a.FullName!, a)) continue;
            foreach (var name in a.GetReferencedAssemblies())
            {
                Assembly referenced;
                try { referenced = Assembly.Load(name); }
                catch (IOException) { continue; }   // an optional reference not deployed with the program
                if (Uses(referenced)) pending.Push(referenced);
            }
        }
        found.Remove(library.FullName!);
        return found.Values.OrderBy(a => a.FullName, StringComparer.Ordinal).Prepend(library).ToList();
    }

    /// <summary>The types of an assembly that could be loaded.</summary>
    public static Type[] TypesOf(Assembly assembly)
    {
        try { return assembly.GetTypes(); }
        catch (ReflectionTypeLoadException e) { return e.Types.OfType<Type>().ToArray(); }
    }
}
