namespace Mdm.Kernels.Gpu;

/// <summary>
/// Every GPU kernel, once, by name: each method marked <see cref="KernelAttribute"/> in the program's assemblies
/// (built-in families, custom ops, diffusion), plus the fields of this class (kernels whose source is another
/// engineer's to edit, with their budgets). The ILGPU backend loads exactly these at start-up, and the offline
/// PTX/SASS audit compiles exactly these, so neither can miss one.
/// </summary>
public static partial class KernelCatalog
{
    public static IReadOnlyList<KernelEntry> All => all.Value;

    // Lazy: built on first use, once the field initialisers of every partial file have run.
    static readonly Lazy<IReadOnlyList<KernelEntry>> all = new(() => KernelDiscovery.Discover(typeof(KernelCatalog)));
}
