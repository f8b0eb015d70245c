using ILGPU;
using Mdm.Kernels.Gpu.Kernels;

namespace Mdm.Kernels.Gpu;

/// <summary>
/// Every GPU kernel, once, by name. The ILGPU backend loads exactly these at start-up, and the offline PTX/SASS
/// audit compiles exactly these, so neither can miss one.
/// </summary>
public static partial class KernelCatalog
{
    public static readonly Action<ArrayView<float>, float> Fill = ElementwiseKernels.Fill;
    public static readonly Action<ArrayView<float>, ArrayView<float>> Copy = ElementwiseKernels.Copy;
    public static readonly Action<ArrayView<float>, ArrayView<float>, float> Scale = ElementwiseKernels.Scale;
    public static readonly Action<ArrayView<float>, ArrayView<float>> SiluForward = ElementwiseKernels.SiluForward;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>> SiluBackward = ElementwiseKernels.BinarySame<SiluGradFunctor>;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>> AddSame = ElementwiseKernels.BinarySame<AddFunctor>;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>> SubSame = ElementwiseKernels.BinarySame<SubFunctor>;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>> MulSame = ElementwiseKernels.BinarySame<MulFunctor>;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, BroadcastPlan> AddBroadcast = ElementwiseKernels.BinaryBroadcast<AddFunctor>;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, BroadcastPlan> SubBroadcast = ElementwiseKernels.BinaryBroadcast<SubFunctor>;
    public static readonly Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, BroadcastPlan> MulBroadcast = ElementwiseKernels.BinaryBroadcast<MulFunctor>;
    public static readonly Action<ArrayView<float>, ArrayView<float>, BroadcastPlan> BroadcastTo = ElementwiseKernels.BroadcastTo;
    public static readonly Action<ArrayView<float>, ArrayView<float>, int, int> SumRows = ReduceKernels.SumRows;
    public static readonly Action<ArrayView<float>, ArrayView<float>, int, int, int> SumMiddle = ReduceKernels.SumMiddle;
    public static readonly Action<ArrayView<float>, ArrayView<ushort>> ToBF16 = ElementwiseKernels.ToBF16;
    public static readonly Action<ArrayView<ushort>, ArrayView<float>> ToF32 = ElementwiseKernels.ToF32;
    public static readonly Action<ArrayView<float>, ArrayView<float>> RoundToBF16 = ElementwiseKernels.RoundToBF16;
    public static readonly Action<ArrayView<float>, ulong, ulong, float, float> RandomUniform = RandomKernels.Uniform;
    public static readonly Action<ArrayView<float>, ulong, ulong, float, float> RandomNormal = RandomKernels.Normal;

    /// <summary>(name, kernel) for every field above and in the family files, in declaration order.</summary>
    public static IReadOnlyList<(string Name, Delegate Kernel)> All => all.Value;

    // Lazy: field initialisers of the partial files (KernelCatalog.<Family>.cs) run in file order, possibly after this
    // one, so the list is built on first use, once every field is set.
    static readonly Lazy<IReadOnlyList<(string Name, Delegate Kernel)>> all = new(() =>
        typeof(KernelCatalog).GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
            .Where(f => typeof(Delegate).IsAssignableFrom(f.FieldType))
            .Select(f => (f.Name, (Delegate)f.GetValue(null)!))
            .ToList());
}
