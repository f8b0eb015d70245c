using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

/// <summary>
/// Every GPU kernel, once, by name. The ILGPU backend loads exactly these at start-up, and the offline PTX/SASS
/// audit compiles exactly these, so neither can miss one.
/// </summary>
public static partial class KernelCatalog
{
    public static readonly Delegate Fill = ElementwiseKernels.Fill;
    public static readonly Delegate Copy = ElementwiseKernels.Copy;
    public static readonly Delegate Scale = ElementwiseKernels.Scale;
    public static readonly Delegate SiluForward = ElementwiseKernels.SiluForward;
    public static readonly Delegate SiluBackward = ElementwiseKernels.BinarySame<SiluGradFunctor>;
    public static readonly Delegate AddSame = ElementwiseKernels.BinarySame<AddFunctor>;
    public static readonly Delegate SubSame = ElementwiseKernels.BinarySame<SubFunctor>;
    public static readonly Delegate MulSame = ElementwiseKernels.BinarySame<MulFunctor>;
    public static readonly Delegate AddBroadcast = ElementwiseKernels.BinaryBroadcast<AddFunctor>;
    public static readonly Delegate SubBroadcast = ElementwiseKernels.BinaryBroadcast<SubFunctor>;
    public static readonly Delegate MulBroadcast = ElementwiseKernels.BinaryBroadcast<MulFunctor>;
    public static readonly Delegate BroadcastTo = ElementwiseKernels.BroadcastTo;
    public static readonly Delegate SumRows = ReduceKernels.SumRows;
    public static readonly Delegate SumMiddle = ReduceKernels.SumMiddle;
    public static readonly Delegate ToBF16 = ElementwiseKernels.ToBF16;
    public static readonly Delegate ToF32 = ElementwiseKernels.ToF32;
    public static readonly Delegate RoundToBF16 = ElementwiseKernels.RoundToBF16;
    public static readonly Delegate RandomUniform = RandomKernels.Uniform;
    public static readonly Delegate RandomNormal = RandomKernels.Normal;

    /// <summary>Every catalogued kernel: the fields of this class (its family files included) under their own names,
    /// then those of each <see cref="KernelCatalogPartAttribute"/> class (custom ops, diffusion) as Class.Field.</summary>
    public static IReadOnlyList<KernelEntry> All => all.Value;

    /// <summary>The entry of a catalogued kernel method, or null.</summary>
    public static KernelEntry? Find(System.Reflection.MethodInfo kernel) => byMethod.Value.GetValueOrDefault(kernel);

    // Lazy: field initialisers of the partial files (KernelCatalog.<Family>.cs) run in file order, possibly after this
    // one, so the list is built on first use, once every field is set.
    static readonly Lazy<IReadOnlyList<KernelEntry>> all = new(() => KernelCatalogParts.Discover(typeof(KernelCatalog)));
    static readonly Lazy<Dictionary<System.Reflection.MethodInfo, KernelEntry>> byMethod = new(() => All.ToDictionary(e => e.Kernel.Method));
}
