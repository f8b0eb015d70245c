using ILGPU;
using ILGPU.Runtime;

namespace Mdm.Kernels.Gpu;

// Kernel table: every launcher is created once at start-up (LoadKernels) and kept alive here.
public sealed partial class IlgpuBackend
{
    Action<KernelConfig, ArrayView<float>, float> fill = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>> copy = null!, siluForward = null!, roundToBF16 = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, float> scale = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>> addSame = null!, subSame = null!, mulSame = null!, siluBackward = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, BroadcastPlan> addBcast = null!, subBcast = null!, mulBcast = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, BroadcastPlan> broadcastTo = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int> sumRows = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int> sumMiddle = null!;
    Action<KernelConfig, ArrayView<float>, ArrayView<ushort>> toBF16 = null!;
    Action<KernelConfig, ArrayView<ushort>, ArrayView<float>> toF32 = null!;
    Action<KernelConfig, ArrayView<float>, ulong, ulong, float, float> uniform = null!, normal = null!;

    /// <summary>Names of all kernels this backend loaded, for `info` and the SASS audit.</summary>
    public IReadOnlyList<string> KernelNames => kernelNames;
    readonly List<string> kernelNames = new();

    void LoadKernels()
    {
        var a = accelerator;
        T L<T>(string name, Func<T> f) where T : Delegate { kernelNames.Add(name); return Load(name, f); }
        fill = L(nameof(KernelCatalog.Fill), () => a.LoadStreamKernel(KernelCatalog.Fill));
        copy = L(nameof(KernelCatalog.Copy), () => a.LoadStreamKernel(KernelCatalog.Copy));
        scale = L(nameof(KernelCatalog.Scale), () => a.LoadStreamKernel(KernelCatalog.Scale));
        siluForward = L(nameof(KernelCatalog.SiluForward), () => a.LoadStreamKernel(KernelCatalog.SiluForward));
        siluBackward = L(nameof(KernelCatalog.SiluBackward), () => a.LoadStreamKernel(KernelCatalog.SiluBackward));
        addSame = L(nameof(KernelCatalog.AddSame), () => a.LoadStreamKernel(KernelCatalog.AddSame));
        subSame = L(nameof(KernelCatalog.SubSame), () => a.LoadStreamKernel(KernelCatalog.SubSame));
        mulSame = L(nameof(KernelCatalog.MulSame), () => a.LoadStreamKernel(KernelCatalog.MulSame));
        addBcast = L(nameof(KernelCatalog.AddBroadcast), () => a.LoadStreamKernel(KernelCatalog.AddBroadcast));
        subBcast = L(nameof(KernelCatalog.SubBroadcast), () => a.LoadStreamKernel(KernelCatalog.SubBroadcast));
        mulBcast = L(nameof(KernelCatalog.MulBroadcast), () => a.LoadStreamKernel(KernelCatalog.MulBroadcast));
        broadcastTo = L(nameof(KernelCatalog.BroadcastTo), () => a.LoadStreamKernel(KernelCatalog.BroadcastTo));
        sumRows = L(nameof(KernelCatalog.SumRows), () => a.LoadStreamKernel(KernelCatalog.SumRows));
        sumMiddle = L(nameof(KernelCatalog.SumMiddle), () => a.LoadStreamKernel(KernelCatalog.SumMiddle));
        toBF16 = L(nameof(KernelCatalog.ToBF16), () => a.LoadStreamKernel(KernelCatalog.ToBF16));
        toF32 = L(nameof(KernelCatalog.ToF32), () => a.LoadStreamKernel(KernelCatalog.ToF32));
        roundToBF16 = L(nameof(KernelCatalog.RoundToBF16), () => a.LoadStreamKernel(KernelCatalog.RoundToBF16));
        uniform = L(nameof(KernelCatalog.RandomUniform), () => a.LoadStreamKernel(KernelCatalog.RandomUniform));
        normal = L(nameof(KernelCatalog.RandomNormal), () => a.LoadStreamKernel(KernelCatalog.RandomNormal));
        // Op families live in their own files (IlgpuKernels.<Family>.cs); each loads its kernels with L(...).
        var loader = new Loader((name, f) => L(name, f));
        LoadConvKernels(loader);
        LoadNormKernels(loader);
        LoadMatmulKernels(loader);
        LoadAttentionKernels(loader);
        LoadShapeKernels(loader);
        LoadOptimizerKernels(loader);
        LoadTensorCoreKernels(loader);
    }

    /// <summary>
    /// Handed to each family's loader: <c>x = loader.Load(nameof(KernelCatalog.X), () => accelerator.LoadStreamKernel(KernelCatalog.X));</c>
    /// registers the name and turns any compile failure into a KernelCompileException.
    /// </summary>
    sealed class Loader(Func<string, Func<Delegate>, Delegate> load)
    {
        public T Load<T>(string name, Func<T> f) where T : Delegate => (T)load(name, () => f());
    }

    partial void LoadConvKernels(Loader loader);
    partial void LoadNormKernels(Loader loader);
    partial void LoadMatmulKernels(Loader loader);
    partial void LoadAttentionKernels(Loader loader);
    partial void LoadShapeKernels(Loader loader);
    partial void LoadOptimizerKernels(Loader loader);
    partial void LoadTensorCoreKernels(Loader loader);

    protected internal override void Fill(Tensor y, float value) => fill(Launch(y.Numel), F32(y), value);
    protected internal override void Copy(Tensor x, Tensor y) => copy(Launch(y.Numel), F32(x), F32(y));
    protected internal override void Scale(Tensor x, float alpha, Tensor y) => scale(Launch(y.Numel), F32(x), F32(y), alpha);
    protected internal override void SiluForward(Tensor x, Tensor y) => siluForward(Launch(y.Numel), F32(x), F32(y));
    protected internal override void SiluBackward(Tensor x, Tensor dy, Tensor dx) => siluBackward(Launch(dx.Numel), F32(x), F32(dy), F32(dx));

    protected internal override void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y, in BroadcastPlan plan)
    {
        var cfg = Launch(y.Numel);
        if (plan.IsElementwise)
        {
            var k = op switch { BinaryOp.Add => addSame, BinaryOp.Sub => subSame, _ => mulSame };
            k(cfg, F32(a), F32(b), F32(y));
        }
        else
        {
            var k = op switch { BinaryOp.Add => addBcast, BinaryOp.Sub => subBcast, _ => mulBcast };
            k(cfg, F32(a), F32(b), F32(y), plan);
        }
    }

    protected internal override void BroadcastTo(Tensor x, Tensor y, in BroadcastPlan plan) => broadcastTo(Launch(y.Numel), F32(x), F32(y), plan);

    protected internal override void SumAxis(Tensor x, Tensor y, int outer, int reduce, int inner)
    {
        if (inner == 1)
        {
            int groups = Math.Clamp(outer, 1, maxGroups);
            sumRows(new KernelConfig(groups, groupSize), F32(x), F32(y), outer, reduce);
        }
        else sumMiddle(Launch((long)outer * inner), F32(x), F32(y), outer, reduce, inner);
    }

    protected internal override void ConvertToBF16(Tensor x, Tensor y) => toBF16(Launch(y.Numel), F32(x), U16(y));
    protected internal override void ConvertToF32(Tensor x, Tensor y) => toF32(Launch(y.Numel), U16(x), F32(y));
    protected internal override void RoundToBF16(Tensor x, Tensor y) => roundToBF16(Launch(y.Numel), F32(x), F32(y));

    protected internal override void RandomUniform(Tensor y, ulong seed, ulong subsequence, float lo, float hi) =>
        uniform(Launch((y.Numel + 3) / 4), F32(y), seed, subsequence, lo, hi - lo);

    protected internal override void RandomNormal(Tensor y, ulong seed, ulong subsequence, float mean, float std) =>
        normal(Launch((y.Numel + 3) / 4), F32(y), seed, subsequence, mean, std);
}
