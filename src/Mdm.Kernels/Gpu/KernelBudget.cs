using System.Reflection;

namespace Mdm.Kernels.Gpu;

/// <summary>
/// What a kernel's SASS (ptxas 12.4, sm_90) may use; checked offline by scripts/sass-audit.py. Put it on the kernel's
/// [Kernel] method or KernelCatalog field; kernels without one get the defaults (no spills, no stack, ≤ 128 registers).
/// </summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Method)]
public sealed class KernelBudgetAttribute : Attribute
{
    public int MaxRegisters { get; init; } = 128;
    public int MaxStackBytes { get; init; }
    public int MaxSpillBytes { get; init; }
    /// <summary>Tensor-core kernels: SASS must contain HMMA.</summary>
    public bool RequireHmma { get; init; }
    /// <summary>Kernels that load fragments with ldmatrix: SASS must contain LDSM.</summary>
    public bool RequireLdsm { get; init; }
    /// <summary>Warpgroup-MMA kernels: SASS (for sm_90a) must contain HGMMA.</summary>
    public bool RequireHgmma { get; init; }
    /// <summary>The kernel uses sm_90a-only instructions (wgmma): its PTX is patched to <c>.target sm_90a</c>
    /// (<see cref="TensorCore.Sm90aPtx"/>), it loads only on compute capability 9.0 and is audited for sm_90a.</summary>
    public bool TargetSm90a { get; init; }
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

    internal static KernelBudgetAttribute BudgetOf(MemberInfo member) => member.GetCustomAttribute<KernelBudgetAttribute>() ?? defaultBudget;
}
