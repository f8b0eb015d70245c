using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Mdm.Kernels.Gpu;

/// <summary>
/// Generates the PTX of every catalogued kernel without a GPU (ILGPU's PTXBackend needs no driver), for the offline
/// checks: the test suite proves every kernel compiles for sm_90, and scripts/sass-audit assembles the PTX with ptxas.
/// </summary>
public static class PtxCompiler
{
    public sealed record Result(string Name, string EntryName, string Ptx);

    /// <summary>The PTX of one explicitly grouped kernel (a lab kernel, say), optionally with its depots promoted.</summary>
    public static string Compile(Delegate kernel, KernelSpecialization specialization, bool promoteDepots)
    {
        var arch = CudaArchitecture.SM_90;
        using var context = Context.Create(b => b.CPU().EnableAlgorithms().Optimize(OptimizationLevel.O1));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(arch), arch, CudaInstructionSet.ISA_84, null!);
        var compiled = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel.Method), specialization);
        return promoteDepots ? PtxLocalPromotion.Promote(compiled.PTXAssembly, out _) : compiled.PTXAssembly;
    }

    public static IReadOnlyList<Result> CompileAll(CudaArchitecture? architecture = null, CudaInstructionSet? isa = null)
    {
        var arch = architecture ?? CudaArchitecture.SM_90;
        var set = isa ?? CudaInstructionSet.ISA_84;
        using var context = Context.Create(b => b.CPU().EnableAlgorithms().Optimize(OptimizationLevel.O1));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(arch), arch, set, null!);
        var results = new List<Result>();
        foreach (var kernel in KernelCatalog.All)
        {
            var entry = EntryPointDescription.FromExplicitlyGroupedKernel(kernel.Kernel.Method);
            var compiled = (PTXCompiledKernel)backend.Compile(entry, kernel.Budget.Specialization);
            var ptx = kernel.Budget.PromoteDepots ? PtxLocalPromotion.Promote(compiled.PTXAssembly, out _) : compiled.PTXAssembly;
            if (kernel.Budget.TargetSm90a) ptx = TensorCore.Sm90aPtx.Patch(ptx);
            results.Add(new Result(kernel.Name, compiled.Name, ptx));
        }
        return results;
    }
}
