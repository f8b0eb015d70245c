using System.Reflection;

namespace Mdm.Kernels.Gpu;

/// <summary>
/// What a kernel's SASS (ptxas 12.4, sm_90) may use; checked offline by scripts/sass-audit.py. Put it on the kernel's
/// catalogue field; kernels without one get the defaults (no spills, no stack, ≤ 128 registers).
/// </summary>
[AttributeUsage(AttributeTargets.Field)]
public sealed class KernelBudgetAttribute : Attribute
{
    public int MaxRegisters { get; init; } = 128;
    public int MaxStackBytes { get; init; }
    public int MaxSpillBytes { get; init; }
    /// <summary>Tensor-core kernels: SASS must contain HMMA.</summary>
    public bool RequireHmma { get; init; }
    /// <summary>Kernels that load fragments with ldmatrix: SASS must contain LDSM.</summary>
    public bool RequireLdsm { get; init; }
    /// <summary>The kernel's PTX goes through <see cref="PtxLocalPromotion"/> before it is loaded (and audited).</summary>
    public bool PromoteDepots { get; init; }
    /// <summary>Launch bounds (.maxntid / .minnctapersm) the kernel is compiled with; 0 = none. Both together make
    /// ptxas cap registers so that many groups fit on one multiprocessor.</summary>
    public int MaxThreadsPerGroup { get; init; }
    public int MinGroupsPerMultiprocessor { get; init; }

    /// <summary>The ILGPU specialization these bounds ask for.</summary>
    public ILGPU.Runtime.KernelSpecialization Specialization =>
        MaxThreadsPerGroup > 0 ? new(MaxThreadsPerGroup, MinGroupsPerMultiprocessor > 0 ? MinGroupsPerMultiprocessor : null) : ILGPU.Runtime.KernelSpecialization.Empty;
}

public static partial class KernelCatalog
{
    static readonly KernelBudgetAttribute defaultBudget = new();

    /// <summary>The budget declared on a catalogued kernel (or the default one).</summary>
    public static KernelBudgetAttribute Budget(string name) => All.FirstOrDefault(e => e.Name == name)?.Budget ?? defaultBudget;

    internal static KernelBudgetAttribute BudgetOf(FieldInfo field) => field.GetCustomAttribute<KernelBudgetAttribute>() ?? defaultBudget;
}
