using System.Text.RegularExpressions;

namespace Mdm.Kernels.Gpu.TensorCore;

/// <summary>
/// wgmma exists only on <c>.target sm_90a</c>, and ILGPU 1.5.3 always writes <c>.target sm_80</c> (its capability
/// context caps the target there). Kernels flagged <c>TargetSm90a</c> in their budget get their PTX rewritten here
/// before the driver (or, offline, ptxas) sees it: the target line, and the dynamic shared buffer's alignment raised to
/// 1024 bytes, where a swizzled descriptor's pattern starts. Such PTX loads only on compute capability 9.0.
/// </summary>
public static class Sm90aPtx
{
    static readonly Regex Target = new(@"^\.target\s+sm_\w+", RegexOptions.Multiline);
    static readonly Regex DynamicShared = new(@"\.extern \.shared \.align \d+ \.b8 __dyn_shared_alloca\[\]");

    public static string Patch(string ptx)
    {
        if (!Target.IsMatch(ptx)) throw new InvalidOperationException("sm_90a patch: the PTX has no .target line");
        ptx = Target.Replace(ptx, ".target sm_90a", 1);
        return DynamicShared.Replace(ptx, ".extern .shared .align 1024 .b8 __dyn_shared_alloca[]", 1);
    }
}
