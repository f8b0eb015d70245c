using ILGPU;
using ILGPU.Runtime;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

// Kernel table: every catalogued kernel gets its launcher once at start-up (LoadKernels), keyed by the kernel method;
// Run(kernel, ...) finds it there.
public sealed partial class IlgpuBackend
{
    /// <summary>Names of all kernels this backend loaded, for `info` and the SASS audit.</summary>
    public IReadOnlyList<string> KernelNames => kernelNames;
    readonly List<string> kernelNames = new();
    readonly Dictionary<System.Reflection.MethodInfo, Delegate> launchers = new();

    void LoadKernels()
    {
        T L<T>(string name, Func<T> f) where T : Delegate { kernelNames.Add(name); return Load(name, f); }
        foreach (var entry in KernelCatalog.All)
        {
            catalogueNames[entry.Kernel.Method] = entry.Name;
            if (entry.Budget.PromoteDepots) continue;   // rewritten PTX, loaded by their family (LoadMatmulKernels)
            launchers[entry.Kernel.Method] = L(entry.Name, () => MakeLauncher(entry.Kernel));
        }
        // Families whose kernels need more than a plain load (IlgpuKernels.<Family>.cs) load them with L(...).
        var loader = new Loader((name, f) => L(name, f));
        LoadMatmulKernels(loader);
        LoadTensorCoreKernels(loader);
        LoadWgmmaKernels(loader);
    }

    /// <summary>Compiles a kernel and returns its launcher, an Action&lt;AcceleratorStream, KernelConfig, parameters…&gt;
    /// built from the kernel's own parameter types.</summary>
    Delegate MakeLauncher(Delegate kernel) => LauncherOf(kernel, accelerator.LoadKernel(kernel.Method, KernelSpecialization.Empty));

    /// <summary>The launcher of a loaded kernel, typed from the kernel method's own parameters.</summary>
    static Delegate LauncherOf(Delegate kernel, Kernel loaded)
    {
        var parameters = kernel.Method.GetParameters().Select(p => p.ParameterType);
        var launcherType = System.Linq.Expressions.Expression.GetActionType([typeof(AcceleratorStream), typeof(KernelConfig), .. parameters]);
        return (Delegate)typeof(Kernel).GetMethod(nameof(Kernel.CreateLauncherDelegate))!.MakeGenericMethod(launcherType).Invoke(loaded, null)!;
    }

    /// <summary>A tensor-core kernel (inline PTX, depots promoted): on CUDA its launcher joins the table, so
    /// <c>Run(kernel, …)</c> launches it like any other; the CPU accelerator only compiles it (the catalogue stays whole,
    /// but inline PTX cannot run there). Returns whether it can be launched here.</summary>
    bool LoadTensorCoreKernel(Loader loader, string name, Delegate kernel, int sharedBytes)
    {
        if (Kind != BackendKind.Cuda)
        {
            loader.Load(name, () => MakeLauncher(kernel));
            return false;
        }
        launchers[kernel.Method] = loader.Load(name, () => LauncherOf(kernel, LoadPromoted(kernel, KernelCatalog.Budget(name).Specialization, sharedBytes)));
        return true;
    }

    /// <summary>Whether a tensor-core kernel was loaded for launching (CUDA).</summary>
    bool Launchable(Delegate kernel) => launchers.ContainsKey(kernel.Method);

    Delegate Launcher(Delegate kernel) =>
        launchers.TryGetValue(kernel.Method, out var launcher) ? launcher
            : throw new InvalidOperationException($"kernel {kernel.Method.DeclaringType?.Name}.{kernel.Method.Name} is not in KernelCatalog: " +
                "mark it [Kernel(\"Name\")] so it is compiled at start-up and audited");

    /// <summary>
    /// Handed to a family's loader: <c>x = loader.Load(nameof(KernelCatalog.X), () => …);</c> registers the name and
    /// turns any compile failure into a KernelCompileException.
    /// </summary>
    sealed class Loader(Func<string, Func<Delegate>, Delegate> load)
    {
        public T Load<T>(string name, Func<T> f) where T : Delegate => (T)load(name, () => f());
    }

    partial void LoadMatmulKernels(Loader loader);
    partial void LoadTensorCoreKernels(Loader loader);
    partial void LoadWgmmaKernels(Loader loader);

    protected internal override void Fill(Tensor y, float value) => Run(ElementwiseKernels.Fill, Launch(y.Numel), F32(y), value);
    protected internal override void Copy(Tensor x, Tensor y) => Run(ElementwiseKernels.Copy, Launch(y.Numel), F32(x), F32(y));
    protected internal override void Scale(Tensor x, float alpha, Tensor y) => Run(ElementwiseKernels.Scale, Launch(y.Numel), F32(x), F32(y), alpha);
    protected internal override void SiluForward(Tensor x, Tensor y) => Run(ElementwiseKernels.SiluForward, Launch(y.Numel), F32(x), F32(y));
    protected internal override void SiluBackward(Tensor x, Tensor dy, Tensor dx) => Run(ElementwiseKernels.BinarySame<SiluGradFunctor>, Launch(dx.Numel), F32(x), F32(dy), F32(dx));

    protected internal override void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y, in BroadcastPlan plan)
    {
        var cfg = Launch(y.Numel);
        var (va, vb, vy) = (F32(a), F32(b), F32(y));
        switch (op, plan.IsElementwise)
        {
            case (BinaryOp.Add, true): Run(ElementwiseKernels.BinarySame<AddFunctor>, cfg, va, vb, vy); break;
            case (BinaryOp.Sub, true): Run(ElementwiseKernels.BinarySame<SubFunctor>, cfg, va, vb, vy); break;
            case (_, true): Run(ElementwiseKernels.BinarySame<MulFunctor>, cfg, va, vb, vy); break;
            case (BinaryOp.Add, false): Run(ElementwiseKernels.BinaryBroadcast<AddFunctor>, cfg, va, vb, vy, plan); break;
            case (BinaryOp.Sub, false): Run(ElementwiseKernels.BinaryBroadcast<SubFunctor>, cfg, va, vb, vy, plan); break;
            case (_, false): Run(ElementwiseKernels.BinaryBroadcast<MulFunctor>, cfg, va, vb, vy, plan); break;
        }
    }

    protected internal override void BroadcastTo(Tensor x, Tensor y, in BroadcastPlan plan) => Run(ElementwiseKernels.BroadcastTo, Launch(y.Numel), F32(x), F32(y), plan);

    protected internal override void SumAxis(Tensor x, Tensor y, int outer, int reduce, int inner)
    {
        if (inner == 1)
        {
            int groups = Math.Clamp(outer, 1, maxGroups);
            Run(ReduceKernels.SumRows, new KernelConfig(groups, groupSize), F32(x), F32(y), outer, reduce);
        }
        else Run(ReduceKernels.SumMiddle, Launch((long)outer * inner), F32(x), F32(y), outer, reduce, inner);
    }

    protected internal override void AddWidened(Tensor a, Tensor b, Tensor y)
    {
        if (b.DType == DType.BF16) Run(ElementwiseKernels.AddWidened<ushort, BF16Widen, ushort, BF16Narrow>, Launch(y.Numel), U16(a), U16(b), U16(y));
        else Run(ElementwiseKernels.AddWidened<float, F32Widen, float, F32Narrow>, Launch(y.Numel), U16(a), F32(b), F32(y));
    }

    protected internal override void ConvertToBF16(Tensor x, Tensor y) => Run(ElementwiseKernels.ToBF16, Launch(y.Numel), F32(x), U16(y));
    protected internal override void ConvertToF32(Tensor x, Tensor y) => Run(ElementwiseKernels.ToF32, Launch(y.Numel), U16(x), F32(y));
    protected internal override void RoundToBF16(Tensor x, Tensor y) => Run(ElementwiseKernels.RoundToBF16, Launch(y.Numel), F32(x), F32(y));

    protected internal override void RandomUniform(Tensor y, ulong seed, ulong subsequence, float lo, float hi) =>
        Run(RandomKernels.Uniform, Launch((y.Numel + 3) / 4), F32(y), seed, subsequence, lo, hi - lo);

    protected internal override void RandomNormal(Tensor y, ulong seed, ulong subsequence, float mean, float std, ulong firstBlock) =>
        Run(RandomKernels.Normal, Launch((y.Numel + 3) / 4), F32(y), seed, subsequence, mean, std, firstBlock);
}
